"""relunet.analysis.review_promise and benchmarks/review_check.py on a tiny fake cross-validation folder."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_benchmark

from relunet.analysis import review_promise
from relunet.evaluation.decision import GUARANTEES

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


def test_check_dataset_rates_per_score_calibration_size_target_risk_and_guarantee(tmp_path):
    rows, _ = review_promise.read_scores(fake_crossval(tmp_path) / "hippocampus")
    settings = review_promise.check_dataset(rows, splits=4, targets=(0.8, 0.85))
    assert {(s["score"], s["n_cal"]) for s in settings} == {(name, n) for name in rows for n in (50, 100)}
    for s in settings:
        assert s["splits"] == 4 and s["n_test"] == 225 - s["n_cal"]
        assert 0 <= s["coverage"] <= 1 and s["interval_width"] >= 0
        assert s["mae_estimate"] < s["mae_constant"]  # the score follows the Dice here
        found = {(d["target_dice"], d["risk"], d["guarantee"]) for d in s["decisions"]}
        assert found == {(t, r, g) for t in (0.8, 0.85) for r in review_promise.RISKS for g in GUARANTEES}
        for d in s["decisions"]:
            for key in ("flagged", "fdr", "broken", "none_accepted", "oracle_flagged", "failure_rate"):
                assert 0 <= d[key] <= 1


def test_oracle_keeps_its_signature_and_share_flagged_its_arguments():
    score = np.linspace(0, 1, 100)
    dice = score.copy()  # a perfect score: the oracle flags exactly the failures
    assert review_promise.oracle_flagged(score, dice, 0.0) == pytest.approx(0.8)
    assert review_promise.oracle_flagged(score, dice, 0.0, target_dice=0.5) == pytest.approx(0.5)
    flagged = review_promise.share_flagged(score, dice, 50, "expected", target_dice=0.5, risk=0.1, splits=5)
    assert 0.3 <= flagged <= 0.6


def test_fold_mix_compares_own_fold_and_pooled_calibration(tmp_path):
    rows, _ = review_promise.read_scores(fake_crossval(tmp_path) / "hippocampus")
    assert review_promise.fold_mix_check(rows["relation_self_pair"], 50, 3) is None  # 45 cases a fold
    rng = np.random.default_rng(0)
    fold = np.repeat(np.arange(5), 200)
    dice = rng.uniform(0.5, 1.0, size=1000)
    score = dice + rng.normal(0, 0.05, size=1000) + 0.2 * fold  # five models, five scales
    entry = review_promise.fold_mix_check({"fold": fold, "score": score, "dice": dice}, 50, 20)
    assert entry["fold_sizes"] == [200] * 5
    own, pooled = entry["expected, own fold"], entry["expected, pooled"]
    assert own["fdr"] <= 0.1 + 3 * own["fdr_se"]
    assert pooled["flagged"] != own["flagged"]


def test_page_json_and_figures_from_the_command_line(tmp_path):
    crossval, out = fake_crossval(tmp_path / "cv"), tmp_path / "out"
    done = run_benchmark("review_check", "--splits", 3, "--out", out, "--crossval", crossval)
    assert done.returncode == 0, done.stderr
    page = (out / "review.md").read_text()
    assert f"python benchmarks/review_check.py --splits 3 --out {out} --crossval {crossval}" in page
    assert "## Headline: share of cases flagged" in page and "### hippocampus, τ = 0.85" in page
    assert "| Relation U-Net, self-pair C | " in page and "| expected | 0.1 |" in page
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
