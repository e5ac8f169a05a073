"""Cross-validation of every method: train, predict the test fold, evaluate, aggregate.

Per fold and method (those needing the fewest models of their own first: the Relation U-Net,
the U-Net, flip TTA, MC dropout, the ensemble), the models the method needs are trained unless an
earlier method trained them, the test fold is predicted and evaluated, and the method's
results are written; then the folds are aggregated.

Layout of the output folder `DIR`:

    DIR/models/<kind>[_flips]_seed<S>/    a `relunet train` run folder per trained model
    DIR/methods/<method>/fold_K/          per_case.csv, summary.json, predictions/ (masks, npz);
                                          per_case.partial.jsonl while it runs
    DIR/summary.json                      per method: mean and std over folds of each metric
    DIR/crossval.yaml                     the settings all models share (a continued call must match)

Finished folds and methods are skipped, training resumes from checkpoints and an evaluation
from its last finished case, so a killed cross-validation continues where it stopped; `--fold K`
lets one process do one fold. Several processes may share `DIR`: each model and each evaluation
is claimed with a file lock, so they divide the work between them (a process waits only when
everything left is held by others).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import yaml

from relunet.atomic import atomic_path, remove_temporaries, write_csv, write_json, write_text
from relunet.config import BEFORE_IT_EXISTED, DataConfig, ModelConfig, RunConfig, TrainConfig, check_ranges
from relunet.data.layouts import DatasetIndex, index_dataset
from relunet.data.preprocess import label_targets
from relunet.data.training_set import load_cases
from relunet.device import describe
from relunet.errors import InputError
from relunet.evaluation.progress import CaseProgress
from relunet.evaluation.summary import FAILURE_THRESHOLD, read_per_case, summarise
from relunet.inference.methods import ENSEMBLE_SIZE, InferenceMethod
from relunet.inference.methods import method as method_named
from relunet.inference.predictor import Prediction, Predictor
from relunet.inference.workflows import case_row, open_predictor
from relunet.locks import sole_writer, try_lock
from relunet.nets import check_features
from relunet.results_folder import check_apart
from relunet.rundir import SUMMARY_NAME, CrossvalFolder, MethodFold, RunFolder
from relunet.training.checkpoint import load_checkpoint
from relunet.training.train_workflow import train_fold
from relunet.types import Case

#: confidence metrics recomputed on all folds' test cases together
POOLED = ("pearson", "spearman", "aurc", "eaurc", "auroc_failure")
#: seconds a process waits before looking again at work other processes hold
WAIT_SECONDS = 5.0


def all_methods(
    anchors: tuple[int, ...] = (10, 200), mc: tuple[int, ...] = (20, 200)
) -> list[InferenceMethod]:
    """The methods of the paper and the stronger baselines, in table order."""
    return [
        method_named("unet"),
        *(method_named("mcdropout", n) for n in mc),
        method_named("ensemble", ENSEMBLE_SIZE),
        method_named("tta"),
        method_named("self_pair"),
        method_named("relation_tta"),
        *(method_named("anchors_train", n) for n in anchors),
        *(method_named("anchors_test", n) for n in anchors),
    ]


def select_methods(names: str | None, anchors: tuple[int, ...], mc: tuple[int, ...]) -> list[InferenceMethod]:
    """The methods named in a comma-separated list (all when None)."""
    if any(n < 1 for n in (*anchors, *mc)):
        raise InputError(f"--anchors {anchors} --mc-samples {mc}: every count must be at least 1")
    known = all_methods(anchors, mc)
    if not names:
        return known
    by_name = {m.name: m for m in known}
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in by_name]
    if unknown:
        raise InputError(f"--methods {','.join(unknown)}: unknown; choose from {', '.join(by_name)}")
    return [by_name[n] for n in chosen]


def crossval(
    data: Path,
    out: Path,
    folds: int = 5,
    fold: int | None = None,
    methods: list[InferenceMethod] | None = None,
    data_cfg: DataConfig | None = None,
    train: TrainConfig | None = None,
    device: str = "auto",
    seed: int = 0,
    log: Callable[[str], None] = print,
    failure_threshold: float = FAILURE_THRESHOLD,
    backbone: str = "basicunet",
    features: tuple[int, ...] | None = None,
) -> dict:
    """Run (or continue) the cross-validation and return the aggregated summary.

    Every model is trained with `data_cfg` (its folds set to `folds`) and `train`, None being the
    defaults, and built on `backbone` (see `relunet.nets.backbone_catalogue`) with the widths `features`
    (None: the backbone's default), the baselines as the Relation U-Net. A test case with Dice
    below `failure_threshold` counts as a failure (AUROC of finding them).
    """
    methods = methods or all_methods()
    out = Path(out)
    check_apart(out, {"the input data": data})
    data_cfg, train = replace(data_cfg or DataConfig(), folds=folds), train or TrainConfig()
    model = ModelConfig(backbone=backbone, features=features, spatial_dims=data_cfg.dims)
    check_ranges(RunConfig(model, data_cfg, train))
    check_features(model)
    if not 0 < failure_threshold <= 1:
        raise InputError(f"--failure-threshold {failure_threshold}: give a Dice between 0 and 1")
    training = _Training(Path(data), backbone, features, data_cfg, train, device)
    if fold is not None and not 0 <= fold < folds:
        raise InputError(f"--fold {fold}: choose a fold from 0 to {folds - 1}")
    todo = range(folds) if fold is None else [fold]
    test_cases = _TestCases(index_dataset(data), out)
    settings = {
        "backbone": backbone,
        "features": features,
        "data": asdict(data_cfg),
        "train": asdict(train),
        "seed": seed,
    }
    _claim_settings(out, settings)
    pending = sorted(((m, k) for k in todo for m in methods), key=lambda w: (work_order(w[0]), w[1]))
    while pending := [(m, k) for m, k in pending if not evaluated(out, m, k)]:
        # `any` stops at the first piece of work done: then look again from the most important
        if not any(
            _advance(out, m, k, training, test_cases, device, seed, failure_threshold, log)
            for m, k in pending
        ):
            time.sleep(WAIT_SECONDS)  # what is left is in other processes' hands
    summary = aggregate(out, methods, failure_threshold)
    write_json(CrossvalFolder(out).summary, summary)
    return summary


def _claim_settings(out: Path, settings: dict) -> None:
    """Write the cross-validation's settings, or check a continued one was made with the same.

    Models trained with other settings would mix in one table, so a difference is refused,
    naming the settings; the data folder may differ (a cross-validation moves between machines).
    """
    folder = CrossvalFolder(out)
    settings = json.loads(json.dumps(settings))  # tuples as lists, as YAML gives them back
    out.mkdir(parents=True, exist_ok=True)
    with sole_writer(folder.config_lock, str(out), wait=True):
        if folder.config_path.is_file():
            try:
                saved = yaml.safe_load(folder.config_path.read_text())
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
                raise InputError(
                    f"{folder.config_path}: not readable ({type(err).__name__}); delete it to record "
                    "this call's settings, if they are those the folder was made with"
                ) from None
            differ = _differences(saved, settings) if isinstance(saved, dict) else ["everything"]
            if differ:
                raise InputError(
                    f"{out}: made with other settings ({', '.join(differ)}); continue it with those "
                    "or give another --out"
                )
            return
        write_text(folder.config_path, yaml.safe_dump(settings, sort_keys=False))


#: what a setting missing from an older crossval.yaml was: the default of its section, or what
#: relunet did before the setting existed
SECTION_DEFAULTS = {"data": DataConfig(), "train": TrainConfig()}


def _differences(saved: dict, settings: dict) -> list[str]:
    """`section.name` of every setting that differs, the data folder's path left out.

    A setting an older folder did not record (added to relunet since) counts as what it was then.
    """
    differ = []
    for key, value in settings.items():
        old = saved.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            defaults = json.loads(
                json.dumps({**asdict(SECTION_DEFAULTS[key]), **BEFORE_IT_EXISTED.get(key, {})})
            )
            differ += [
                f"{key}.{k}" for k, v in value.items() if k != "path" and old.get(k, defaults.get(k)) != v
            ]
        elif old != value:
            differ.append(key)
    return differ


def _advance(
    out: Path,
    method: InferenceMethod,
    fold: int,
    training: _Training,
    test_cases: _TestCases,
    device: str,
    seed: int,
    failure_threshold: float,
    log: Callable[[str], None],
) -> bool:
    """Train the models of one method and fold that no other process holds, then evaluate it.

    Returns whether this process did any of that work. Several processes sharing `out` divide
    the work this way: each model and each (method, fold) evaluation is done under a lock.
    """
    worked, ready, seconds = False, True, 0.0
    for model_seed in method.seeds:
        run = CrossvalFolder(out).model_run(method.model_folder(model_seed))
        with try_lock(run.crossval_lock(fold)) as mine:
            if not mine:
                ready = False
                continue
            worked |= training.ensure(run, fold, method, model_seed, log)
            seconds += _train_seconds(run.fold(fold).history)
    if not ready:
        return worked
    with try_lock(_method_fold(out, method, fold).lock) as mine:
        if mine and not evaluated(out, method, fold):
            log(f"fold {fold}: evaluate {method.name}")
            cases = test_cases.fold(fold, method.model_folder(0))
            evaluate_method(
                out, method, fold, cases, test_cases.index, seconds, device, seed, failure_threshold
            )
            worked = True
    return worked


class _TestCases:
    """The test cases of the fold last asked for, kept until another fold is asked for."""

    def __init__(self, index: DatasetIndex, out: Path) -> None:
        self.index, self.out = index, out
        self.loaded: tuple[int, list[Case]] | None = None

    def fold(self, fold: int, run_name: str) -> list[Case]:
        """Test cases of `fold`, from the split saved by the trained model `run_name`."""
        if self.loaded is None or self.loaded[0] != fold:
            split = CrossvalFolder(self.out).model_run(run_name).fold_split(fold)
            self.loaded = (fold, load_cases(self.index.subset(split["test"])))
        return self.loaded[1]


@dataclass(frozen=True)
class _Training:
    """How every model of the cross-validation is trained."""

    data: Path
    backbone: str
    features: tuple[int, ...] | None
    data_cfg: DataConfig
    train: TrainConfig
    device: str

    def ensure(
        self, run: RunFolder, fold: int, method: InferenceMethod, model_seed: int, log: Callable[[str], None]
    ) -> bool:
        """Train (or finish) one model of a method for one fold unless it is done; True if it trained."""
        checkpoint = run.fold(fold).checkpoint
        if checkpoint.is_file() and load_checkpoint(checkpoint)["epoch"] >= self.train.epochs:
            return False
        log(f"fold {fold}: train {run.path.name}")
        train_fold(
            self.data,
            run.path,
            fold=fold,
            resume=True,
            device=self.device,
            model=ModelConfig(kind=method.model, backbone=self.backbone, features=self.features),
            data_cfg=self.data_cfg,
            train=replace(self.train, seed=model_seed, flips=self.train.flips or method.flips),
        )
        return True


def evaluate_method(
    out: Path,
    method: InferenceMethod,
    fold: int,
    cases: list[Case],
    index: DatasetIndex,
    train_seconds: float,
    device: str,
    seed: int,
    failure_threshold: float = FAILURE_THRESHOLD,
) -> dict:
    """Predict and score the test cases of one fold with one method; write its tables.

    `index` is the cross-validated dataset: anchors from the training set are read from it, not
    from where the model was trained, so a cross-validation folder can move between machines.
    """
    members = [
        open_predictor(CrossvalFolder(out).model_run(method.model_folder(s)).path, fold, device, method.n)[0]
        for s in method.seeds
    ]
    predictor = members[0]
    pool = _anchor_pool(out, method, fold, cases, index)
    dest = _method_fold(out, method, fold)
    for folder in (dest.path, dest.predictions):
        remove_temporaries(folder)  # left by a killed evaluation; this one holds the method's lock
    label_sets = predictor.config.data.label_sets
    progress = CaseProgress(dest.partial)
    for number, case in enumerate(cases):
        if case.case_id in progress.rows:
            continue
        # each case has its own random numbers (anchors, dropout): a resumed run gives the same results
        seeds = np.random.SeedSequence([seed, fold, number])
        torch.manual_seed(int(seeds.generate_state(1)[0]))
        tic = time.perf_counter()
        prediction = _predict(method, members, case, pool, np.random.default_rng(seeds))
        seconds = time.perf_counter() - tic
        _save_prediction(dest.prediction(case.case_id), prediction)
        progress.add(case_row(case, prediction, label_targets(case.label, label_sets)), seconds)
    rows = [progress.rows[case.case_id] for case in cases]
    summary = {
        "method": method.name,
        "fold": fold,
        **summarise(rows, failure_threshold=failure_threshold),
        "forward_passes": method.passes(predictor.config.data.dims) * len(method.seeds),
        "seconds_per_case": float(np.mean([progress.seconds[case.case_id] for case in cases])),
        "train_seconds": train_seconds,
        "hardware": describe(predictor.device),
    }
    write_csv(dest.per_case, rows)
    write_json(dest.summary, summary)
    progress.discard()
    return summary


def aggregate(
    out: Path, methods: list[InferenceMethod], failure_threshold: float = FAILURE_THRESHOLD
) -> dict:
    """Per method: mean and std over the folds of each summary value, and pooled confidence metrics.

    `pooled_<metric>` is computed on all folds' test cases together; pooling matters where a
    fold holds few failures: a fold without one has no AUROC. `pearson_by_fold` keeps each fold's
    Pearson, so methods run on different folds can be compared fold by fold.
    """
    result = {}
    for method in methods:
        paths = [f.summary for f in CrossvalFolder(out).method_folds(method.name, SUMMARY_NAME)]
        folds = [_fold_summary(p) for p in paths]
        if not folds:
            continue
        keys = [k for k, v in folds[0].items() if isinstance(v, int | float) and k != "fold"]
        entry: dict = {"n_folds": len(folds)}
        for key in keys:
            values = np.array([f[key] for f in folds if f.get(key) is not None], float)
            entry[f"{key}_mean"] = float(values.mean()) if len(values) else None
            entry[f"{key}_std"] = float(values.std()) if len(values) else None
        rows = read_per_case(out, method.name)
        pooled = summarise(rows, failure_threshold=failure_threshold)
        entry |= {f"pooled_{k}": pooled[k] for k in POOLED}
        entry["pooled_failures"] = sum(r["dice_seg_a"] < failure_threshold for r in rows)
        entry["pearson_by_fold"] = {str(f["fold"]): f.get("pearson") for f in folds}
        entry["hardware_by_fold"] = {str(f["fold"]): f.get("hardware") for f in folds}
        result[method.name] = entry
    return result


def _fold_summary(path: Path) -> dict:
    """A finished fold's `summary.json`, checked: a dict with its fold number."""
    try:
        summary = json.loads(path.read_text())
        if not isinstance(summary, dict) or not isinstance(summary.get("fold"), int):
            raise TypeError("not a fold summary")
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as err:
        raise InputError(
            f"{path}: damaged fold summary ({type(err).__name__}); delete {path.parent} and run "
            "`relunet crossval` again to evaluate that fold anew"
        ) from err
    return summary


def _predict(
    method: InferenceMethod, members: list[Predictor], case: Case, pool: list[Case], rng: np.random.Generator
) -> Prediction:
    """One case by one method: the method object predicts (`relunet.inference.methods`)."""
    return method.predict(members, case, pool, rng)


def work_order(method: InferenceMethod) -> tuple[int, bool, bool, bool]:
    """Sort key: the Relation U-Net's methods, the U-Net's, flip TTA, MC dropout, the ensemble.

    Those needing the fewest models of their own come first.
    """
    return len(method.seeds), method.model == "mcdropout", method.flips, method.model != "relation"


def _anchor_pool(
    out: Path, method: InferenceMethod, fold: int, cases: list[Case], index: DatasetIndex
) -> list[Case]:
    source = method.anchor_source
    if source == "test":
        return cases
    if source != "train":
        return []
    train_ids = CrossvalFolder(out).model_run(method.model_folder(0)).fold_split(fold)["train"]
    return load_cases(index.subset(train_ids), with_label=False)


def _save_prediction(path: Path, prediction: Prediction) -> None:
    """Binary maps of every head as a compressed npz, for the report's figures."""
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.savez_compressed(handle, **{head: p > 0.5 for head, p in prediction.maps.items()})


def evaluated(out: Path, method: InferenceMethod, fold: int) -> bool:
    """Whether `method` has results for `fold` in the cross-validation folder `out`."""
    return _method_fold(out, method, fold).summary.is_file()


def _method_fold(out: Path, method: InferenceMethod, fold: int) -> MethodFold:
    return CrossvalFolder(out).method_fold(method.name, fold)


def _train_seconds(history: Path) -> float:
    with history.open(newline="") as handle:
        return float(sum(float(r["seconds"]) for r in csv.DictReader(handle)))
