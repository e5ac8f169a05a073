"""`relunet calibrate` on a cross-validation folder: one calibration per model, from its own test fold."""

import json
from pathlib import Path

import pytest
from conftest import write_pictures

from relunet.errors import InputError
from relunet.inference.calibrate import calibrate


def fake_crossval(root: Path, cases_per_fold: int) -> tuple[Path, Path]:
    """Two fold models of the Relation U-Net (checkpoints are any bytes here) and their tables.

    Fold k's scores sit on their own scale (k added), as two models' scores may.
    """
    data = write_pictures(root / "pics", n_cases=2 * cases_per_fold)
    folder = root / "cv"
    for fold in (0, 1):
        checkpoint = folder / "models" / "relation_seed0" / f"fold_{fold}" / "checkpoint.pt"
        checkpoint.parent.mkdir(parents=True)
        checkpoint.write_bytes(f"weights of fold {fold}".encode())
        table = folder / "methods" / "relation_self_pair" / f"fold_{fold}" / "per_case.csv"
        table.parent.mkdir(parents=True)
        lines = ["case_id,dice_seg_a,dice,C,score"]
        for i in range(cases_per_fold):
            case = f"case_{fold * cases_per_fold + i:04d}"
            dice = 0.5 + 0.5 * i / cases_per_fold
            lines.append(f"{case},{dice},{dice},{dice + fold},{dice + fold}")
        table.write_text("\n".join(lines) + "\n")
    return folder, data


def test_each_fold_model_is_calibrated_on_its_own_out_of_fold_cases(tmp_path):
    folder, data = fake_crossval(tmp_path, cases_per_fold=25)
    written = calibrate(folder, data)
    assert [p.parent.name for p in written] == ["fold_0", "fold_1"]
    for fold, path in enumerate(written):
        stored = json.loads(path.read_text())
        ids = [p["case_id"] for p in stored["pairs"]]
        assert ids == [f"case_{fold * 25 + i:04d}" for i in range(25)]
        assert all(fold <= p["score"] <= fold + 1 for p in stored["pairs"])  # one model's scale only
        assert "own test cases" in stored["source"]


def test_a_fold_with_too_few_own_cases_is_refused_in_one_line(tmp_path):
    folder, data = fake_crossval(tmp_path, cases_per_fold=15)
    with pytest.raises(InputError, match=r"fold_0/per_case.csv: 15 calibration cases cannot support"):
        calibrate(folder, data)
    assert not list(folder.glob("models/*/fold_*/calibration.json"))
