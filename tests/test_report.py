"""The report's tables and figure labels: what they say for methods run on different numbers of folds."""

from pathlib import Path

import pytest
from conftest import crossval_self_pair_and_unet, write_pictures

from relunet.errors import InputError
from relunet.reporting.figures import fold_labels
from relunet.reporting.report import PANELS, build_report, panel_cases, render_tables


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
    summary["unet"]["hardware_by_fold"] = {"2": "NVIDIA H200", "0": None, "1": "NVIDIA H200"}
    tables = render_tables(summary, "Task04_Hippocampus")
    lines = tables.splitlines()
    assert "| unet | 3 | 0.850 ± 0.020 | 0.828 |" in lines
    assert "| mcdropout_n200 | 1 | 0.850 | — |" in lines
    assert "| method | fold 0 | fold 1 | fold 2 |" in lines
    assert "| unet | 0.500 | 0.700 | 0.600 |" in lines
    assert "| mcdropout_n200 | — | 0.400 | — |" in lines
    assert "| unet | not recorded (fold 0); NVIDIA H200 (folds 1, 2) |" in lines
    assert "| mcdropout_n200 | — |" in lines


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


def test_two_class_runs_show_each_class_and_no_one_class_paper_number():
    two_class = {
        **entry(2, {"0": 0.5, "1": 0.7}),
        "dice_seg_a_class1_mean_mean": 0.84,
        "dice_seg_a_class2_mean_mean": 0.82,
        "C_class1_mean_mean": 0.9,
        "C_class2_mean_mean": 0.8,
    }
    tables = render_tables({"unet": two_class}, "Task04_Hippocampus", classes=2)
    lines = tables.splitlines()
    assert lines[0] == "# Cross-validation on Task04_Hippocampus (2 classes)"
    assert "| unet | 2 | 0.850 ± 0.020 | — |" in lines
    assert "| method | Dice class 1 | Dice class 2 | C class 1 | C class 2 |" in lines
    assert "| unet | 0.840 | 0.820 | 0.900 | 0.800 |" in lines
    assert "class 1" not in render_tables({"unet": two_class}, "Task04_Hippocampus")


def test_missing_saved_masks_are_named_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = write_pictures(tmp_path / "pics", n_cases=6)
    crossval_self_pair_and_unet(data, Path("cv"), [])
    masks = sorted(Path("cv/methods/relation_self_pair/fold_0/predictions").iterdir())
    masks[0].unlink()
    with pytest.raises(InputError, match=f"{masks[0]}: the saved masks of this case are missing"):
        build_report(Path("cv"))
