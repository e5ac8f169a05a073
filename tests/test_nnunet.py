"""nnUNetTrainerRelation end to end on a tiny synthetic 2D dataset in nnU-Net's raw layout.

Plan and preprocess, train a few iterations on the CPU, then `relunet predict`, `calibrate` and
`review` on the model folder. Needs the nnunet extra (`make test` installs it).
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from relunet.errors import InputError
from relunet.nnunet import installed
from relunet.nnunet.model_folder import ModelFolder, is_model_folder

HAS_NNUNET = importlib.util.find_spec("nnunetv2") is not None
needs_nnunet = pytest.mark.skipif(
    not HAS_NNUNET, reason="nnU-Net v2 is not installed: pip install -e '.[nnunet]' (make test installs it)"
)
DATASET = "Dataset902_Discs"
N_TRAIN, N_VAL = 4, 22  # 22 validation cases: the fewest the default promise can be calibrated with
RELATION = "nnUNetTrainerRelation_tiny__nnUNetPlans__2d"


def write_discs(raw: Path, n: int, side: int = 24, seed: int = 0) -> Path:
    """Noisy discs (label 1) with a square core (label 2), one slice each, as NIfTI in nnU-Net's layout."""
    import SimpleITK as sitk

    rng = np.random.default_rng(seed)
    folder = raw / DATASET
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    y, x = np.mgrid[:side, :side]
    for i in range(n):
        cy, cx = rng.uniform(8, side - 8, 2)
        r = rng.uniform(3, 7)
        label = np.zeros((1, side, side), np.uint8)
        label[0][(y - cy) ** 2 + (x - cx) ** 2 < r**2] = 1
        label[0][(np.abs(y - cy) < r / 2) & (np.abs(x - cx) < r / 2)] = 2
        image = (label + rng.normal(0, rng.uniform(0.3, 1.5), label.shape)).astype(np.float32)
        for values, path in (
            (image, folder / "imagesTr" / f"disc_{i:03d}_0000.nii.gz"),
            (label, folder / "labelsTr" / f"disc_{i:03d}.nii.gz"),
        ):
            written = sitk.GetImageFromArray(values)
            written.SetSpacing((0.8, 0.7, 5.0))
            written.SetOrigin((3.0, -2.0, 1.0))
            sitk.WriteImage(written, str(path))
    dataset = {
        "channel_names": {"0": "MR"},
        "labels": {"background": 0, "disc": 1, "core": 2},
        "numTraining": n,
        "file_ending": ".nii.gz",
    }
    (folder / "dataset.json").write_text(json.dumps(dataset))
    return folder


def run(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*args], env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def relunet(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(env, sys.executable, "-m", "relunet", *args, check=check)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A planned dataset and a relation model trained 2 epochs of 4 iterations on the CPU."""
    root = tmp_path_factory.mktemp("nnunet")
    env = {
        **os.environ,
        "nnUNet_raw": str(root / "raw"),
        "nnUNet_preprocessed": str(root / "preprocessed"),
        "nnUNet_results": str(root / "results"),
        "nnUNet_def_n_proc": "1",
    }
    raw = write_discs(root / "raw", N_TRAIN + N_VAL)
    plan = Path(sys.executable).with_name("nnUNetv2_plan_and_preprocess")
    run(env, str(plan), "-d", "902", "-c", "2d", "-np", "1")
    cases = sorted(p.name.removesuffix(".nii.gz") for p in (raw / "labelsTr").iterdir())
    splits = [{"train": cases[:N_TRAIN], "val": cases[N_TRAIN:]}]
    (root / "preprocessed" / DATASET / "splits_final.json").write_text(json.dumps(splits))
    train_env = {**env, "nnUNet_n_proc_DA": "0"}
    relunet(
        train_env, "nnunet", "train", "902", "2d", "0", "-tr", "nnUNetTrainerRelation_tiny", "--device", "cpu"
    )
    return {"root": root, "env": env, "raw": raw, "model": root / "results" / DATASET / RELATION}


@needs_nnunet
def test_relation_training_keeps_nnunets_own_validation(trained):
    fold = trained["model"] / "fold_0"
    assert (fold / "checkpoint_final.pth").is_file()
    assert is_model_folder(trained["model"])
    written = sorted(p.name for p in (fold / "validation").glob("*.nii.gz"))
    assert len(written) == N_VAL  # nnU-Net's final validation wrote seg_a of every validation case
    assert "mean" in json.loads((fold / "validation" / "summary.json").read_text())


@needs_nnunet
def test_nnunet_finds_the_trainer_through_ext_trainer(trained):
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    folder = str(installed.TRAINERS_FOLDER)
    found = recursive_find_python_class(
        folder, "nnUNetTrainerRelation_tiny", None, base_folder=folder, cleanup_imports_from_base_folder=True
    )
    assert found is not None and found.__name__ == "nnUNetTrainerRelation_tiny"
    env_line = relunet(trained["env"], "nnunet", "env").stdout.strip()
    assert env_line == f"export nnUNet_extTrainer={installed.TRAINERS_FOLDER.resolve()}"


@needs_nnunet
def test_predict_calibrate_review_on_the_model_folder(trained, tmp_path):
    import SimpleITK as sitk

    env, model, raw = trained["env"], str(trained["model"]), trained["raw"]
    out = tmp_path / "pred"
    relunet(env, "predict", model, str(raw), "--out", str(out), "--no-mirroring", "--device", "cpu")
    with (out / "cases.csv").open() as handle:
        header, *lines = handle.read().splitlines()
    assert header.split(",")[:6] == ["case_id", "C", "score", "foreground_voxels", "mask", "disagreement"]
    scores = [float(line.split(",")[1]) for line in lines]
    assert len(scores) == N_TRAIN + N_VAL and len(set(scores)) > 1 and scores == sorted(scores)
    case = lines[0].split(",")[0]
    image = sitk.ReadImage(str(raw / "imagesTr" / f"{case}_0000.nii.gz"))
    for folder in ("masks", "disagreement"):
        mask = sitk.ReadImage(str(out / folder / f"{case}.nii.gz"))
        assert mask.GetSize() == image.GetSize()
        assert np.allclose(mask.GetSpacing(), image.GetSpacing()) and np.allclose(
            mask.GetOrigin(), image.GetOrigin()
        )
    assert set(np.unique(sitk.GetArrayFromImage(mask))) <= {0, 1, 2}
    record = json.loads((out / "prediction.json").read_text())
    assert record["calibrated"] is False and record["model"]["kind"] == "relation"

    relunet(env, "calibrate", model, str(raw), "--no-mirroring", "--device", "cpu")
    calibration = json.loads((trained["model"] / "fold_0" / "calibration.json").read_text())
    assert sorted(p["case_id"] for p in calibration["pairs"]) == sorted(
        json.loads((trained["root"] / "preprocessed" / DATASET / "splits_final.json").read_text())[0]["val"]
    )
    assert calibration["score"] == "self_pair C"

    calibrated = tmp_path / "calibrated"
    relunet(env, "predict", model, str(raw), "--out", str(calibrated), "--no-mirroring", "--device", "cpu")
    header = (calibrated / "cases.csv").read_text().splitlines()[0].split(",")
    assert {"estimated_dice", "dice_low", "dice_high", "review"} <= set(header)
    assert (calibrated / "cases" / f"{case}.json").is_file()
    relunet(env, "review", str(calibrated))
    assert (calibrated / "review.html").stat().st_size > 0

    mirrored = relunet(
        env, "predict", model, str(raw), "--out", str(tmp_path / "m"), "--device", "cpu", check=False
    )
    assert mirrored.returncode == 2 and "mirrored" in mirrored.stderr and not (tmp_path / "m").exists()


@needs_nnunet
def test_bad_inputs_are_one_line_and_write_nothing(trained, tmp_path):
    env, model, raw = trained["env"], str(trained["model"]), trained["raw"]
    out = tmp_path / "out"

    def refused(*args: str, env: dict = env) -> str:
        done = relunet(env, *args, check=False)
        assert done.returncode == 2, done.stderr[-2000:]
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert not out.exists()
        return done.stderr

    assert "fold 3 is not trained" in refused("predict", model, str(raw), "--out", str(out), "--fold", "3")
    two_channels = tmp_path / "two"
    two_channels.mkdir()
    for channel in ("0000", "0001"):
        (two_channels / f"disc_000_{channel}.nii.gz").write_bytes(
            (raw / "imagesTr" / "disc_000_0000.nii.gz").read_bytes()
        )
    assert "channels [0, 1]" in refused("predict", model, str(two_channels), "--out", str(out))
    unset = {k: v for k, v in env.items() if k != "nnUNet_preprocessed"}
    assert "nnUNet_preprocessed is not set" in refused("calibrate", model, str(raw), env=unset)
    no_results = {k: v for k, v in env.items() if k != "nnUNet_results"}
    assert "nnUNet_results is not set" in refused("nnunet", "train", "902", "2d", "0", env=no_results)


def test_missing_nnunet_names_the_extra(monkeypatch):
    monkeypatch.setattr(installed.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match=r"\.\[nnunet\]"):
        installed.require_nnunet()


def test_a_fold_without_checkpoint_is_refused(tmp_path):
    (tmp_path / "plans.json").write_text("{}")
    (tmp_path / "dataset.json").write_text("{}")
    (tmp_path / "fold_1").mkdir()
    (tmp_path / "fold_1" / "checkpoint_final.pth").write_bytes(b"")
    assert is_model_folder(tmp_path)
    with pytest.raises(InputError, match="fold 0 is not trained.*fold_1"):
        ModelFolder(tmp_path, 0).check()
