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
from typer.testing import CliRunner

from relunet.cli import app
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
    member = recursive_find_python_class(
        folder, "nnUNetTrainer_seed3", None, base_folder=folder, cleanup_imports_from_base_folder=True
    )
    assert member is not None and member.__name__ == "nnUNetTrainer_seed3"
    env_line = relunet(trained["env"], "nnunet", "env").stdout.strip()
    assert env_line == f"export nnUNet_extTrainer={installed.TRAINERS_FOLDER.resolve()}"


def invoke(*args) -> object:
    """The CLI in this process (nnU-Net's environment variables as the fixture set them)."""
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def nnunet_env(trained, monkeypatch) -> dict:
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_def_n_proc"):
        monkeypatch.setenv(name, trained["env"][name])
    return trained


def six_images(raw: Path, folder: Path) -> Path:
    """A folder of images in nnU-Net's layout: six of the dataset's."""
    folder.mkdir()
    for case in sorted((raw / "imagesTr").iterdir())[:6]:
        (folder / case.name).symlink_to(case)
    return folder


@needs_nnunet
def test_predict_calibrate_review_on_the_model_folder(nnunet_env, tmp_path):
    import SimpleITK as sitk

    model, raw = nnunet_env["model"], nnunet_env["raw"]
    some = six_images(raw, tmp_path / "some")
    out = tmp_path / "pred"
    done = invoke("predict", model, some, "--out", out, "--no-mirroring", "--device", "cpu")
    assert done.exit_code == 0, done.output
    with (out / "cases.csv").open() as handle:
        header, *lines = handle.read().splitlines()
    assert header.split(",")[:6] == ["case_id", "C", "score", "foreground_voxels", "mask", "disagreement"]
    scores = [float(line.split(",")[1]) for line in lines]
    assert len(scores) == 6 and len(set(scores)) > 1 and scores == sorted(scores)
    case = lines[0].split(",")[0]
    image = sitk.ReadImage(str(raw / "imagesTr" / f"{case}_0000.nii.gz"))
    for folder in ("masks", "disagreement"):
        mask = sitk.ReadImage(str(out / folder / f"{case}.nii.gz"))
        assert mask.GetSize() == image.GetSize()
        assert np.allclose(mask.GetSpacing(), image.GetSpacing())
        assert np.allclose(mask.GetOrigin(), image.GetOrigin())
    assert set(np.unique(sitk.GetArrayFromImage(mask))) <= {0, 1, 2}
    record = json.loads((out / "prediction.json").read_text())
    assert record["calibrated"] is False and record["model"]["kind"] == "relation"

    done = invoke("calibrate", model, raw, "--no-mirroring", "--device", "cpu")
    assert done.exit_code == 0, done.output
    calibration = json.loads((model / "fold_0" / "calibration.json").read_text())
    splits = json.loads((nnunet_env["root"] / "preprocessed" / DATASET / "splits_final.json").read_text())
    assert sorted(p["case_id"] for p in calibration["pairs"]) == sorted(splits[0]["val"])
    assert calibration["score"] == "self_pair C"

    calibrated = tmp_path / "calibrated"
    done = invoke("predict", model, some, "--out", calibrated, "--no-mirroring", "--device", "cpu")
    assert done.exit_code == 0, done.output
    header = (calibrated / "cases.csv").read_text().splitlines()[0].split(",")
    assert {"estimated_dice", "dice_low", "dice_high", "review"} <= set(header)
    assert (calibrated / "cases" / f"{case}.json").is_file()
    assert invoke("review", calibrated).exit_code == 0
    assert (calibrated / "review.html").stat().st_size > 0

    mirrored = invoke("predict", model, some, "--out", tmp_path / "m", "--device", "cpu")
    assert mirrored.exit_code == 2 and "mirrored" in mirrored.stderr and not (tmp_path / "m").exists()


@needs_nnunet
def test_bad_inputs_are_one_line_and_write_nothing(nnunet_env, tmp_path, monkeypatch):
    model, raw = nnunet_env["model"], nnunet_env["raw"]
    out = tmp_path / "out"

    def refused(*args) -> str:
        done = invoke(*args)
        assert done.exit_code == 2, done.output
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert not out.exists()
        return done.stderr

    assert "fold 3 is not trained" in refused("predict", model, raw, "--out", out, "--fold", "3")
    two_channels = tmp_path / "two"
    two_channels.mkdir()
    for channel in ("0000", "0001"):
        (two_channels / f"disc_000_{channel}.nii.gz").symlink_to(raw / "imagesTr" / "disc_000_0000.nii.gz")
    assert "channels [0, 1]" in refused("predict", model, two_channels, "--out", out)
    monkeypatch.delenv("nnUNet_results")
    assert "nnUNet_results is not set" in refused("nnunet", "train", "902", "2d", "0")
    monkeypatch.delenv("nnUNet_preprocessed")
    assert "nnUNet_preprocessed is not set" in refused("calibrate", model, raw)


@pytest.fixture(scope="module")
def members(trained) -> list[Path]:
    """Two plain nnUNetTrainer models of fold 0, seeds 1 and 2, trained 2 epochs of 4 iterations."""
    env = {**trained["env"], "nnUNet_n_proc_DA": "0"}
    budget = ("--epochs", "2", "--iterations", "4", "--no-validation", "--device", "cpu")
    for seed in ("1", "2"):
        relunet(env, "nnunet", "train", "902", "2d", "0", "-tr", "nnUNetTrainer", "--seed", seed, *budget)
    results = trained["root"] / "results" / DATASET
    return [results / f"nnUNetTrainer_seed{seed}__nnUNetPlans__2d" for seed in (1, 2)]


@needs_nnunet
def test_seeded_members_predict_and_calibrate_as_a_deep_ensemble(nnunet_env, members, tmp_path):
    import torch

    first, second = (torch.load(m / "fold_0" / "checkpoint_final.pth", weights_only=False) for m in members)
    assert first["trainer_name"] == "nnUNetTrainer_seed1"
    weights = zip(first["network_weights"].values(), second["network_weights"].values(), strict=True)
    assert any(not torch.equal(a, b) for a, b in weights)  # other seeds, other networks
    raw, out = nnunet_env["raw"], tmp_path / "ensemble"
    some = six_images(raw, tmp_path / "some")
    options = ("--member", members[1], "--no-mirroring", "--device", "cpu")
    done = invoke("predict", members[0], some, "--out", out, *options)
    assert done.exit_code == 0, done.output
    rows = [line.split(",") for line in (out / "cases.csv").read_text().splitlines()[1:]]
    assert len(rows) == 6 and all(0 <= float(r[2]) <= 1 for r in rows)
    assert json.loads((out / "prediction.json").read_text())["model"]["kind"] == "ensemble"

    assert invoke("calibrate", members[0], raw, *options).exit_code == 0
    calibration = json.loads((members[0] / "fold_0" / "calibration.json").read_text())
    assert calibration["score"].startswith("ensemble C of ") and len(calibration["pairs"]) == N_VAL
    calibrated = invoke("predict", members[0], some, "--out", tmp_path / "decided", *options)
    assert calibrated.exit_code == 0, calibrated.output
    assert "review" in (tmp_path / "decided" / "cases.csv").read_text().splitlines()[0].split(",")
    alone = invoke("predict", members[0], some, "--out", tmp_path / "alone", "--no-mirroring")
    assert alone.exit_code == 2 and "ensemble C of" in alone.stderr  # the calibration is the ensemble's


@needs_nnunet
def test_bad_ensemble_members_are_one_line(nnunet_env, members, tmp_path):
    raw, out = nnunet_env["raw"], tmp_path / "out"
    cases = [
        (nnunet_env["model"], "cannot be an ensemble member"),  # a relation model
        (members[0], "given twice"),
        (tmp_path, "not an nnU-Net model folder"),
    ]
    for member, message in cases:
        done = invoke("predict", members[0], raw, "--out", out, "--member", member, "--device", "cpu")
        assert done.exit_code == 2 and message in done.stderr, done.output
        assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


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


@needs_nnunet
def test_partners_are_other_samples_of_the_batch_or_identical_for_a_share():
    from relunet.nnunet.trainer import batch_partners

    partners = np.stack([batch_partners(np.random.default_rng(s), 9, 0.25) for s in range(400)])
    same = partners == np.arange(9)
    assert 0.2 < same.mean() < 0.3  # the identical share; every other partner is another sample
    assert set(np.unique(partners)) == set(range(9))


@needs_nnunet
def test_relation_targets_are_own_partner_union_and_intersection_per_class():
    import torch

    from relunet.nnunet.trainer import relation_targets

    seg = torch.tensor([[0, 1, 2], [1, 1, 0]]).reshape(2, 1, 3)
    heads = relation_targets(seg, torch.tensor([1, 0]), [1, 2])[0]  # (4K, S) of sample 0
    seg_a, seg_b, union, inter = heads[:2], heads[2:4], heads[4:6], heads[6:]
    assert seg_a.tolist() == [[0, 1, 0], [0, 0, 1]]
    assert seg_b.tolist() == [[1, 1, 0], [0, 0, 0]]
    assert union.tolist() == [[1, 1, 0], [0, 0, 1]]
    assert inter.tolist() == [[0, 1, 0], [0, 0, 0]]
