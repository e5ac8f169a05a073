"""calibrate -> predict on a tiny run: estimated Dice, interval, review flag, records, refusals."""

import hashlib
import json
from pathlib import Path

import pytest
from conftest import write_pictures
from PIL import Image
from test_cli import TINY, assert_clean_failure, invoke, read_rows

from relunet.data.synthetic import write_synthetic_dataset
from relunet.reporting.console import prediction_lines


def labelled_pictures(root: Path, n_cases: int, seed: int) -> Path:
    """Synthetic labelled pictures whose names differ from the training set's (`other_0000`, ...)."""
    write_synthetic_dataset(root, n_cases=n_cases, size=32, seed=seed)
    for folder in ("images", "masks"):
        for path in (root / folder).iterdir():
            path.rename(path.with_name("other_" + path.name))
    return root


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A run trained one epoch on 12 pictures, calibrated on 30 other labelled pictures."""
    root = tmp_path_factory.mktemp("decisions")
    data = write_pictures(root / "train", n_cases=12)
    labelled = labelled_pictures(root / "labelled", n_cases=30, seed=7)
    run = root / "run"
    assert invoke("train", data, "--out", run, *TINY, "--folds", "2").exit_code == 0
    result = invoke("calibrate", run, labelled, "--device", "cpu")
    assert result.exit_code == 0, result.output
    return data, labelled, run


def test_calibration_holds_the_held_out_pairs_bound_to_the_model(calibrated):
    _, labelled, run = calibrated
    stored = json.loads((run / "fold_0" / "calibration.json").read_text())
    assert len(stored["pairs"]) == 30 and stored["score"] == "self_pair C"
    sha = hashlib.sha256((run / "fold_0" / "checkpoint.pt").read_bytes()).hexdigest()
    assert stored["model_sha256"] == sha
    assert all(0 <= p["dice"] <= 1 and 0 <= p["score"] <= 1 for p in stored["pairs"])


def test_calibrating_on_the_runs_own_data_uses_its_held_out_fold_only(calibrated, tmp_path):
    data, _, run = calibrated
    result = invoke("calibrate", run, data, "--device", "cpu")
    assert result.exit_code == 2 and "cannot support a promise" in result.stderr  # 6 held-out cases
    big = write_pictures(tmp_path / "big", n_cases=60)
    own = tmp_path / "own"
    assert invoke("train", big, "--out", own, *TINY, "--folds", "2").exit_code == 0
    assert invoke("calibrate", own, big, "--device", "cpu").exit_code == 0
    split = json.loads((own / "splits.json").read_text())["folds"][0]
    stored = json.loads((own / "fold_0" / "calibration.json").read_text())
    assert sorted(p["case_id"] for p in stored["pairs"]) == sorted(split["test"])


def test_predict_on_a_calibrated_run_decides_per_case(calibrated, tmp_path):
    data, _, run = calibrated
    out = tmp_path / "pred"
    result = invoke("predict", run, data / "images", "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "flagged for review" in result.stdout
    rows = read_rows(out / "cases.csv")
    for row in rows:
        low, estimate, high = float(row["dice_low"]), float(row["estimated_dice"]), float(row["dice_high"])
        assert 0 <= low <= estimate <= high <= 1
        assert row["review"] in ("True", "False")
        record = json.loads((out / "cases" / f"{row['case_id']}.json").read_text())
        image = Path(record["image"][0])
        assert record["image_sha256"] == [hashlib.sha256(image.read_bytes()).hexdigest()]
        assert record["model"]["sha256"] and record["estimated_dice"] == pytest.approx(estimate)
        where = Image.open(out / row["disagreement"])
        assert where.size == Image.open(image).size
    batch = json.loads((out / "prediction.json").read_text())
    assert batch["calibrated"] and batch["n_flagged"] == sum(r["review"] == "True" for r in rows)
    assert batch["promise"]["risk"] == 0.1 and "pvalue" in batch["shift"]
    assert batch["distinct_scores"] == len({float(r["score"]) for r in rows})


@pytest.mark.parametrize("threshold, said", [(0.8, "2 flagged for review: among"), (None, "all 3 flagged")])
def test_console_says_why_every_case_is_flagged(tmp_path, threshold, said):
    promise = {"threshold": threshold, "words": "among cases not flagged, ..."}
    n_flagged = 2 if threshold else 3
    record = {
        "n_cases": 3,
        "calibrated": True,
        "n_flagged": n_flagged,
        "promise": promise,
        "shift": {"warn": False},
    }
    (tmp_path / "prediction.json").write_text(json.dumps(record))
    lines = prediction_lines(tmp_path)
    assert said in lines and ("calibrate with more labelled cases" in lines) == (threshold is None)


@pytest.mark.parametrize(
    "n_cases, distinct, warned", [(3, 1, True), (3, 2, False), (1, 1, False), (3, None, False)]
)
def test_console_warns_when_every_case_has_the_same_score(tmp_path, n_cases, distinct, warned):
    record = {"n_cases": n_cases, "calibrated": False, "n_flagged": 0}
    if distinct is not None:  # records written before the count say nothing
        record["distinct_scores"] = distinct
    (tmp_path / "prediction.json").write_text(json.dumps(record))
    assert ("every case has the same score" in prediction_lines(tmp_path)) == warned


def test_a_stricter_promise_flags_at_least_as_many(calibrated, tmp_path):
    data, _, run = calibrated
    flagged = []
    for risk in ("0.3", "0.15"):
        out = tmp_path / f"pred{risk}"
        args = ("predict", run, data / "images", "--out", out, "--device", "cpu", "--risk", risk)
        assert invoke(*args).exit_code == 0
        flagged.append(sum(r["review"] == "True" for r in read_rows(out / "cases.csv")))
    assert flagged[0] <= flagged[1]


@pytest.mark.parametrize(
    "option, value", [("--risk", "1.5"), ("--risk", "0"), ("--delta", "1"), ("--coverage", "-1")]
)
def test_promise_options_out_of_range_are_one_line(calibrated, tmp_path, option, value):
    data, _, run = calibrated
    out = tmp_path / "pred"
    result = invoke("predict", run, data / "images", "--out", out, "--device", "cpu", option, value)
    assert_clean_failure(result, out, option)


def test_a_calibration_made_for_another_model_is_refused(calibrated, tmp_path):
    data, labelled, run = calibrated
    other = tmp_path / "other"
    assert invoke("train", data, "--out", other, *TINY, "--folds", "2", "--seed", "3").exit_code == 0
    (other / "fold_0" / "calibration.json").write_bytes((run / "fold_0" / "calibration.json").read_bytes())
    out = tmp_path / "pred"
    result = invoke("predict", other, data / "images", "--out", out, "--device", "cpu")
    assert_clean_failure(result, out, "different model", "relunet calibrate")


def test_a_calibration_of_another_score_is_refused(calibrated, tmp_path):
    """Self-pair (score, Dice) pairs say nothing of the anchors' agreement: no silent mix."""
    data, _, run = calibrated
    out = tmp_path / "pred"
    result = invoke("predict", run, data / "images", "--out", out, "--device", "cpu", "--anchors", "2")
    assert_clean_failure(result, out, "calibrated on the score 'self_pair C'", "'anchors_train C'")


def test_too_few_calibration_cases_is_one_line_and_writes_nothing(calibrated, tmp_path):
    data, _, run = calibrated
    small = labelled_pictures(tmp_path / "small", n_cases=8, seed=3)
    other = tmp_path / "other"
    assert invoke("train", data, "--out", other, *TINY, "--folds", "2").exit_code == 0
    result = invoke("calibrate", other, small, "--device", "cpu")
    assert result.exit_code == 2 and "at least" in result.stderr
    assert not (other / "fold_0" / "calibration.json").exists()


def test_an_uncalibrated_prediction_says_how_to_calibrate(calibrated, tmp_path):
    data, _, _ = calibrated
    run = tmp_path / "plain"
    assert invoke("train", data, "--out", run, *TINY, "--folds", "2").exit_code == 0
    out = tmp_path / "pred"
    result = invoke("predict", run, data / "images", "--out", out, "--device", "cpu")
    assert result.exit_code == 0 and "relunet calibrate" in result.stdout
    assert "estimated_dice" not in read_rows(out / "cases.csv")[0]
    assert json.loads((out / "prediction.json").read_text())["calibrated"] is False


def test_a_crossval_folder_is_calibrated_from_its_out_of_fold_cases(tmp_path):
    from conftest import crossval_self_pair_and_unet

    data = write_pictures(tmp_path / "pics", n_cases=50)
    folder = tmp_path / "cv"
    crossval_self_pair_and_unet(data, folder, [])
    result = invoke("calibrate", folder, data, "--device", "cpu")
    assert result.exit_code == 0, result.output
    stored = json.loads((folder / "models" / "relation_seed0" / "fold_0" / "calibration.json").read_text())
    table = read_rows(folder / "methods" / "relation_self_pair" / "fold_0" / "per_case.csv")
    assert [p["case_id"] for p in stored["pairs"]] == [r["case_id"] for r in table]
    assert [p["score"] for p in stored["pairs"]] == pytest.approx([float(r["C"]) for r in table])
    assert not (folder / "models" / "unet_seed0" / "fold_0" / "calibration.json").exists()


@pytest.mark.parametrize("guarantee", ["expected", "high-probability"])
def test_predict_with_each_guarantee_records_it_and_the_page_says_what_the_flag_buys(
    calibrated, tmp_path, guarantee
):
    from scipy.stats import false_discovery_control

    data, _, run = calibrated
    out = tmp_path / "pred"
    args = ("predict", run, data / "images", "--out", out, "--device", "cpu", "--guarantee", guarantee)
    result = invoke(*args, "--risk", "0.3")
    assert result.exit_code == 0, result.output
    rows = read_rows(out / "cases.csv")
    batch = json.loads((out / "prediction.json").read_text())
    assert batch["promise"]["guarantee"] == guarantee
    words = "on average over calibrations" if guarantee == "expected" else "with probability 90%"
    assert words in batch["promise"]["words"] and words in result.stdout
    case = json.loads((out / "cases" / f"{rows[0]['case_id']}.json").read_text())
    if guarantee == "expected":
        pvalues = [float(r["conformal_pvalue"]) for r in rows]
        assert all(0 < p <= 1 for p in pvalues) and case["conformal_pvalue"] == pytest.approx(pvalues[0])
        accepted = false_discovery_control(pvalues, method="bh") <= 0.3
        assert [r["review"] == "False" for r in rows] == accepted.tolist()
    else:
        assert "conformal_pvalue" not in rows[0] and "conformal_pvalue" not in case
    assert invoke("review", out).exit_code == 0
    page = (out / "review.html").read_text()
    assert "What the flag buys:" in page and words in page


def test_an_unknown_guarantee_is_one_line(calibrated, tmp_path):
    data, _, run = calibrated
    out = tmp_path / "pred"
    args = ("predict", run, data / "images", "--out", out, "--device", "cpu")
    result = invoke(*args, "--guarantee", "sometimes")
    assert_clean_failure(result, out, "--guarantee sometimes: choose expected or high-probability")


@pytest.fixture(scope="module")
def flip_calibrated(tmp_path_factory):
    """A Relation U-Net trained on flipped pictures, calibrated with flip TTA on 30 other pictures."""
    root = tmp_path_factory.mktemp("flips")
    data = write_pictures(root / "train", n_cases=12)
    labelled = labelled_pictures(root / "labelled", n_cases=30, seed=7)
    run = root / "run"
    assert invoke("train", data, "--out", run, *TINY, "--folds", "2", "--flips").exit_code == 0
    result = invoke("calibrate", run, labelled, "--device", "cpu", "--tta", "flip")
    assert result.exit_code == 0, result.output
    return data, labelled, run


def test_predict_with_flip_tta_on_a_run_calibrated_with_it(flip_calibrated, tmp_path):
    from relunet.inference.methods import method
    from relunet.reporting.review_page import write_review_page

    data, _, run = flip_calibrated
    tta = method("relation_tta")
    assert json.loads((run / "fold_0" / "calibration.json").read_text())["score"] == tta.score_id
    out = tmp_path / "pred"
    result = invoke("predict", run, data / "images", "--out", out, "--device", "cpu", "--tta", "flip")
    assert result.exit_code == 0, result.output
    rows = read_rows(out / "cases.csv")
    assert len(rows) == 12 and {r["score_id"] for r in rows} == {tta.score_id}
    assert all(
        0 <= float(r["dice_low"]) <= float(r["estimated_dice"]) <= float(r["dice_high"]) <= 1 for r in rows
    )
    batch = json.loads((out / "prediction.json").read_text())
    assert batch["calibrated"] and batch["score_id"] == tta.score_id and batch["forward_passes"] == 3
    assert f"{tta.score_id} (3 forward passes per image)" in write_review_page(out).read_text()


def test_a_calibration_with_flip_tta_is_refused_without_it_and_the_reverse(
    flip_calibrated, calibrated, tmp_path
):
    data, _, run = flip_calibrated
    out = tmp_path / "pred"
    result = invoke("predict", run, data / "images", "--out", out, "--device", "cpu")
    assert_clean_failure(result, out, "relation_tta", "self_pair C", "--tta")
    _, _, plain = calibrated  # calibrated without TTA, and trained without flips
    result = invoke("predict", plain, data / "images", "--out", out, "--device", "cpu", "--tta", "flip")
    assert_clean_failure(result, out, "--flips")


def test_a_run_not_trained_with_flips_is_refused_flip_tta_in_one_line(calibrated, tmp_path):
    data, labelled, run = calibrated
    for args in (("calibrate", run, labelled), ("evaluate", run, data, "--out", tmp_path / "ev")):
        result = invoke(*args, "--device", "cpu", "--tta", "flip")
        assert_clean_failure(result, tmp_path / "ev", "--tta flip", "--flips")
    assert json.loads((run / "fold_0" / "calibration.json").read_text())["score"] == "self_pair C"


def test_evaluate_a_flip_trained_unet_with_flip_tta(tmp_path):
    data = write_pictures(tmp_path / "pics", n_cases=8)
    run = tmp_path / "unet"
    assert (
        invoke("train", data, "--out", run, *TINY, "--folds", "2", "--model", "unet", "--flips").exit_code
        == 0
    )
    out = tmp_path / "ev"
    result = invoke("evaluate", run, data, "--out", out, "--device", "cpu", "--tta", "flip")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["method"] == "unet_flip_tta"
        and summary["score_id"] == "tta C"
        and summary["forward_passes"] == 3
    )
    assert len(read_rows(out / "per_case.csv")) == 4  # the test fold of 8 cases in 2 folds
