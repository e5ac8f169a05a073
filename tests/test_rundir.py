"""The run folder's and the cross-validation folder's names, paths and readers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from relunet.atomic import write_json
from relunet.config import RunConfig, save_config
from relunet.data.splits import kfold
from relunet.errors import InputError
from relunet.rundir import CrossvalFolder, RunFolder, fold_number

ROOT = Path(__file__).resolve().parents[1]


def test_run_folder_paths(tmp_path):
    run = RunFolder(tmp_path)
    assert run.config_path == tmp_path / "config.yaml"
    assert run.splits_path == tmp_path / "splits.json"
    assert run.config_lock == tmp_path / ".config.lock"
    assert run.train_lock(3) == tmp_path / ".fold_3.train.lock"
    assert run.fold(2).checkpoint == tmp_path / "fold_2" / "checkpoint.pt"
    assert run.fold(2).history == tmp_path / "fold_2" / "history.csv"
    assert run.fold(2).calibration == tmp_path / "fold_2" / "calibration.json"
    assert run.fold(12).number == 12


def test_crossval_folder_paths(tmp_path):
    crossval = CrossvalFolder(tmp_path)
    assert crossval.model_run("relation_seed0").fold(1).checkpoint == (
        tmp_path / "models" / "relation_seed0" / "fold_1" / "checkpoint.pt"
    )
    method = crossval.method_fold("unet", 4)
    assert method.path == tmp_path / "methods" / "unet" / "fold_4"
    assert method.per_case.name == "per_case.csv" and method.summary.name == "summary.json"
    assert method.prediction("case_7") == method.path / "predictions" / "case_7.npz"
    assert method.lock == tmp_path / "methods" / "unet" / "fold_4.lock"
    assert crossval.summary == tmp_path / "summary.json"


def test_trained_folds_by_number(tmp_path):
    run = RunFolder(tmp_path)
    for k in (10, 2, 0):
        run.fold(k).path.mkdir()
        run.fold(k).checkpoint.write_bytes(b"")
    (tmp_path / "fold_5").mkdir()  # no checkpoint: not trained
    (tmp_path / "fold_x").mkdir()
    (tmp_path / "fold_x" / "checkpoint.pt").write_bytes(b"")  # not a fold name
    assert [f.number for f in run.trained_folds()] == [0, 2, 10]
    assert [fold_number(n) for n in ("fold_7", "fold_", "fold_²", "folds_1")] == [7, None, None, None]


def test_method_folds_and_model_config(tmp_path):
    crossval = CrossvalFolder(tmp_path)
    assert crossval.any_model_config() is None and not crossval.is_crossval()
    for k in (1, 0):
        crossval.method_fold("unet", k).path.mkdir(parents=True)
        crossval.method_fold("unet", k).per_case.write_text("case_id\n")
    crossval.method_fold("unet", 2).path.mkdir()
    assert [f.number for f in crossval.method_folds("unet")] == [0, 1]
    assert [f.number for f in crossval.method_folds("unet", None)] == [0, 1, 2]
    run = crossval.model_run("unet_seed0")
    run.path.mkdir(parents=True)
    save_config(RunConfig(), run.config_path)
    assert crossval.any_model_config() == run.config_path and crossval.is_crossval()
    assert run.read_config() == RunConfig()


def test_fold_split_reads_the_saved_splits(tmp_path):
    run = RunFolder(tmp_path)
    write_json(run.splits_path, {"seed": 0, "folds": kfold(["a", "b", "c", "d"], 2, 0)})
    split = run.fold_split(1)
    assert sorted(split["train"] + split["test"]) == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    "name, text",
    [
        ("config.yaml", "model: [unclosed\n  - x: {\n"),
        ("config.yaml", "model:\n  kind: 3\n  nonsense: 1\n"),
        ("splits.json", '{"folds": [{"train": 1}]}'),
        ("splits.json", "{not json\n\n"),
    ],
)
def test_readers_refuse_damaged_files_in_one_line(tmp_path, name, text):
    run = RunFolder(tmp_path)
    (tmp_path / name).write_text(text)
    read = run.read_config if name == "config.yaml" else lambda: run.fold_split(0)
    with pytest.raises(InputError) as err:
        read()
    assert "\n" not in str(err.value) and str(tmp_path / name) in str(err.value)


@pytest.mark.parametrize("name", ["config.yaml", "splits.json"])
def test_readers_refuse_missing_files(tmp_path, name):
    run = RunFolder(tmp_path)
    read = run.read_config if name == "config.yaml" else lambda: run.fold_split(0)
    with pytest.raises(InputError, match=re.escape(str(tmp_path / name))):
        read()


def test_no_fold_folder_name_outside_rundir():
    """Every fold folder name comes from `relunet.rundir`."""
    sources = [*(ROOT / "src").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources
        if path.name != "rundir.py" and ('f"fold_' in path.read_text() or "f'fold_" in path.read_text())
    ]
    assert offenders == []
