"""The cross-validation end to end at CI size: 2 folds, 1 epoch, a few cases, then the report."""

import json
import shutil
import threading
import time

import pytest
from conftest import crossval_self_pair_and_unet, load_benchmark, run_benchmark, write_pictures
from typer.testing import CliRunner

import relunet.crossval as crossval_module
from relunet.cli import app
from relunet.config import TrainConfig, load_config
from relunet.errors import InputError
from relunet.locks import try_lock

METHODS = [
    "unet",
    "mcdropout_n3",
    "ensemble_5",
    "unet_flip_tta",
    "relation_self_pair",
    "relation_flip_tta",
    "relation_anchors_train_n3",
    "relation_anchors_test_n3",
]


def fold_0_of_2(methods: str) -> dict:
    """`crossval` keyword arguments: fold 0 of 2 of `methods`, 1 epoch of 8 samples, quiet."""
    return {
        "folds": 2,
        "fold": 0,
        "methods": crossval_module.select_methods(methods, (3,), (3,)),
        "train": TrainConfig(epochs=1, samples_per_epoch=8),
        "device": "cpu",
        "log": lambda line: None,
    }


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_crossval_resumes_and_reports(tmp_path):
    data = write_pictures(tmp_path / "pics", n_cases=8)
    out = tmp_path / "cv"
    common = [
        "--folds",
        2,
        "--epochs",
        1,
        "--samples-per-epoch",
        8,
        "--anchors",
        "3",
        "--mc-samples",
        "3",
        "--methods",
        ",".join(METHODS),
        "--device",
        "cpu",
    ]
    result = invoke("crossval", data, "--out", out, "--fold", 0, *common)
    assert result.exit_code == 0, result.output
    first = json.loads((out / "summary.json").read_text())
    assert first["unet"]["n_folds"] == 1
    stamp = (out / "methods" / "unet" / "fold_0" / "summary.json").stat().st_mtime_ns

    result = invoke("crossval", data, "--out", out, *common)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == METHODS
    assert all(entry["n_folds"] == 2 for entry in summary.values())
    assert (out / "methods" / "unet" / "fold_0" / "summary.json").stat().st_mtime_ns == stamp
    assert summary["ensemble_5"]["forward_passes_mean"] == 5
    assert all("pooled_aurc" in entry and "pooled_failures" in entry for entry in summary.values())
    assert len(list((out / "models").iterdir())) == 9  # relation, mcdropout, 5 U-Nets, two flip-trained
    assert load_config(out / "models" / "unet_flips_seed0" / "config.yaml").train.flips
    assert load_config(out / "models" / "relation_flips_seed0" / "config.yaml").train.flips
    assert summary["relation_flip_tta"]["forward_passes_mean"] == 3
    tta = json.loads((out / "methods" / "relation_flip_tta" / "fold_1" / "summary.json").read_text())
    assert {"C_pooled_mean", "C_mean_mean", "C_pairwise_mean"} <= tta.keys() and tta["seconds_per_case"] > 0
    assert not load_config(out / "models" / "unet_seed0" / "config.yaml").train.flips
    fold = json.loads((out / "methods" / "mcdropout_n3" / "fold_1" / "summary.json").read_text())
    assert "C_pairwise_mean" in fold and fold["n_cases"] == 4
    assert "CPU" in fold["hardware"] and summary["unet"]["hardware_by_fold"]["1"] == fold["hardware"]

    result = invoke("report", out)
    assert result.exit_code == 0, result.output
    page = (out / "report" / "report.html").read_text()
    assert "Table 1" in page and "data:image/png;base64" in page
    figures = {p.name for p in (out / "report" / "figures").iterdir()}
    assert figures == {
        "pearson.png",
        "coverage.png",
        "risk_coverage.png",
        "scatter.png",
        "ranked_cases.png",
        "union_inter.png",
    }
    assert "| relation_self_pair |" in (out / "report" / "tables.md").read_text()

    moved = data.rename(tmp_path / "moved")
    result = invoke("report", out)
    assert result.exit_code == 2 and str(data) in result.stderr and "--data" in result.stderr
    assert invoke("report", out, "--data", moved).exit_code == 0


def test_results_script_reports_a_missing_dataset_in_one_line(tmp_path):
    args = [
        "hippocampus",
        "--data",
        tmp_path / "nowhere",
        "--out",
        tmp_path / "cv",
        "--docs",
        tmp_path / "docs",
    ]
    result = run_benchmark("crossval_results", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert (
        result.stderr.strip()
        == f"error: {tmp_path / 'nowhere'}: no such folder; give a dataset folder (MSD or images/ + masks/)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_fresh_checkout_continues_from_the_published_folds(tmp_path, monkeypatch):
    """Published per-fold tables and settings stand in for a run folder left on another machine."""
    crossval_results = load_benchmark("crossval_results")
    data = write_pictures(tmp_path / "pics", n_cases=6)
    crossval_module.crossval(data, tmp_path / "cv", **fold_0_of_2("unet"))
    crossval_results._publish(tmp_path / "cv", tmp_path / "docs")
    fresh = tmp_path / "fresh"
    crossval_results._restore_published(tmp_path / "docs", fresh)
    table = "methods/unet/fold_0/per_case.csv"
    assert (fresh / table).read_bytes() == (tmp_path / "cv" / table).read_bytes()

    trained = []
    real_train = crossval_module.train_fold

    def train_and_record(*args, fold, **kwargs):
        trained.append(fold)
        return real_train(*args, fold=fold, **kwargs)

    monkeypatch.setattr(crossval_module, "train_fold", train_and_record)
    summary = crossval_module.crossval(data, fresh, **{**fold_0_of_2("unet"), "fold": None})
    assert trained == [1] and summary["unet"]["n_folds"] == 2

    other = tmp_path / "other"
    crossval_results._restore_published(tmp_path / "docs", other)
    settings = {**fold_0_of_2("unet"), "train": TrainConfig(epochs=2, samples_per_epoch=8)}
    with pytest.raises(InputError, match="other settings"):
        crossval_module.crossval(data, other, **settings)


def test_unknown_method_and_missing_summary(tmp_path):
    data = write_pictures(tmp_path / "pics", n_cases=4)
    result = invoke("crossval", data, "--out", tmp_path / "cv", "--methods", "magic")
    assert result.exit_code == 2 and "unknown" in result.stderr
    result = invoke("report", tmp_path / "nothing")
    assert result.exit_code == 2 and "summary.json" in result.stderr


def test_each_method_is_written_before_the_next_model_trains(tmp_path, monkeypatch):
    data = write_pictures(tmp_path / "pics", n_cases=6)
    real_train = crossval_module.train_fold

    def train_but_fail_on_unet(*args, model, **kwargs):
        if model.kind == "unet":
            raise KeyboardInterrupt  # the session ends while the U-Net trains
        return real_train(*args, model=model, **kwargs)

    monkeypatch.setattr(crossval_module, "train_fold", train_but_fail_on_unet)
    methods = crossval_module.select_methods("unet,relation_self_pair", (3,), (3,))
    with pytest.raises(KeyboardInterrupt):
        crossval_module.crossval(
            data,
            tmp_path / "cv",
            folds=2,
            fold=0,
            methods=methods,
            train=TrainConfig(epochs=1, samples_per_epoch=8),
            device="cpu",
            log=lambda _: None,
        )
    assert (tmp_path / "cv" / "methods" / "relation_self_pair" / "fold_0" / "summary.json").is_file()
    assert not (tmp_path / "cv" / "methods" / "unet").exists()


def test_pooled_metrics_find_failures_that_single_folds_cannot(tmp_path):
    per_fold = {0: [("a", 0.9, 0.9), ("b", 0.5, 0.2)], 1: [("c", 0.95, 0.8), ("d", 0.92, 0.7)]}
    for fold, cases in per_fold.items():
        folder = tmp_path / "methods" / "unet" / f"fold_{fold}"
        folder.mkdir(parents=True)
        lines = ["case_id,dice_seg_a,C"] + [f"{c},{d},{conf}" for c, d, conf in cases]
        (folder / "per_case.csv").write_text("\n".join(lines) + "\n")
        has_failure = any(d < 0.7 for _, d, _ in cases)
        (folder / "summary.json").write_text(
            json.dumps({"fold": fold, "n_cases": 2, "auroc_failure": 1.0 if has_failure else None})
        )
    methods = crossval_module.select_methods("unet", (3,), (3,))
    entry = crossval_module.aggregate(tmp_path, methods)["unet"]
    assert entry["auroc_failure_mean"] == 1.0 and entry["n_folds"] == 2
    assert entry["pooled_failures"] == 1
    assert entry["pooled_auroc_failure"] == 1.0
    assert entry["pooled_pearson"] > 0.9


def test_anchors_come_from_the_data_given_not_where_the_models_trained(tmp_path):
    """A cross-validation folder carried to another machine with its dataset evaluates there."""
    data = write_pictures(tmp_path / "pics", n_cases=6)
    out = tmp_path / "cv"
    run = fold_0_of_2("relation_anchors_train_n3")
    crossval_module.crossval(data, out, **run)
    shutil.rmtree(out / "methods")
    moved = data.rename(tmp_path / "elsewhere")
    summary = crossval_module.crossval(moved, out, **run)
    assert summary["relation_anchors_train_n3"]["n_folds"] == 1


def test_a_killed_evaluation_resumes_from_its_last_case_with_the_same_results(tmp_path, monkeypatch):
    data = write_pictures(tmp_path / "pics", n_cases=8)
    run = fold_0_of_2("mcdropout_n3")
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    crossval_module.crossval(data, whole, **run)
    shutil.copytree(whole / "models", killed / "models")
    predict, predicted = crossval_module._predict, []

    def killed_at_the_third_case(method, members, case, pool, rng):
        predicted.append(case.case_id)
        if len(predicted) == 3:
            raise KeyboardInterrupt
        return predict(method, members, case, pool, rng)

    monkeypatch.setattr(crossval_module, "_predict", killed_at_the_third_case)
    with pytest.raises(KeyboardInterrupt):
        crossval_module.crossval(data, killed, **run)
    predicted.clear()
    monkeypatch.setattr(
        crossval_module, "_predict", lambda *args: predicted.append(args[2]) or predict(*args)
    )
    crossval_module.crossval(data, killed, **run)
    assert len(predicted) == 2  # of the fold's 4 cases, the 2 finished before the kill are kept
    fold = "methods/mcdropout_n3/fold_0"
    assert (killed / fold / "per_case.csv").read_text() == (whole / fold / "per_case.csv").read_text()
    assert not (killed / fold / "per_case.partial.jsonl").exists()


def test_try_lock_excludes_other_holders(tmp_path):
    path = tmp_path / "deep" / "model.lock"
    with try_lock(path) as first, try_lock(path) as second:
        assert first and not second
    with try_lock(path) as again:
        assert again


def test_work_held_by_another_process_is_left_to_it(tmp_path, monkeypatch):
    """A model another process trains is skipped; the rest goes on, then it is waited for."""
    data = write_pictures(tmp_path / "pics", n_cases=6)
    out = tmp_path / "cv"
    monkeypatch.setattr(crossval_module, "WAIT_SECONDS", 0.05)
    held = threading.Event()

    def other_process():
        with try_lock(out / "models" / "relation_seed0" / "fold_0.lock"):
            held.set()
            while not (out / "methods" / "unet" / "fold_0" / "summary.json").is_file():
                time.sleep(0.05)

    other = threading.Thread(target=other_process)
    other.start()
    held.wait()
    log = []
    crossval_self_pair_and_unet(data, out, log)
    other.join()
    assert log == [
        "fold 0: train unet_seed0",
        "fold 0: evaluate unet",
        "fold 0: train relation_seed0",
        "fold 0: evaluate relation_self_pair",
    ]


def test_a_continued_crossval_must_have_the_same_settings(tmp_path):
    from dataclasses import asdict

    from relunet.config import DataConfig
    from relunet.errors import InputError
    from relunet.rundir import CrossvalFolder

    def settings(**train) -> dict:
        data = asdict(DataConfig(path=str(tmp_path / "data"), folds=2))
        train = {"augment": False, **train}
        return {"backbone": "basicunet", "data": data, "train": asdict(TrainConfig(**train)), "seed": 0}

    out = tmp_path / "cv"
    crossval_module._claim_settings(out, settings(epochs=3))
    saved = CrossvalFolder(out).config_path.read_text()
    assert "epochs: 3" in saved
    crossval_module._claim_settings(out, settings(epochs=3))  # the same: continues
    moved = settings(epochs=3)
    moved["data"]["path"] = "/elsewhere"
    crossval_module._claim_settings(out, moved)  # the data moved: continues
    with pytest.raises(InputError, match=r"made with other settings \(train.epochs, train.augment\)"):
        crossval_module._claim_settings(out, settings(epochs=4, augment=True))
    assert CrossvalFolder(out).config_path.read_text() == saved
    older = saved.replace("  augment: false\n", "")  # written before augmentation existed
    assert older != saved
    CrossvalFolder(out).config_path.write_text(older)
    crossval_module._claim_settings(out, settings(epochs=3, augment=False))  # missing = as then: continues
    with pytest.raises(InputError, match=r"\(train.augment\)"):
        crossval_module._claim_settings(out, settings(epochs=3, augment=None))  # today's default differs
    CrossvalFolder(out).config_path.write_text("{: not yaml")
    with pytest.raises(InputError, match="crossval.yaml: not readable"):
        crossval_module._claim_settings(out, settings(epochs=3))
