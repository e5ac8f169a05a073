"""The `train` workflow: dataset folder -> checked cases -> split -> fold checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch

from relunet.config import MODEL_KINDS, RunConfig, load_config, save_config
from relunet.data.layouts import DatasetIndex, index_dataset
from relunet.data.pairing import POLICIES
from relunet.data.preprocess import Preprocessor, binary_label_sets
from relunet.data.splits import load_or_create_splits
from relunet.data.training_set import build_training_set, load_cases
from relunet.device import resolve_device
from relunet.errors import InputError
from relunet.nets import build_model
from relunet.training.checkpoint import CHECKPOINT_NAME
from relunet.training.distributed import distributed
from relunet.training.loop import fit
from relunet.types import Case

CONFIG_NAME = "config.yaml"
SPLITS_NAME = "splits.json"


def train_fold(
    data: Path,
    out: Path,
    fold: int = 0,
    resume: bool = False,
    device: str = "auto",
    model: dict | None = None,
    data_cfg: dict | None = None,
    train: dict | None = None,
) -> list[dict[str, float]]:
    """Train one fold of a k-fold split of the dataset at `data` into the run folder `out`.

    `model`, `data_cfg` and `train` override fields of the default `RunConfig` sections. All
    input is read and checked before anything is written. Returns the training history.
    """
    data, out = Path(data).resolve(), Path(out)
    compute = resolve_device(device)
    with distributed(compute) as ranks:
        index = index_dataset(data)
        cases = load_cases(index)
        config = _run_config(index, cases, data, model, data_cfg, train)
        _check_settings(config, cases[0].image.ndim - 1, fold, index.root)
        _check_existing(out, config, fold, resume)

        splits = ranks.main_first(
            lambda: load_or_create_splits(
                out / SPLITS_NAME, index.case_ids, config.data.folds, config.data.split_seed
            )
        )
        train_ids = set(splits[fold]["train"])
        prep = Preprocessor.of(config.data)
        train_set = build_training_set(
            [c for c in cases if c.case_id in train_ids], prep, config.data.dims, config.data.slice_axis
        )
        if ranks.is_main:
            save_config(config, out / CONFIG_NAME)
        torch.manual_seed(config.train.seed)
        network = build_model(config.model)
        fold_path = out / f"fold_{fold}"
        return fit(network, train_set, config, fold_path, fold, ranks.device(compute), resume, ranks)


def _run_config(
    index: DatasetIndex,
    cases: list[Case],
    data: Path,
    model: dict | None,
    data_cfg: dict | None,
    train: dict | None,
) -> RunConfig:
    """Defaults, then the user's overrides, then what the data fixes (channels, classes)."""
    config = RunConfig().with_overrides(
        model=model or {}, data={"path": str(data), **(data_cfg or {})}, train=train or {}
    )
    label_sets = config.data.label_sets or binary_label_sets(index.labels)
    return config.with_overrides(
        model={
            "in_channels": int(cases[0].image.shape[0]),
            "num_classes": len(label_sets),
            "spatial_dims": config.data.dims,
        },
        data={"label_sets": label_sets},
    )


def _check_settings(config: RunConfig, spatial: int, fold: int, root: Path) -> None:
    if config.model.kind not in MODEL_KINDS:
        raise InputError(f"--model {config.model.kind}: choose one of {', '.join(MODEL_KINDS)}")
    if config.train.pairing not in POLICIES:
        raise InputError(f"--pairing {config.train.pairing}: choose one of {', '.join(POLICIES)}")
    if config.data.dims not in (2, 3) or config.data.dims > spatial:
        raise InputError(f"--dims {config.data.dims}: {root} holds {spatial}D images; use --dims 2")
    if not 0 <= fold < config.data.folds:
        raise InputError(f"--fold {fold}: choose a fold from 0 to {config.data.folds - 1}")
    if not 0 <= config.data.slice_axis < 3:
        raise InputError(f"--slice-axis {config.data.slice_axis}: choose 0, 1 or 2")


def _check_existing(out: Path, config: RunConfig, fold: int, resume: bool) -> None:
    """Refuse to mix settings in one run folder, or to overwrite a trained fold unasked.

    Only the epoch count may change, so that `--resume --epochs N` extends a run.
    """
    saved_path = out / CONFIG_NAME
    saved = load_config(saved_path) if saved_path.is_file() else config
    changed = saved.with_overrides(train={"epochs": config.train.epochs}).differences(config)
    if changed:
        raise InputError(
            f"{saved_path}: this run folder was made with other settings ({', '.join(changed)}); "
            "use a new --out folder or the same settings"
        )
    checkpoint = out / f"fold_{fold}" / CHECKPOINT_NAME
    if checkpoint.is_file() and not resume:
        raise InputError(f"{checkpoint}: fold {fold} is already trained; add --resume or use a new --out")
