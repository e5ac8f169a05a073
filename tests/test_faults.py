"""Fault injection: kills during training, concurrent writers, failed writes, output-folder rules.

Every case ends in a clean result or one error line with exit code 2, and leaves either the old
files or the new ones, never a mix, never a temporary file.
"""

import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import write_pictures
from test_cli import TINY, assert_clean_failure, invoke, read_rows

from relunet.results_folder import MARKER
from relunet.training.checkpoint import load_checkpoint

SLOW_TRAIN = ["--samples-per-epoch", "64", "--batch-size", "8", "--device", "cpu"]


def relunet_process(*args, umask: int | None = None, file_limit: int | None = None) -> subprocess.Popen:
    """Start the real command line as a user would, optionally under a umask or a file-size limit."""

    def setup() -> None:
        if umask is not None:
            os.umask(umask)
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    return subprocess.Popen(
        [sys.executable, "-m", "relunet", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        preexec_fn=setup,
    )


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def one_clean_line(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".tmp" in p.name or ".staging-" in p.name or ".old-" in p.name]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny dataset and a Relation U-Net trained one epoch on it."""
    root = tmp_path_factory.mktemp("faults")
    data = write_pictures(root / "pics", n_cases=8)
    run = root / "run"
    assert invoke("train", data, "--out", run, *TINY).exit_code == 0
    return data, run


# --- output folders ---------------------------------------------------------------------------


def test_predict_into_the_dataset_is_refused_and_its_masks_stay(trained, tmp_path):
    data, run = trained
    copy = Path(shutil.copytree(data, tmp_path / "gt"))
    before = {p.name: p.read_bytes() for p in (copy / "masks").iterdir()}
    for out in (copy, copy / "masks", copy / "masks" / "pred", tmp_path):
        result = invoke("predict", run, copy, "--out", out, "--device", "cpu")
        assert result.exit_code == 2 and "the input data" in result.stderr, result.stderr
    assert {p.name: p.read_bytes() for p in (copy / "masks").iterdir()} == before
    result = invoke("evaluate", run, copy, "--out", copy / "masks", "--device", "cpu")
    assert result.exit_code == 2 and "the input data" in result.stderr
    result = invoke("predict", run, copy, "--out", run / "pred", "--device", "cpu")
    assert result.exit_code == 2 and "the run folder" in result.stderr
    assert not (run / "pred").exists()


def test_train_into_the_dataset_is_refused(trained):
    data, _ = trained
    assert_clean_failure(invoke("train", data, "--out", data / "run", *TINY), data / "run", "training data")


def test_existing_results_need_overwrite_which_replaces_them_whole(trained, tmp_path):
    data, run = trained
    out = tmp_path / "pred"
    assert invoke("predict", run, data / "images", "--out", out, "--device", "cpu").exit_code == 0
    stale = out / "masks" / "stale.png"
    stale.write_bytes(b"old")
    result = invoke("predict", run, data / "images", "--out", out, "--device", "cpu")
    assert result.exit_code == 2 and "--overwrite" in result.stderr
    assert stale.exists()
    result = invoke("predict", run, data / "images", "--out", out, "--device", "cpu", "--overwrite")
    assert result.exit_code == 0, result.output
    assert not stale.exists()
    listed = {Path(r["mask"]).name for r in read_rows(out / "cases.csv")}
    assert listed == {p.name for p in (out / "masks").iterdir()}
    assert temporaries(tmp_path) == []


def test_a_folder_relunet_did_not_write_is_never_replaced(trained, tmp_path):
    data, run = trained
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    for extra in ([], ["--overwrite"]):
        result = invoke("predict", run, data / "images", "--out", out, "--device", "cpu", *extra)
        assert result.exit_code == 2 and "did not write" in result.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_failure_midway_leaves_the_old_results(trained, tmp_path, monkeypatch):
    data, run = trained
    out = tmp_path / "pred"
    assert invoke("predict", run, data / "images", "--out", out, "--device", "cpu").exit_code == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    import relunet.inference.workflows as runs

    written = []

    def failing_write(case, mask, label_sets, out_dir):
        if len(written) == 3:
            raise OSError(28, "No space left on device", str(out_dir / f"{case.case_id}.png"))
        written.append(case.case_id)
        return real_write(case, mask, label_sets, out_dir)

    real_write = runs.write_mask
    monkeypatch.setattr(runs, "write_mask", failing_write)
    result = invoke("predict", run, data / "images", "--out", out, "--device", "cpu", "--overwrite")
    assert result.exit_code == 2 and "No space left on device" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert temporaries(tmp_path) == []


def test_a_killed_writer_leaves_old_results_that_the_next_run_recovers(trained, tmp_path):
    data, run = trained
    out = tmp_path / "pred"
    assert invoke("predict", run, data / "images", "--out", out, "--device", "cpu").exit_code == 0
    # a kill between the two renames of a swap: the old results moved aside, the new not yet in
    moved = tmp_path / f".{out.name}.old-999"
    os.rename(out, moved)
    staging = tmp_path / f".{out.name}.staging-abc"
    staging.mkdir()
    result = invoke("predict", run, data / "images", "--out", out, "--device", "cpu")
    assert result.exit_code == 2 and "--overwrite" in result.stderr  # the old results are back
    assert (out / MARKER).is_file() and not moved.exists() and not staging.exists()


def test_concurrent_predicts_into_one_folder_never_mix(trained, tmp_path):
    data, run = trained
    out = tmp_path / "pred"
    args = ("predict", run, data / "images", "--out", out, "--device", "cpu")
    first, second = relunet_process(*args), relunet_process(*args)
    results = [finish(first), finish(second)]
    assert sorted(r.returncode for r in results) == [0, 2], [r.stderr for r in results]
    loser = next(r for r in results if r.returncode == 2)
    assert "another relunet process" in loser.stderr or "--overwrite" in loser.stderr
    listed = {Path(r["mask"]).name for r in read_rows(out / "cases.csv")}
    assert listed == {p.name for p in (out / "masks").iterdir()}
    assert temporaries(tmp_path) == []


def test_outputs_follow_the_umask(trained, tmp_path):
    data, run = trained
    for umask, file_mode in ((0o022, 0o644), (0o027, 0o640)):
        out = tmp_path / f"pred{umask:o}"
        result = finish(relunet_process("predict", run, data / "images", "--out", out, umask=umask))
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE((out / "cases.csv").stat().st_mode) == file_mode
        assert stat.S_IMODE(next((out / "masks").iterdir()).stat().st_mode) == file_mode
        assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask


# --- training ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option, value",
    [
        ("--epochs", "0"),
        ("--epochs", "-1"),
        ("--lr", "-1"),
        ("--batch-size", "0"),
        ("--samples-per-epoch", "0"),
        ("--same-fraction", "1.5"),
        ("--folds", "1"),
        ("--image-size", "0"),
        ("--slice-axis", "5"),
        ("--window", "400,-100"),
        ("--loss", "mse"),
        ("--model", "vnet"),
    ],
)
def test_every_bad_training_option_is_one_line_and_writes_nothing(trained, tmp_path, option, value):
    data, _ = trained
    out = tmp_path / "run"
    args = [a for a in TINY if a != "--epochs" and a != "1"] if option == "--epochs" else TINY
    assert_clean_failure(invoke("train", data, "--out", out, *args, option, value), out, option)


def test_a_run_folder_without_a_trained_fold_accepts_corrected_settings(trained, tmp_path):
    data, _ = trained
    out = tmp_path / "run"
    assert_clean_failure(invoke("train", data, "--out", out, *TINY, "--lr", "-1"), out, "--lr")
    # a config left by a command that died before its first checkpoint binds nothing
    out.mkdir()
    (out / "config.yaml").write_text("model: {kind: unet}\n")
    assert invoke("train", data, "--out", out, *TINY, "--lr", "1e-3").exit_code == 0
    result = invoke("train", data, "--out", out, *TINY, "--lr", "1e-2", "--fold", "1")
    assert result.exit_code == 2 and "other settings (train.lr)" in result.stderr


def test_two_trainings_into_one_folder_one_wins_the_other_is_refused(trained, tmp_path):
    data, _ = trained
    out = tmp_path / "run"
    first = relunet_process("train", data, "--out", out, *SLOW_TRAIN, "--epochs", "3", "--seed", "0")
    time.sleep(0.02)
    second = relunet_process("train", data, "--out", out, *SLOW_TRAIN, "--epochs", "4", "--seed", "1")
    results = [finish(first), finish(second)]
    assert sorted(r.returncode for r in results) == [0, 2], [r.stderr for r in results]
    winner = 0 if results[0].returncode == 0 else 1
    state = load_checkpoint(out / "fold_0" / "checkpoint.pt")
    assert state["config"]["train"]["seed"] == winner and state["epoch"] == 3 + winner
    assert len(read_rows(out / "fold_0" / "history.csv")) == 3 + winner


def test_kill_at_several_moments_then_resume(trained, tmp_path):
    data, _ = trained
    out = tmp_path / "run"
    args = ("train", data, "--out", out, *SLOW_TRAIN, "--epochs", "6")
    process = relunet_process(*args)
    for delay in (6.0, 2.5, 4.0):
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        (out / "fold_0" / ".checkpoint.pt.orphan.tmp.pt").parent.mkdir(parents=True, exist_ok=True)
        (out / "fold_0" / ".checkpoint.pt.orphan.tmp.pt").write_bytes(b"partial")
        if (out / "fold_0" / "checkpoint.pt").is_file():
            state = load_checkpoint(out / "fold_0" / "checkpoint.pt")
            assert len(state["history"]) == state["epoch"]
        process = relunet_process(*args, "--resume")
    result = finish(process)
    assert result.returncode == 0, result.stderr
    state = load_checkpoint(out / "fold_0" / "checkpoint.pt")
    history = read_rows(out / "fold_0" / "history.csv")
    assert state["epoch"] == 6 and [int(r["epoch"]) for r in history] == list(range(1, 7))
    assert temporaries(out) == []


def test_file_size_limit_is_one_line_and_keeps_the_checkpoint(trained, tmp_path):
    data, _ = trained
    out = tmp_path / "run"
    assert invoke("train", data, "--out", out, *TINY).exit_code == 0
    before = (out / "fold_0" / "checkpoint.pt").read_bytes()
    process = relunet_process(
        "train", data, "--out", out, *TINY[2:], "--epochs", "2", "--resume", file_limit=200_000
    )
    result = finish(process)
    one_clean_line(result, "checkpoint.pt", "cannot write")
    assert (out / "fold_0" / "checkpoint.pt").read_bytes() == before
    assert temporaries(out) == []


def test_an_unwritable_output_folder_is_one_line(trained, tmp_path):
    data, run = trained
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    result = invoke("predict", run, data / "images", "--out", blocker / "pred", "--device", "cpu")
    assert result.exit_code == 2 and str(blocker) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = invoke("train", data, "--out", blocker / "run", *TINY)
    assert result.exit_code == 2 and str(blocker) in result.stderr


def test_a_checkpoint_with_wrong_contents_is_one_line_and_overwrite_retrains(trained, tmp_path):
    data, run = trained
    out = Path(shutil.copytree(run, tmp_path / "run"))
    torch.save({"weights": torch.zeros(3)}, out / "fold_0" / "checkpoint.pt")
    result = invoke("predict", out, data / "images", "--out", tmp_path / "pred", "--device", "cpu")
    assert result.exit_code == 2 and "damaged checkpoint" in result.stderr and "--overwrite" in result.stderr
    result = invoke("train", data, "--out", out, *TINY, "--resume")
    assert result.exit_code == 2 and "damaged checkpoint" in result.stderr
    result = invoke("train", data, "--out", out, *TINY, "--overwrite")
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out / "fold_0" / "checkpoint.pt")["epoch"] == 1


@pytest.mark.parametrize(
    "option, value",
    [
        ("--epochs", "0"),
        ("--folds", "1"),
        ("--failure-threshold", "2"),
        ("--anchors", "0"),
        ("--mc-samples", "-3"),
    ],
)
def test_bad_crossval_options_are_one_line_and_write_nothing(trained, tmp_path, option, value):
    data, _ = trained
    out = tmp_path / "cv"
    result = invoke("crossval", data, "--out", out, "--device", "cpu", option, value)
    assert_clean_failure(result, out, option)


@pytest.mark.parametrize(
    "option, value", [("--anchors", "-1"), ("--mc-samples", "0"), ("--num-parts", "0"), ("--part-id", "3")]
)
def test_bad_predict_options_are_one_line_and_write_nothing(trained, tmp_path, option, value):
    data, run = trained
    out = tmp_path / "pred"
    result = invoke("predict", run, data / "images", "--out", out, "--device", "cpu", option, value)
    assert_clean_failure(result, out, option)


def test_a_refused_rename_at_the_swap_is_one_line_and_keeps_the_old_results(trained, tmp_path, monkeypatch):
    data, run = trained
    out = tmp_path / "pred"
    assert invoke("predict", run, data / "images", "--out", out, "--device", "cpu").exit_code == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    import relunet.results_folder as results_folder

    def refused(source, target):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(results_folder.os, "rename", refused)
    result = invoke("predict", run, data / "images", "--out", out, "--device", "cpu", "--overwrite")
    assert result.exit_code == 2 and "Permission denied" in result.stderr and str(out) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize(
    "summary, table, words",
    [
        ("{", "case_id,dice_seg_a,C\na,0.9,0.8\n", "damaged fold summary"),
        ("[1, 2]", "case_id,dice_seg_a,C\na,0.9,0.8\n", "damaged fold summary"),
        ('{"fold": 0, "pearson": 0.5}', "case_id,dice_seg_a,C\na,zero,0.8\n", "damaged per-case table"),
    ],
)
def test_crossval_aggregate_of_damaged_fold_files_is_one_line(tmp_path, summary, table, words):
    from relunet.crossval import aggregate, select_methods
    from relunet.errors import InputError

    fold = tmp_path / "methods" / "unet" / "fold_0"
    fold.mkdir(parents=True)
    (fold / "summary.json").write_text(summary)
    (fold / "per_case.csv").write_text(table)
    with pytest.raises(InputError, match=words) as caught:
        aggregate(tmp_path, select_methods("unet", (3,), (3,)))
    assert "\n" not in str(caught.value) and "relunet crossval" in str(caught.value)
