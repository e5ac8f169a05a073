"""The command line end to end on synthetic data, and every bad input."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import write_msd, write_pictures
from typer.testing import CliRunner

from relunet.cli import app

TINY = ["--epochs", "1", "--samples-per-epoch", "8", "--batch-size", "4", "--device", "cpu"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def relunet_subprocess(*args):
    """Run the real console entry point, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "relunet", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def assert_clean_failure(result, out: Path, *words):
    stderr = result.stderr
    assert result.exit_code == 2 if hasattr(result, "exit_code") else result.returncode == 2
    assert "Traceback" not in stderr and "Traceback" not in (result.stdout or "")
    assert 1 <= len(stderr.strip().splitlines()) <= 3, stderr
    for word in words:
        assert word in stderr, stderr
    assert not out.exists(), "nothing may be written on bad input"


def test_train_evaluate_predict_on_pictures(tmp_path):
    data = write_pictures(tmp_path / "pics", n_cases=10)
    run = tmp_path / "run"
    result = invoke("train", data, "--out", run, *TINY)
    assert result.exit_code == 0, result.output
    assert (run / "config.yaml").is_file() and (run / "splits.json").is_file()
    assert (run / "fold_0" / "checkpoint.pt").is_file()
    with (run / "fold_0" / "history.csv").open() as handle:
        assert list(csv.DictReader(handle))[0]["epoch"] == "1"

    result = invoke("evaluate", run, data, "--out", tmp_path / "eval", "--device", "cpu")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["n_cases"] == 2
    for key in ("dice_seg_a_mean", "dice_seg_a_std", "pearson", "spearman", "aurc"):
        assert key in summary
    with (tmp_path / "eval" / "per_case.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {"case_id", "C", "dice_seg_a", "dice_seg_b", "dice_union", "dice_inter"} <= set(rows[0])

    result = invoke("predict", run, data / "images", "--out", tmp_path / "pred", "--device", "cpu")
    assert result.exit_code == 0, result.output
    with (tmp_path / "pred" / "cases.csv").open() as handle:
        cases = list(csv.DictReader(handle))
    assert len(cases) == 10
    confidences = [float(r["C"]) for r in cases]
    assert confidences == sorted(confidences)
    mask = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(tmp_path / "pred" / cases[0]["mask"]))
    assert mask.shape == (32, 32) and set(np.unique(mask)) <= {0, 255}


def test_train_3d_and_predict_nifti_keeps_geometry(tmp_path):
    data = write_msd(tmp_path / "msd", n_cases=5)
    run = tmp_path / "run"
    assert invoke("train", data, "--out", run, "--dims", "3", "--labels", "1;2", *TINY).exit_code == 0
    result = invoke(
        "predict", run, data / "imagesTr" / "case_000.nii.gz", "--out", tmp_path / "pred", "--device", "cpu"
    )
    assert result.exit_code == 0, result.output
    written = nib.load(tmp_path / "pred" / "masks" / "case_000.nii.gz")
    source = nib.load(data / "imagesTr" / "case_000.nii.gz")
    assert written.shape == source.shape
    np.testing.assert_allclose(written.affine, source.affine)
    assert set(np.unique(np.asarray(written.dataobj))) <= {0, 1, 2}
    result = invoke("evaluate", run, data, "--out", tmp_path / "eval", "--all", "--device", "cpu")
    assert result.exit_code == 0, result.output
    header = (tmp_path / "eval" / "per_case.csv").read_text().splitlines()[0].split(",")
    assert {"dice_seg_a_class1", "dice_seg_a_class2", "C", "C_class1", "C_class2"} <= set(header)


@pytest.mark.parametrize("model", ["unet", "mcdropout"])
def test_baselines_train_and_evaluate(tmp_path, model):
    data = write_pictures(tmp_path / "pics", n_cases=10)
    run = tmp_path / "run"
    assert invoke("train", data, "--out", run, "--model", model, *TINY).exit_code == 0
    result = invoke("evaluate", run, data, "--out", tmp_path / "eval", "--mc-samples", "3", "--device", "cpu")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["model"] == model


def test_anchor_prediction_from_train_and_test(tmp_path):
    data = write_pictures(tmp_path / "pics", n_cases=10)
    run = tmp_path / "run"
    assert invoke("train", data, "--out", run, *TINY).exit_code == 0
    for source in ("train", "test"):
        out = tmp_path / f"pred_{source}"
        result = invoke(
            "predict",
            run,
            data / "images",
            "--out",
            out,
            "--anchors",
            "3",
            "--anchor-source",
            source,
            "--device",
            "cpu",
        )
        assert result.exit_code == 0, result.output
        assert len(list((out / "masks").glob("*.png"))) == 10


def test_help_of_every_verb():
    for verb in ("train", "predict", "evaluate", "demo"):
        result = invoke(verb, "--help")
        assert result.exit_code == 0 and "Usage" in result.output


# --- bad input: one line, exit 2, no traceback, nothing written ------------------------------


def test_truncated_nifti_in_msd_folder(tmp_path):
    data = write_msd(tmp_path / "msd", n_cases=4)
    path = data / "imagesTr" / "case_002.nii.gz"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    out = tmp_path / "run"
    assert_clean_failure(relunet_subprocess("train", data, "--out", out), out, "case_002.nii.gz")


def test_image_without_mask(tmp_path):
    data = write_pictures(tmp_path / "pics", n_cases=4)
    (data / "masks" / "case_0001.png").unlink()
    out = tmp_path / "run"
    assert_clean_failure(relunet_subprocess("train", data, "--out", out), out, "case_0001")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "run"
    assert_clean_failure(relunet_subprocess("train", tmp_path / "empty", "--out", out), out, "empty")


def test_missing_dataset_json(tmp_path):
    data = write_msd(tmp_path / "msd", n_cases=3)
    (data / "dataset.json").unlink()
    out = tmp_path / "run"
    assert_clean_failure(invoke("train", data, "--out", out), out, "dataset.json")


def test_mask_shape_mismatch(tmp_path):
    data = write_msd(tmp_path / "msd", n_cases=3)
    label = data / "labelsTr" / "case_001.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.uint8), np.eye(4)), label)
    out = tmp_path / "run"
    assert_clean_failure(invoke("train", data, "--out", out), out, "case_001", "does not match")


def test_label_values_outside_the_declared_labels(tmp_path):
    data = write_msd(tmp_path / "msd", n_cases=3, labels={"0": "background", "1": "a"})
    out = tmp_path / "run"
    assert_clean_failure(invoke("train", data, "--out", out), out, "[2]", "declared labels")


def test_picture_mask_with_grey_values(tmp_path):
    from PIL import Image

    data = write_pictures(tmp_path / "pics", n_cases=3)
    Image.fromarray(np.full((32, 32), 128, np.uint8)).save(data / "masks" / "case_0002.png")
    out = tmp_path / "run"
    assert_clean_failure(invoke("train", data, "--out", out), out, "case_0002.png", "{0, 255}")


def test_truncated_picture(tmp_path):
    data = write_pictures(tmp_path / "pics", n_cases=3, rgb=True)
    path = data / "images" / "case_0000.jpg"
    path.write_bytes(path.read_bytes()[:200])
    out = tmp_path / "run"
    assert_clean_failure(invoke("train", data, "--out", out), out, "case_0000.jpg")


def test_wrong_channel_count_for_the_model(tmp_path):
    gray = write_pictures(tmp_path / "gray", n_cases=6)
    rgb = write_pictures(tmp_path / "rgb", n_cases=2, rgb=True)
    run = tmp_path / "run"
    assert invoke("train", gray, "--out", run, *TINY).exit_code == 0
    out = tmp_path / "pred"
    result = invoke("predict", run, rgb / "images", "--out", out, "--device", "cpu")
    assert_clean_failure(result, out, "3 channel(s)", "trained on 1")


def test_predict_on_missing_path_and_bad_run(tmp_path):
    out = tmp_path / "pred"
    assert_clean_failure(
        invoke("predict", tmp_path / "norun", tmp_path / "x.png", "--out", out), out, "checkpoint"
    )


def test_bad_option_values(tmp_path):
    data = write_pictures(tmp_path / "pics", n_cases=3)
    out = tmp_path / "run"
    assert_clean_failure(invoke("train", data, "--out", out, "--pairing", "nope"), out, "--pairing")
    assert_clean_failure(invoke("train", data, "--out", out, "--dims", "3"), out, "--dims")
    assert_clean_failure(invoke("train", data, "--out", out, "--fold", "7"), out, "--fold")


def test_sharded_prediction_merged_equals_unsharded(tmp_path):
    data = write_pictures(tmp_path / "pics", n_cases=9)
    run = tmp_path / "run"
    assert invoke("train", data, "--out", run, *TINY).exit_code == 0
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert invoke("predict", run, data / "images", "--out", whole, "--device", "cpu").exit_code == 0
    for part in range(3):
        result = invoke(
            "predict",
            run,
            data / "images",
            "--out",
            parts,
            "--device",
            "cpu",
            "--num-parts",
            3,
            "--part-id",
            part,
        )
        assert result.exit_code == 0, result.output
    assert not (parts / "cases.csv").exists()
    assert invoke("merge", parts).exit_code == 0
    merged, single = read_rows(parts / "cases.csv"), read_rows(whole / "cases.csv")
    assert [{**r, "mask": Path(r["mask"]).name} for r in merged] == [
        {**r, "mask": Path(r["mask"]).name} for r in single
    ]
    for row, alone in zip(merged, single, strict=True):
        assert (parts / row["mask"]).read_bytes() == (whole / alone["mask"]).read_bytes()


def test_merge_refuses_missing_parts(tmp_path):
    data = write_pictures(tmp_path / "pics", n_cases=6)
    run = tmp_path / "run"
    assert invoke("train", data, "--out", run, *TINY).exit_code == 0
    parts = tmp_path / "parts"
    assert (
        invoke(
            "predict",
            run,
            data / "images",
            "--out",
            parts,
            "--device",
            "cpu",
            "--num-parts",
            2,
            "--part-id",
            1,
        ).exit_code
        == 0
    )
    result = invoke("merge", parts)
    assert result.exit_code == 2 and "parts [0] of 2 are missing" in result.stderr
