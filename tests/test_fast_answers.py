"""Bad input is answered before torch, MONAI or ONNX Runtime load (they take seconds to import)."""

import json
import subprocess
import sys

from conftest import write_pictures

#: run in a fresh interpreter: each command in turn, in process, then which heavy libraries it loaded
PROBE = """
import contextlib, io, json, sys
from relunet.cli import main

HEAVY = ("torch", "monai", "onnxruntime", "matplotlib")
report = []
for args in json.loads(sys.argv[1]):
    sys.argv = ["relunet", *args]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            main()
            code = 0
        except SystemExit as stop:
            code = stop.code
    report.append({"args": args, "code": code, "stderr": stderr.getvalue(),
                   "loaded": [name for name in HEAVY if name in sys.modules]})
print(json.dumps(report))
"""


def test_bad_input_is_answered_before_the_heavy_libraries_load(tmp_path):
    data = write_pictures(tmp_path / "data", n_cases=4)
    missing, out = tmp_path / "missing", tmp_path / "out"
    run = tmp_path / "run"  # a run folder with a fold, so that the input is checked next
    (run / "fold_0").mkdir(parents=True)
    (run / "fold_0" / "checkpoint.pt").touch()
    damaged = tmp_path / "crossval"
    damaged.mkdir()
    (damaged / "summary.json").write_text("{")
    commands = {
        "train, no dataset": (["train", missing, "--out", out], missing),
        "train, bad option": (["train", data, "--out", out, "--lr", "5"], "--lr"),
        "train, bad pairing": (["train", data, "--out", out, "--pairing", "nope"], "--pairing"),
        "predict, no run": (["predict", missing, data / "images", "--out", out], missing),
        "predict, no input": (["predict", run, missing, "--out", out], missing),
        "evaluate, no run": (["evaluate", missing, data, "--out", out], missing),
        "evaluate, no dataset": (["evaluate", run, missing, "--out", out], missing),
        "calibrate, no run": (["calibrate", missing, data], missing),
        "calibrate, no dataset": (["calibrate", run, missing], missing),
        "export, no run": (["export", missing, "--out", tmp_path / "model.onnx"], missing),
        "crossval, no dataset": (["crossval", missing, "--out", out], missing),
        "report, damaged folder": (["report", damaged], damaged / "summary.json"),
        "review, no folder": (["review", missing], missing),
        "merge, no parts": (["merge", missing], missing),
    }
    argv = [[str(a) for a in args] for args, _ in commands.values()]
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True, text=True, check=True
    )
    report = json.loads(probe.stdout)
    for (name, (_, said)), answer in zip(commands.items(), report, strict=True):
        assert answer["code"] == 2, (name, answer)
        assert answer["stderr"].startswith("error: ") and str(said) in answer["stderr"], (name, answer)
        # the libraries stay loaded, so the first command that loads one is named here
        assert answer["loaded"] == [], (name, answer)
    assert not out.exists()
