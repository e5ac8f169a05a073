"""relunet.analysis.review_promise and benchmarks/review_check.py on a tiny fake cross-validation folder."""

import json
from pathlib import Path

import numpy as np
from conftest import run_benchmark

from relunet.analysis import review_promise

CASES_PER_FOLD = 45


def write_method(folder: Path, method: str, columns: tuple[str, ...], folds=range(5)) -> None:
    """Per-case tables of one method: the score columns follow the Dice, with noise."""
    rng = np.random.default_rng(len(method))
    for fold in folds:
        dice = rng.uniform(0.5, 1.0, size=CASES_PER_FOLD)
        lines = ["case_id,dice_seg_a," + ",".join(columns)]
        for i, d in enumerate(dice):
            scores = [np.clip(d + rng.normal(0, 0.05), 0, 1) for _ in columns]
            lines.append(f"case_{fold}_{i:03d},{d}," + ",".join(map(str, scores)))
        path = folder / "methods" / method / f"fold_{fold}" / "per_case.csv"
        path.parent.mkdir(parents=True)
        path.write_text("\n".join(lines) + "\n")


def fake_crossval(root: Path) -> Path:
    folder = root / "hippocampus"
    write_method(folder, "relation_self_pair", ("C",))
    write_method(folder, "mcdropout_n20", ("C", "C_pairwise"))
    write_method(folder, "unet", ("C",), folds=range(4))  # a fold missing: skipped
    return root


def test_pooled_scores_one_row_per_score_column_and_skipped_methods(tmp_path):
    rows, skipped = review_promise.read_scores(fake_crossval(tmp_path) / "hippocampus")
    assert set(rows) == {"relation_self_pair", "mcdropout_n20 (C)", "mcdropout_n20 (C_pairwise)"}
    assert skipped == ["unet"]
    row = rows["mcdropout_n20 (C_pairwise)"]
    assert row["method"] == "mcdropout_n20" and row["column"] == "C_pairwise"
    assert len(row["score"]) == len(row["dice"]) == 5 * CASES_PER_FOLD
    assert row["case_id"] == sorted(row["case_id"])


def test_splits_are_seeded_disjoint_and_the_same_for_every_method():
    cal, test = review_promise.split(225, 50, 3)
    again = review_promise.split(225, 50, 3)
    assert (cal == again[0]).all() and (test == again[1]).all()
    assert len(cal) == 50 and sorted(np.r_[cal, test]) == list(range(225))
    assert not np.array_equal(cal, review_promise.split(225, 50, 4)[0])


def test_check_dataset_rates_per_score_and_calibration_size(tmp_path):
    rows, _ = review_promise.read_scores(fake_crossval(tmp_path) / "hippocampus")
    settings = review_promise.check_dataset(rows, splits=4)
    assert {(s["score"], s["n_cal"]) for s in settings} == {(name, n) for name in rows for n in (50, 100)}
    for s in settings:
        assert s["splits"] == 4 and s["n_test"] == 225 - s["n_cal"]
        assert 0 <= s["coverage"] <= 1 and s["interval_width"] >= 0
        assert s["mae_estimate"] < s["mae_constant"]  # the score follows the Dice here
        assert [r["risk"] for r in s["risks"]] == list(review_promise.RISKS)
        for r in s["risks"]:
            for key in ("no_threshold", "flagged", "broken_test", "oracle_flagged"):
                assert 0 <= r[key] <= 1


def test_page_json_and_figures_from_the_command_line(tmp_path):
    crossval, out = fake_crossval(tmp_path / "cv"), tmp_path / "out"
    done = run_benchmark("review_check", "--splits", 3, "--out", out, "--crossval", crossval)
    assert done.returncode == 0, done.stderr
    page = (out / "review.md").read_text()
    assert f"python benchmarks/review_check.py --splits 3 --out {out} --crossval {crossval}" in page
    assert "**Assumption.**" in page and "| hippocampus | relation_self_pair |" in page
    assert "Skipped (a fold missing): unet." in page
    results = json.loads((out / "review" / "review_check.json").read_text())
    assert results["splits"] == 3 and set(results["datasets"]) == {"hippocampus"}
    for figure in ("flagged_hippocampus.png", "estimate_hippocampus.png"):
        assert (out / "review" / figure).read_bytes()[:4] == b"\x89PNG"
        assert f"(review/{figure})" in page


def test_no_crossval_found_is_one_line(tmp_path):
    done = run_benchmark("review_check", "--splits", 3, "--out", tmp_path / "out", "--crossval", tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "has a methods/ folder" in done.stderr
