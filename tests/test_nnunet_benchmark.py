"""benchmarks/nnunet_hippocampus.py's page: rows from the work folder's records, targets judged from them."""

import json

import numpy as np
import pytest
from conftest import load_benchmark

pytest.importorskip("SimpleITK", reason="the nnunet extra (make test installs it)")
bench = load_benchmark("nnunet_hippocampus")


def write_model(work, trainer, configuration, iterations, score, dice, seed=0):
    """A trained fold-0 model's record and, with scores, its prediction's per_case.csv."""
    model = bench.Model(trainer, configuration, 0, seed)
    record = {"seconds": 9.0, "peak_rss_mb": 1000.0, "epoch_seconds": [8.0], "epochs": 1}
    model.record(work).parent.mkdir(parents=True)
    model.record(work).write_text(json.dumps({**record, "iterations": iterations}))
    if score is not None:
        write_per_case(model.predictions(work), score, dice)


def write_per_case(folder, score, dice):
    folder.mkdir(parents=True)
    rows = enumerate(zip(score, dice, strict=True))
    lines = ["case_id,score,dice"] + [f"c{i},{s},{d}" for i, (s, d) in rows]
    (folder / "per_case.csv").write_text("\n".join(lines) + "\n")


def step_time(ratio, paired=None):
    seconds = {bench.RELATION: ratio, bench.PLAIN: 1.0}
    row = {"median_seconds": seconds, "ratio": ratio, "batch_size": 9, "patch_size": [4, 4], "steps": 3}
    if paired:
        row |= {"paired_ratios": paired, "median_paired_ratio": float(np.median(paired))}
    return {"cpu": {"2d": {**row, "warmup": 0, "process_peak_rss_mb": 50.0, "threads": 2, "command": "x"}}}


def test_rows_targets_and_review_shares_come_from_the_records(tmp_path):
    rng = np.random.default_rng(0)
    dice = rng.uniform(0.7, 0.95, 52)
    write_model(tmp_path, bench.RELATION, "2d", 6, dice + rng.normal(0, 0.01, 52), dice - 0.005)
    write_model(tmp_path, bench.PLAIN, "2d", 6, rng.uniform(size=52), dice)
    write_model(tmp_path, bench.PLAIN, "2d", 6, None, None, seed=1)
    write_per_case(bench.ensemble_predictions(tmp_path, "2d", 2), rng.uniform(size=52), dice)
    write_model(tmp_path, bench.RELATION, "3d_fullres", 6, None, None)
    write_model(tmp_path, bench.PLAIN, "3d_fullres", 4, None, None)

    results = bench.collect(tmp_path)
    rows = {(r["configuration"], r["trainer"], r["seed"]): r for r in results["models"]}
    assert len(rows) == 5 and "dice" not in rows["3d_fullres", bench.RELATION, 0]
    relation = rows["2d", bench.RELATION, 0]
    assert relation["cases"] == 52 and relation["dice"] == pytest.approx(dice.mean() - 0.005)
    assert relation["spearman"] > 0.9
    assert relation["below_target"] == pytest.approx(np.mean(dice - 0.005 < 0.85))
    # the oracle threshold sees the true Dice of all cases; fitted on half of them, the flag pays more here
    assert relation["oracle_flagged"] <= relation["expected_flagged"] <= 1
    assert results["ensembles"][0]["members"] == 2 and results["pooled"] == []

    text = bench.page(results, step_time(1.05), "W", None)
    assert f"| 2d | nnUNetTrainerRelation | 1 x 6 | {relation['dice']:.3f} |" in text
    assert "(-0.005; within 0.01: met)" in text and "above: met" in text and "(<= 1.3x: met)" in text
    assert "3d_fullres: 1 epoch(s) x 4 iterations and 1 epoch(s) x 6 iterations (NOT the same" in text
    assert "deep ensemble of 2" in text
    assert "above: missed" not in text
    assert "(<= 1.3x: missed)" in bench.page(results, step_time(1.4), "W", None)
    # the per-batch ratios, adjacent in time, decide where recorded
    drifting = bench.page(results, step_time(1.4, [1.1, 1.2, 1.0]), "W", None)
    assert "time per iteration 1.10x on cpu (<= 1.3x: met)" in drifting and "1.10x (1.00-1.20)" in drifting
