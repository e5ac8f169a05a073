"""The `train` workflow: dataset folder -> checked cases -> split -> fold checkpoint."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

import torch

from relunet.atomic import remove_temporaries
from relunet.config import (
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    check_ranges,
    default_augment,
    save_config,
)
from relunet.data.layouts import DatasetIndex, index_dataset, load_case, median_spacing
from relunet.data.patches import check_patch_size
from relunet.data.preprocess import Preprocessor, binary_label_sets
from relunet.data.splits import load_or_create_splits
from relunet.data.training_set import build_training_set, check_label_sets, load_cases
from relunet.device import resolve_device
from relunet.errors import InputError
from relunet.locks import sole_writer, try_lock
from relunet.nets import build_model, check_features, model_features, size_multiple
from relunet.results_folder import check_apart
from relunet.rundir import RunFolder
from relunet.training.distributed import distributed
from relunet.training.loop import fit
from relunet.training.sample_source import StreamedSource, plan_training_set


def train_fold(
    data: Path,
    out: Path,
    fold: int = 0,
    resume: bool = False,
    device: str = "auto",
    model: ModelConfig | None = None,
    data_cfg: DataConfig | None = None,
    train: TrainConfig | None = None,
    overwrite: bool = False,
) -> list[dict[str, float]]:
    """Train one fold of a k-fold split of the dataset at `data` into the run folder `out`.

    `model`, `data_cfg` and `train` are the run's settings (None: the defaults); the data's path,
    channels and classes (label sets), and the backbone's widths are filled in. All
    input and every setting is read and checked before anything is written. One process trains
    a fold at a time (a lock in the run folder); `resume` continues the fold's checkpoint,
    `overwrite` retrains it from scratch. Returns the training history.
    """
    data, out = Path(data).resolve(), Path(out)
    if resume and overwrite:
        raise InputError("--resume and --overwrite: choose one (continue the fold, or retrain it)")
    check_apart(out, {"the training data": data})
    compute = resolve_device(device)
    with distributed(compute) as ranks:
        index = index_dataset(data)
        channels, *spatial = load_case(index.cases[0], index.labels).image.shape
        config = _run_config(index, channels, data, model, data_cfg, train)
        _check_settings(config, len(spatial), fold, index.root)
        multiple = size_multiple(config.model)
        check_patch_size(config.data.patch_size, multiple)
        plan = plan_training_set(config, index, multiple)
        _check_existing(out, config, fold, resume, overwrite)
        run = RunFolder(out)
        if plan.where == "memory":
            cases = load_cases(index)
            check_label_sets(index, cases, config.data.label_sets)
        else:
            check_label_sets(index, [], config.data.label_sets)
            source = StreamedSource(run.sample_cache, config)
            ranks.main_first(lambda: source.fill(index))
        with contextlib.ExitStack() as held:
            if ranks.is_main:
                held.enter_context(sole_writer(run.train_lock(fold), f"fold {fold} of {out}"))
            splits = ranks.main_first(lambda: _claim(out, config, index, fold, resume, overwrite))
            train_ids = set(splits[fold]["train"])
            if plan.where == "memory":
                train_set = build_training_set(
                    [c for c in cases if c.case_id in train_ids],
                    Preprocessor.of(config.data),
                    config.data.dims,
                    config.data.slice_axis,
                    multiple,
                )
            else:
                train_set = source.training_set([i for i in index.case_ids if i in train_ids], multiple)
            torch.manual_seed(config.train.seed)
            network = build_model(config.model)
            return fit(
                network, train_set, config, run.fold(fold).path, fold, ranks.device(compute), resume, ranks
            )


def _claim(
    out: Path, config: RunConfig, index: DatasetIndex, fold: int, resume: bool, overwrite: bool
) -> list[dict[str, list[str]]]:
    """With the fold locked: check the run folder again, write its config and splits, clear the fold.

    The run-wide part is one step under a second lock, so two commands with different settings
    cannot both pass the check. Returns the splits.
    """
    run, folder = RunFolder(out), RunFolder(out).fold(fold)
    with sole_writer(run.config_lock, str(out), wait=True):
        _check_existing(out, config, fold, resume, overwrite)
        fresh = not _folds_taken(out, fold)
        if fresh and run.splits_path.is_file():
            run.splits_path.unlink()
        splits = load_or_create_splits(
            run.splits_path, index.case_ids, config.data.folds, config.data.split_seed
        )
        save_config(config, run.config_path)
    remove_temporaries(folder.path)
    if overwrite:
        for path in (folder.checkpoint, folder.history):
            path.unlink(missing_ok=True)
    return splits


def _run_config(
    index: DatasetIndex,
    channels: int,
    data: Path,
    model: ModelConfig | None,
    data_cfg: DataConfig | None,
    train: TrainConfig | None,
) -> RunConfig:
    """The given sections (None: the defaults) at the data's path, checked; then what the data fixes.

    The data fixes the `channels` of its images and the classes (label sets). The backbone's
    widths are checked and written out, so that the saved config rebuilds the same model, and so
    is whether it augments (`default_augment` where not given).
    """
    config = RunConfig(
        model or ModelConfig(), replace(data_cfg or DataConfig(), path=str(data)), train or TrainConfig()
    )
    check_ranges(config)
    if config.data.spacing == "auto":
        config = config.with_overrides(data={"spacing": median_spacing(index)})
    label_sets = config.data.label_sets or binary_label_sets(index.labels)
    augment = default_augment(config.model.kind) if config.train.augment is None else config.train.augment
    config = config.with_overrides(
        model={
            "in_channels": int(channels),
            "num_classes": len(label_sets),
            "spatial_dims": config.data.dims,
            "features": model_features(config.model),
        },
        data={"label_sets": label_sets},
        train={"augment": augment},
    )
    check_features(config.model)
    return config


def _check_settings(config: RunConfig, spatial: int, fold: int, root: Path) -> None:
    if config.data.dims not in (2, 3) or config.data.dims > spatial:
        raise InputError(f"--dims {config.data.dims}: {root} holds {spatial}D images; use --dims 2")
    if not 0 <= fold < config.data.folds:
        raise InputError(f"--fold {fold}: choose a fold from 0 to {config.data.folds - 1}")


def _check_existing(out: Path, config: RunConfig, fold: int, resume: bool, overwrite: bool) -> None:
    """Refuse to mix settings in one run folder, or to overwrite a trained fold unasked.

    Only the epoch count may change, so that `--resume --epochs N` extends a run. A run folder
    with no trained fold holds no model yet, so its settings may still be replaced.
    """
    run = RunFolder(out)
    trained = _folds_taken(out, fold)
    saved_path = run.config_path
    if trained and saved_path.is_file():
        saved = run.read_config()
        changed = saved.with_overrides(train={"epochs": config.train.epochs}).differences(config)
        if changed:
            raise InputError(
                f"{saved_path}: this run folder was made with other settings ({', '.join(changed)}); "
                "use a new --out folder or the same settings"
            )
    checkpoint = run.fold(fold).checkpoint
    if checkpoint.is_file() and not (resume or overwrite):
        raise InputError(
            f"{checkpoint}: fold {fold} is already trained; add --resume to continue it, "
            "--overwrite to retrain it, or use a new --out"
        )


def _folds_taken(out: Path, fold: int) -> list[str]:
    """Folds of the run folder that bind its settings: trained ones, and others being trained now."""
    run = RunFolder(out)
    taken = [f.path.name for f in run.trained_folds()]
    for lock in run.train_locks():
        if lock != run.train_lock(fold):
            with try_lock(lock) as free:
                taken += [] if free else [lock.name]
    return sorted(taken)
