"""The report's tables and figure labels: what they say for methods run on different numbers of folds."""

import shutil
from pathlib import Path

import pytest
from conftest import crossval_self_pair_and_unet, write_pictures

from relunet.errors import InputError
from relunet.reporting.figures import fold_labels
from relunet.reporting.page import PANELS, build_report, panel_cases
from relunet.reporting.tables import render_tables


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
    assert "| mcdropout_n200 | 1 | 0.850 | 0.826 |" in lines  # the paper's Table 2
    assert "| method | fold 0 | fold 1 | fold 2 |" in lines
    assert "| unet | 0.500 | 0.700 | 0.600 |" in lines
    assert "| mcdropout_n200 | — | 0.400 | — |" in lines
    assert "| unet | evaluated before hardware was recorded (fold 0); NVIDIA H200 (folds 1, 2) |" in lines
    assert "| mcdropout_n200 | — |" in lines
    assert "From runs.json" not in tables


def test_folds_without_recorded_hardware_take_it_from_runs_json_if_every_call_ran_there():
    summary = {
        "unet": entry(3, {}) | {"hardware_by_fold": {"0": None, "1": None, "2": "x86_64 CPU, 1 thread"}},
        "ensemble_5": entry(2, {}) | {"hardware_by_fold": {"0": "NVIDIA H200", "1": "NVIDIA H200"}},
    }
    cpu = [
        {"methods": "unet", "fold": 0, "hardware": "x86_64 CPU, 2 threads"},
        {"methods": "all", "fold": None, "hardware": "x86_64 CPU, 1 thread"},
    ]
    gpu = {"methods": "ensemble_5", "fold": None, "hardware": "NVIDIA H200, 10 worker processes"}

    def places(calls: list[dict]) -> dict[str, str]:
        tables = render_tables(summary, "ISIC2017_Task1_256", calls=calls)
        table = tables.split("| method | hardware (folds) |\n| --- | --- |\n")[1].split("\n\n")[0]
        return dict(line.strip("| ").split(" | ") for line in table.splitlines())

    assert places(cpu) == {
        "unet": "x86_64 CPU, from runs.json (folds 0, 1); x86_64 CPU, 1 thread (fold 2)",
        "ensemble_5": "NVIDIA H200 (folds 0, 1)",
    }
    assert places([*cpu, gpu])["unet"] == (
        "evaluated before hardware was recorded (folds 0, 1); x86_64 CPU, 1 thread (fold 2)"
    )
    assert "\nFrom runs.json: evaluated before" in render_tables(summary, "x", calls=cpu)
    assert "From runs.json" not in render_tables(summary, "x", calls=[*cpu, gpu])
    assert "From runs.json" not in render_tables({"ensemble_5": summary["ensemble_5"]}, "x", calls=cpu)


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


@pytest.fixture(scope="module")
def tiny_crossval(tmp_path_factory) -> Path:
    """A tiny cross-validation folder (fold 0 of 2, self-pair and U-Net); copy it before damaging it."""
    root = tmp_path_factory.mktemp("report")
    crossval_self_pair_and_unet(write_pictures(root / "pics", n_cases=6), root / "cv", [])
    return root / "cv"


@pytest.fixture
def cv(tiny_crossval, tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_crossval, "cv")
    return Path("cv")


def test_damaged_saved_masks_are_named_not_a_traceback(cv):
    masks = sorted((cv / "methods/relation_self_pair/fold_0/predictions").iterdir())
    masks[0].write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(InputError, match=f"{masks[0]}: not the saved masks of a case"):
        build_report(cv)


def test_folds_without_saved_masks_report_without_case_figures(cv):
    # folds restored from the published tables carry no masks: the report draws no case from them
    shutil.rmtree(cv / "methods/relation_self_pair/fold_0/predictions")
    page = build_report(cv)
    assert page.is_file()
    assert not (cv / "report/figures/ranked_cases.png").exists()
    assert (cv / "report/figures/pearson.png").is_file()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no column case_id, C, dice_seg_a"),
        ("case_id,C\nx,0.5\n", "no column dice_seg_a"),
        ("case_id,C,dice_seg_a\n", "no test case in it"),
        ("case_id,C,dice_seg_a\nx,0.5\n", "line 2: not one cell per column"),
        ("case_id,C,dice_seg_a\nx,0.5,0.9,7\n", "line 2: not one cell per column"),
        ("case_id,C,dice_seg_a\nx,high,0.9\n", "line 2: 'C' is 'high', not a number"),
        (b"case_id,C,dice_seg_a\n\xff\xfe,0.5,0.9\n", "not a readable CSV table"),
    ],
)
def test_a_damaged_per_case_table_is_named_with_the_fix(cv, text, problem):
    table = cv / "methods/unet/fold_0/per_case.csv"
    table.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(InputError) as caught:
        build_report(cv)
    assert str(caught.value).startswith(f"{table}: {problem}")
    assert str(caught.value).endswith(
        f"delete {table.parent} and rerun `relunet crossval` with the same methods to evaluate it again"
    )


def test_a_method_of_summary_json_without_per_case_tables_is_named(cv):
    shutil.rmtree(cv / "methods/unet")
    with pytest.raises(
        InputError, match=r"cv/methods/unet: no per_case.csv of a fold, though summary.json lists"
    ):
        build_report(cv)


def test_per_case_tables_of_folds_with_other_columns_still_make_a_report(cv):
    table = cv / "methods/unet/fold_0/per_case.csv"
    shutil.copytree(table.parent, cv / "methods/unet/fold_1")
    header, *rows = table.read_text().splitlines()
    table.write_text("\n".join([f"{header},C_extra", *(f"{row},1.0" for row in rows)]) + "\n")
    page = build_report(cv).read_text()
    assert ">C_extra</th>" in page and "<td>—</td></tr>" in page  # fold 1 has no C_extra
