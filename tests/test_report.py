"""The report's tables and figure labels: what they say for methods run on different numbers of folds."""

from relunet.reporting.figures import fold_labels
from relunet.reporting.report import PANELS, panel_cases, render_tables


def entry(n_folds: int, pearson_by_fold: dict[str, float]) -> dict:
    return {
        "n_folds": n_folds,
        "n_cases_mean": 10.0,
        "dice_seg_a_mean_mean": 0.85,
        "dice_seg_a_mean_std": 0.02,
        "pearson_mean": 0.6,
        "pearson_std": 0.1,
        "pearson_by_fold": pearson_by_fold,
    }


def test_single_fold_methods_show_no_spread_and_every_fold_has_a_column():
    summary = {
        "unet": entry(3, {"0": 0.5, "1": 0.7, "2": 0.6}),
        "mcdropout_n200": entry(1, {"1": 0.4}),
    }
    tables = render_tables(summary, "Task04_Hippocampus")
    lines = tables.splitlines()
    assert "| unet | 3 | 0.850 ± 0.020 | 0.828 |" in lines
    assert "| mcdropout_n200 | 1 | 0.850 | — |" in lines
    assert "| method | fold 0 | fold 1 | fold 2 |" in lines
    assert "| unet | 0.500 | 0.700 | 0.600 |" in lines
    assert "| mcdropout_n200 | — | 0.400 | — |" in lines


def test_figures_name_the_folds_of_a_method_run_on_fewer():
    summary = {"unet": entry(5, {}), "ensemble_5": entry(3, {}), "relation_anchors_test_n200": entry(1, {})}
    assert fold_labels(summary) == {
        "unet": "unet",
        "ensemble_5": "ensemble_5 (3/5 folds)",
        "relation_anchors_test_n200": "relation_anchors_test_n200 (1/5 folds)",
    }


def test_panel_cases_spread_over_the_ranking_by_confidence():
    rows = [{"case_id": str(i), "C": c} for i, c in enumerate([0.5, 0.1, 0.9, 0.3] * 10)]
    picks = panel_cases(rows)
    assert len(picks) == PANELS
    assert picks[0]["C"] == 0.1 and picks[-1]["C"] == 0.9
    assert [p["C"] for p in picks] == sorted(p["C"] for p in picks)
    assert panel_cases(rows[:3]) == sorted(rows[:3], key=lambda r: r["C"])
    assert panel_cases([]) == []
