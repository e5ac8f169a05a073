import numpy as np
import pytest

from relunet.analysis.one_pass_scores import LEARNED, by_map, compare, inner_folds, render, render_maps
from relunet.evaluation.quality import cross_fitted, feature_columns, features


def _rows(n: int, seed: int = 0) -> list[dict]:
    """Per-case rows where Dice follows `C_soft` closely and `C` only loosely."""
    rng = np.random.default_rng(seed)
    dice = rng.uniform(0.5, 0.95, n)
    return [
        {
            "case_id": f"c{i}",
            "dice_seg_a": d,
            "predicted_fraction": rng.uniform(0.01, 0.05),
            "C": float(np.clip(d + rng.normal(0, 0.15), 0, 1)),
            "C_class1": 0.5,
            "C_soft": float(np.clip(d + rng.normal(0, 0.01), 0, 1)),
        }
        for i, d in enumerate(dice)
    ]


def test_feature_columns_leave_out_per_class_scores_and_metrics():
    columns = ["case_id", "dice_seg_a", "predicted_fraction", "C", "C_class1", "C_soft", "C_pairwise"]
    assert feature_columns(columns) == ["predicted_fraction", "C", "C_soft", "C_pairwise"]


def test_features_are_finite_at_the_ends():
    rows = [{"C": 1.0, "predicted_fraction": 0.0}, {"C": 0.0, "predicted_fraction": 1.0}]
    x = features(rows, ["C", "predicted_fraction"])
    assert np.isfinite(x).all() and x[0, 0] > x[1, 0] and x[0, 1] < x[1, 1]


def test_cross_fitted_estimate_never_sees_its_own_fold():
    rows = _rows(200)
    folds = np.arange(200) % 5
    estimate = cross_fitted(rows, folds)
    dice = np.array([r["dice_seg_a"] for r in rows])
    assert estimate.shape == (200,) and ((0 <= estimate) & (estimate <= 1)).all()
    assert np.corrcoef(estimate, dice)[0, 1] > 0.95  # it learned to read C_soft
    # changing the Dice of fold 0 changes fold 0's estimates not at all, the others' a lot
    moved = [
        dict(r, dice_seg_a=1 - r["dice_seg_a"]) if k == 0 else r for r, k in zip(rows, folds, strict=True)
    ]
    again = cross_fitted(moved, folds)
    np.testing.assert_allclose(again[folds == 0], estimate[folds == 0])
    assert not np.allclose(again[folds != 0], estimate[folds != 0])
    with pytest.raises(ValueError):
        cross_fitted(rows, np.zeros(200, int))


def test_compare_ranks_the_learned_and_the_raw_scores():
    rows = _rows(150, seed=1)
    folds = inner_folds(150)
    assert sorted(np.bincount(folds).tolist()) == [30] * 5
    entries = compare({"relation": rows}, {"relation": folds})
    by_score = {e["score"]: e for e in entries}
    assert set(by_score) == {"C", "C_soft", LEARNED}
    assert by_score["C_soft"]["spearman"] > by_score["C"]["spearman"]
    assert by_score[LEARNED]["eaurc"] < by_score["C"]["eaurc"]
    assert set(by_score["C"]["spearman_by_fold"]) == {0, 1, 2, 3, 4}
    table = render(entries)
    assert table.count("| relation |") == 3
    assert table.index("C_soft") < table.index("| C |")  # best e-AURC first


def test_fold_wins_and_the_share_sent_to_review():
    from relunet.analysis.one_pass_scores import fold_wins

    rows = _rows(300, seed=2)
    folds = np.arange(300) % 5
    entries = compare({"relation": rows}, {"relation": folds}, review_splits=20)
    wins = fold_wins(entries, ("relation", "C_soft"), ("relation", "C"))
    assert wins == {"folds": 5, "spearman": 5, "eaurc": 5}  # C_soft follows Dice far more closely
    by_score = {e["score"]: e for e in entries}
    # a sharper score sends fewer cases to an expert at the same guarantee
    assert 0 <= by_score["C_soft"]["flagged"] < by_score["C"]["flagged"] <= 1
    assert "sent to review" in render(entries)


def test_compare_holds_a_methods_scores_against_the_dice_column_it_is_given():
    """The same scores against another segmentation's Dice: `C` follows it, `C_soft` does not."""
    rows = [dict(r, dice_other=r["C"]) for r in _rows(150, seed=3)]
    folds = inner_folds(150)
    entries = compare({"a": rows, "b": rows}, {"a": folds, "b": folds}, dice_by_method={"b": "dice_other"})
    by = {(e["method"], e["score"]): e for e in entries}
    assert by["a", "C"]["dice"] == "dice_seg_a" and by["b", "C"]["dice"] == "dice_other"
    assert by["b", "C"]["spearman"] == pytest.approx(1.0)
    assert by["b", "C_soft"]["spearman"] < by["a", "C_soft"]["spearman"]
    assert by["b", LEARNED]["spearman"] != by["a", LEARNED]["spearman"]  # fitted to dice_other


def test_by_map_holds_one_score_against_the_dice_of_each_map_present():
    """`C` follows the union's Dice exactly and `seg_a`'s loosely; maps without a column are left out."""
    rows = [dict(r, dice_union=r["C"] * 0.9) for r in _rows(200, seed=4)]
    folds = np.arange(200) % 5
    entries = by_map(rows, folds)
    assert [e["map"] for e in entries] == ["seg_a", "union"]
    seg_a, union = entries
    assert union["spearman"] == pytest.approx(1.0) and union["eaurc"] == pytest.approx(0.0, abs=1e-12)
    assert seg_a["spearman"] < union["spearman"] and seg_a["eaurc"] > 0
    union_dice = np.array([r["dice_union"] for r in rows])
    fold_means = [union_dice[folds == f].mean() for f in range(5)]
    assert union["dice_mean"] == pytest.approx(np.mean(fold_means))
    assert union["dice_std"] == pytest.approx(np.std(fold_means, ddof=1))
    table = render_maps(entries)
    assert table.splitlines()[2].startswith("| seg_a |") and "| union |" in table
