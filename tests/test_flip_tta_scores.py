"""benchmarks/flip_tta_scores.py: the score of relation_flip_tta chosen on one fold, then applied."""

import json

import numpy as np
import pytest
from conftest import load_benchmark

from relunet.atomic import write_csv, write_json
from relunet.evaluation.summary import summarise
from relunet.rundir import CrossvalFolder

scores = load_benchmark("flip_tta_scores")


def _write_fold(folder, method, fold, rows):
    dest = CrossvalFolder(folder).method_fold(method, fold)
    write_csv(dest.per_case, rows)
    write_json(dest.summary, {"method": method, "fold": fold, **summarise(rows), "forward_passes": 3})


def _rows(n=60, seed=0):
    """Cases whose Dice `C_good` ranks exactly, `C_noise` not at all; `C` and `score` hold `C_noise`."""
    rng = np.random.default_rng(seed)
    dice = rng.uniform(0.5, 1.0, n)
    noise = rng.uniform(0, 1, n)
    return [
        {
            "case_id": f"c{i:03d}",
            "dice_seg_a": d,
            "dice_s1s2": d,
            "C": z,
            "score": z,
            "C_noise": z,
            "C_good": d / 2,
        }
        for i, (d, z) in enumerate(zip(dice, noise, strict=True))
    ]


def test_the_candidate_that_ranks_the_cases_is_chosen_and_compared_with_the_rivals(tmp_path):
    folder = tmp_path / "isic"
    _write_fold(folder, "relation_flip_tta", 0, _rows())
    _write_fold(folder, "ensemble_5", 0, _rows(seed=1))
    _write_fold(folder, "relation_flip_tta", 1, _rows(seed=2))  # another fold is never read
    result = scores.compare(folder, 0)
    assert result["chosen"] == "C_good" and set(result["candidates"]) == {"C_noise", "C_good"}
    good = result["candidates"]["C_good"]
    assert good["spearman"] == pytest.approx(1.0) and good["eaurc"] == pytest.approx(0.0, abs=1e-12)
    assert good["oracle_flagged"] < result["candidates"]["C_noise"]["oracle_flagged"]
    assert set(result["rivals"]) == {"ensemble_5"}
    assert "`C_good` (chosen)" in scores.render(result, "isic")


def test_apply_rescores_only_the_folds_not_scored_by_the_default(tmp_path):
    folder = tmp_path / "isic"
    column = scores.METHOD.score_column
    rows = [{**r, column: r["C_good"]} for r in _rows()]
    _write_fold(folder, "relation_flip_tta", 0, rows)
    _write_fold(folder, "relation_flip_tta", 1, [{**r, "C": r[column], "score": r[column]} for r in rows])
    changed = scores.apply_default([folder])
    assert [p.name for p in changed] == ["fold_0"]
    fold = CrossvalFolder(folder).method_fold("relation_flip_tta", 0)
    summary = json.loads(fold.summary.read_text())
    assert summary["spearman"] == pytest.approx(1.0) and summary["forward_passes"] == 3
    assert scores.apply_default([folder]) == []
