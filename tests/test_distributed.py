"""Training with torchrun: two CPU processes (gloo) on synthetic data."""

import csv
import os
import subprocess
import sys

import numpy as np
from conftest import write_pictures

from relunet.training.checkpoint import load_checkpoint, load_model
from relunet.training.distributed import Distributed


def test_shards_do_not_overlap_and_have_equal_length():
    order = np.random.default_rng(0).permutation(11)
    shards = [Distributed(rank, 3).shard(order) for rank in range(3)]
    assert len({len(s) for s in shards}) == 1
    seen = np.concatenate(shards)
    assert len(seen) == len(set(seen.tolist())) == 9


def test_torchrun_two_processes_train_in_step_and_resume(tmp_path):
    data = write_pictures(tmp_path / "pics", n_cases=10)
    run = tmp_path / "run"
    base = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "relunet",
        "train",
        str(data),
        "--out",
        str(run),
        "--device",
        "cpu",
        "--samples-per-epoch",
        "16",
        "--batch-size",
        "8",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run([*base, "--epochs", "1"], capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    # the ranks check each epoch that their weights are identical; a drift would fail the run
    state = load_checkpoint(run / "fold_0" / "checkpoint.pt")
    assert state["epoch"] == 1
    model, config = load_model(run / "fold_0" / "checkpoint.pt")
    assert config.model.kind == "relation"

    resumed = subprocess.run([*base, "--epochs", "2", "--resume"], capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with (run / "fold_0" / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert load_checkpoint(run / "fold_0" / "checkpoint.pt")["epoch"] == 2
