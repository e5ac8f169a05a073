"""benchmarks/head_average.py: the candidate segmentations agree with `relunet evaluate`'s columns."""

import json

import numpy as np
import pytest
from conftest import run_benchmark, write_pictures
from test_cli import TINY, invoke, read_rows


def test_head_average_scores_seg_a_and_s1s2_as_evaluate_does(tmp_path):
    data = write_pictures(tmp_path / "data", n_cases=10)
    run = tmp_path / "run"
    assert invoke("train", data, "--out", run, *TINY, "--folds", "2").exit_code == 0
    assert invoke("evaluate", run, data, "--out", tmp_path / "eval", "--device", "cpu").exit_code == 0
    rows = read_rows(tmp_path / "eval" / "per_case.csv")
    out = tmp_path / "head.json"
    done = run_benchmark("head_average", f"tiny={run}:0", "--data", data, "--out", out)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())["results"]["tiny"]
    assert result["n_cases"] == len(rows) == 5
    assert result["seg_a"]["dice"] == pytest.approx(np.mean([float(r["dice_seg_a"]) for r in rows]))
    assert result["(s1+s2)/2"]["dice"] == pytest.approx(np.mean([float(r["dice_s1s2"]) for r in rows]))
    assert "| tiny | 5 | four heads |" in out.with_suffix(".md").read_text()


def test_head_average_refuses_a_malformed_run_argument(tmp_path):
    done = run_benchmark("head_average", "no-name", "--data", tmp_path, "--out", tmp_path / "h.json")
    assert done.returncode == 2 and "give NAME=RUN[:FOLDS]" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "h.json").exists()
