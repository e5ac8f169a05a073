"""Smoke tests on the real data in ../shared/data: a few cases, a few steps, then predict."""

import csv
import json
import shutil

import nibabel as nib
import numpy as np
from conftest import copy_msd_subset, shared_dataset
from typer.testing import CliRunner

from relunet.cli import app
from relunet.data.layouts import index_dataset, load_case

STEPS = ["--epochs", "1", "--samples-per-epoch", "16", "--batch-size", "8", "--device", "cpu"]


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_hippocampus_2d_train_evaluate_predict(tmp_path):
    data = copy_msd_subset(shared_dataset("Task04_Hippocampus"), tmp_path / "hippo", n_cases=6)
    run = tmp_path / "run"
    invoke("train", data, "--out", run, "--folds", "3", *STEPS)
    invoke("evaluate", run, data, "--out", tmp_path / "eval", "--device", "cpu")
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["n_cases"] == 2
    invoke("predict", run, data / "imagesTr", "--out", tmp_path / "pred", "--device", "cpu")
    with (tmp_path / "pred" / "cases.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    source = nib.load(data / "imagesTr" / f"{rows[0]['case_id']}.nii.gz")
    mask = nib.load(tmp_path / "pred" / rows[0]["mask"])
    assert mask.shape == source.shape
    np.testing.assert_allclose(mask.affine, source.affine)


def test_isic_resized_train_and_predict(tmp_path):
    source = shared_dataset("ISIC2017_Task1_256")
    data = tmp_path / "isic"
    for sub in ("images", "masks"):
        (data / sub).mkdir(parents=True)
    for image in sorted((source / "images").glob("*.jpg"))[:8]:
        shutil.copy(image, data / "images")
        shutil.copy(source / "masks" / f"{image.stem}.png", data / "masks")
    run = tmp_path / "run"
    invoke("train", data, "--out", run, "--folds", "4", "--image-size", "64", *STEPS)
    invoke("predict", run, data / "images", "--out", tmp_path / "pred", "--device", "cpu")
    written = sorted((tmp_path / "pred" / "masks").glob("*.png"))
    assert len(written) == 8
    from PIL import Image

    assert np.asarray(Image.open(written[0])).shape == (256, 256)


def test_brats_and_lits_read_in_their_real_format():
    brats = index_dataset(shared_dataset("BraTS_samples"))
    case = load_case(brats.cases[0], brats.labels)
    assert case.image.shape[0] == 4 and case.label.shape == case.image.shape[1:]
    assert set(np.unique(case.label)) <= {0, 1, 2, 4}
    lits = index_dataset(shared_dataset("LiTS_3Dircadb01"))
    assert lits.labels == (0, 1, 2)
    assert len(lits.cases[0].images) == 1
