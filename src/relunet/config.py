"""Frozen settings for model, data and training; saved as YAML with every run and checkpoint."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from relunet.atomic import write_text
from relunet.data.pairing import POLICIES
from relunet.errors import InputError

MODEL_KINDS = ("relation", "unet", "mcdropout")
#: the networks a model can be built on, see `relunet.nets.backbone_catalogue`
BACKBONES = ("basicunet", "unet", "segresnet", "dynunet", "swinunetr")
LOSSES = ("bce_dice", "bce")
#: what a Relation U-Net's self-pair delivers as the segmentation: its `seg_a` head, or "s1s2", the
#: mean of its `seg_a` and `seg_b` maps thresholded at 0.5 (the paper's (s1+s2)/2)
SEGMENTATIONS = ("seg_a", "s1s2")
#: where training samples live, see `TrainConfig.cache`
CACHES = ("auto", "memory", "disk")


@dataclass(frozen=True)
class ModelConfig:
    """The network: what it takes, what it predicts, how wide it is.

    Attributes:
        kind: "relation" (two inputs, four heads), "unet" (one input, one head) or "mcdropout"
            (the U-Net with dropout before its last layer, sampled at test time).
        backbone: the MONAI network inside, one of `BACKBONES` (configs written before there
            was a choice load as "basicunet").
        spatial_dims: 2 or 3.
        in_channels: channels `C` of one image (1 for MRI/CT, 3 for RGB, 4 for BraTS).
        num_classes: foreground classes `K` (sigmoid, multi-label).
        features: the backbone's widths, as `relunet.nets.backbone_catalogue` reads them; None = its default
            (a trained run saves the widths it used).
        head_dropout: dropout probability before the last layer ("mcdropout" only).
        segmentation: what a self-pair delivers, one of `SEGMENTATIONS` ("relation" only).
    """

    kind: str = "relation"
    backbone: str = "basicunet"
    spatial_dims: int = 2
    in_channels: int = 1
    num_classes: int = 1
    features: tuple[int, ...] | None = None
    head_dropout: float = 0.5
    segmentation: str = "seg_a"


@dataclass(frozen=True)
class DataConfig:
    """Where the data is and how it becomes network input.

    Attributes:
        path: the dataset folder the run was trained on.
        dims: 2 trains on 2D images or on slices of volumes; 3 on whole volumes.
        slice_axis: the volume axis cut into slices when `dims` is 2 (2 = last axis).
        image_size: side length 2D pictures are resized to (None keeps their size).
        label_sets: one tuple of label values per output class; None means binary, `label > 0`.
        window: intensity window `(low, high)` clipped before normalisation (CT), or None.
        folds: number of cross-validation folds.
        split_seed: seed of the k-fold split.
        patch_size: train on crops of this spatial size (foreground-oversampled) and predict by
            sliding windows of it; None trains and predicts on whole samples.
        overlap: share of a window its neighbours overlap in sliding-window prediction.
        spacing: voxel size (per axis, as the NIfTI header's) volumes are resampled to before
            the network, and masks resampled back from; None keeps each volume's own grid.
    """

    path: str = ""
    dims: int = 2
    slice_axis: int = 2
    image_size: int | None = None
    label_sets: tuple[tuple[int, ...], ...] | None = None
    window: tuple[float, float] | None = None
    folds: int = 5
    split_seed: int = 0
    patch_size: tuple[int, ...] | None = None
    overlap: float = 0.5
    spacing: tuple[float, ...] | None = None


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation: Adam, learning rate halved every 20 epochs, 100 epochs, as the paper.

    Two defaults differ from the paper so that a run fits a CPU budget (measured, see README):
    an epoch is 2000 training pairs (pairs have no natural epoch: there are N^2 of them), and
    the learning rate starts at 1e-3 (the paper's 1e-4 is far from converged after 20k pairs).

    Attributes:
        epochs: number of epochs.
        samples_per_epoch: training pairs (or images) per epoch; None = one per training sample.
        batch_size: pairs (or images) per step.
        lr: Adam learning rate.
        lr_step: epochs between learning-rate decays.
        lr_gamma: factor of each decay.
        loss: "bce_dice" (binary cross-entropy + soft Dice) or "bce" (the paper's).
        relation_loss: the loss of the union and intersection heads; None = `loss`.
        relation_weight: weight of the union and intersection heads' losses against the two
            segmentation heads' (1: the paper's plain sum).
        pairing: how the second input is drawn; see `relunet.data.pairing.POLICIES`.
        same_fraction: share of pairs whose second input is the first one (x1 = x2).
        seed: seed of weights, pairing and batching.
        amp: bf16 mixed precision; None = on for CUDA, off on the CPU.
        channels_last: channels-last layout for 2D models; None = on for CUDA.
        compile: wrap the model in `torch.compile`.
        flips: flip each training input along each spatial axis with probability 1/2 (what
            flip test-time augmentation needs: a model that has seen flipped images).
        augment: random rotation and zoom, intensity gain and shift, and noise on each training
            input (`relunet.training.augment`); None = `default_augment` of the model kind, as
            measured (configs written before there was a choice load as False).
        jitter_identical: augment the two inputs of an identical pair apart, so that the
            union and intersection heads learn near-identical pairs whose masks differ a little
            (with `augment` or `flips`); False keeps them identical.
        cache: where the training samples live: "memory" (one padded tensor, the fastest),
            "disk" (preprocessed once into the run folder, read a batch at a time: memory that
            does not grow with the number of cases) or "auto" (memory where the set fits easily
            and no patches are cut, else disk). Both give the same batches.
    """

    epochs: int = 100
    samples_per_epoch: int | None = 2000
    batch_size: int = 32
    lr: float = 1e-3
    lr_step: int = 20
    lr_gamma: float = 0.5
    loss: str = "bce_dice"
    relation_loss: str | None = None
    relation_weight: float = 1.0
    pairing: str = "mixed"
    same_fraction: float = 0.25
    seed: int = 0
    amp: bool | None = None
    channels_last: bool | None = None
    compile: bool = False
    flips: bool = False
    augment: bool | None = None
    jitter_identical: bool = False
    cache: str = "auto"


#: settings whose default changed when they were added: what a config without them did
BEFORE_IT_EXISTED = {"train": {"augment": False}, "model": {"segmentation": "seg_a"}}


@dataclass(frozen=True)
class RunConfig:
    """Everything needed to rebuild a run's model and data pipeline."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists instead of tuples), ready for YAML."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        """Rebuild from `to_dict` output; unknown keys are an error.

        A setting missing from a config written before it existed takes the value that config's
        behaviour had (`BEFORE_IT_EXISTED`), not today's default.
        """
        raw = {
            section: {**BEFORE_IT_EXISTED.get(section, {}), **values} if isinstance(values, dict) else values
            for section, values in raw.items()
        }
        return _build(cls, raw)

    def differences(self, other: RunConfig) -> list[str]:
        """`section.field` names whose values differ from `other`'s, e.g. `["data.path"]`."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [
            f"{section}.{name}"
            for section, values in mine.items()
            for name, value in values.items()
            if theirs[section][name] != value
        ]

    def with_overrides(self, **sections: dict[str, Any]) -> RunConfig:
        """Return a copy with fields replaced, e.g. `with_overrides(train={"epochs": 3})`."""
        new = {name: replace(getattr(self, name), **values) for name, values in sections.items()}
        return replace(self, **new)


def default_augment(kind: str) -> bool:
    """Whether a model of `kind` augments its training inputs unless told: where it helps.

    Measured on Hippocampus, 5 folds (docs/results.md, `hippocampus_augmented` against
    `hippocampus`): the U-Net gains 0.020 Dice and its score ranks cases worse; the Relation
    U-Net gains 0.003 Dice and its C ranks cases clearly worse (Spearman 0.52 to 0.42), so only
    the baselines augment by default. On the full 100-epoch schedule (`hippocampus_100_epochs`
    against `hippocampus_augmented_100_epochs`) augmentation gains the Relation U-Net 0.009 Dice
    and costs its C the same ranking (Spearman 0.51 to 0.41): `--augment` is the choice for the
    segmentation, the default the one for the ranking. On ISIC, 5 folds (`isic_augmented` against
    `isic`), it gains 0.003 Dice and C ranks no better (Spearman 0.69 to 0.68, better on 2 folds
    of 5): no data here asks for a different default.
    """
    return kind != "relation"


def check_ranges(config: RunConfig) -> None:
    """Refuse settings outside their range with one line naming the option (before any write)."""
    model, data, train = config.model, config.data, config.train
    rules = [
        ("--model", model.kind, model.kind in MODEL_KINDS, f"one of {', '.join(MODEL_KINDS)}"),
        ("--backbone", model.backbone, model.backbone in BACKBONES, f"one of {', '.join(BACKBONES)}"),
        (
            "--segmentation",
            model.segmentation,
            model.segmentation in SEGMENTATIONS
            and (model.segmentation == "seg_a" or model.kind == "relation"),
            f"one of {', '.join(SEGMENTATIONS)} (s1s2 for a relation model only)",
        ),
        ("--loss", train.loss, train.loss in LOSSES, f"one of {', '.join(LOSSES)}"),
        (
            "--relation-loss",
            train.relation_loss,
            train.relation_loss is None or train.relation_loss in LOSSES,
            f"one of {', '.join(LOSSES)}",
        ),
        ("--relation-weight", train.relation_weight, train.relation_weight > 0, "a weight above 0"),
        ("--epochs", train.epochs, train.epochs >= 1, "a whole number of at least 1"),
        ("--lr", train.lr, 0 < train.lr < 1, "a learning rate between 0 and 1, e.g. 1e-3"),
        ("--batch-size", train.batch_size, train.batch_size >= 1, "at least 1"),
        (
            "--samples-per-epoch",
            train.samples_per_epoch,
            train.samples_per_epoch is None or train.samples_per_epoch >= 1,
            "at least 1",
        ),
        ("--pairing", train.pairing, train.pairing in POLICIES, f"one of {', '.join(POLICIES)}"),
        ("--same-fraction", train.same_fraction, 0 <= train.same_fraction <= 1, "a share from 0 to 1"),
        ("lr_step", train.lr_step, train.lr_step >= 1, "at least 1 epoch"),
        ("lr_gamma", train.lr_gamma, 0 < train.lr_gamma <= 1, "a factor in (0, 1]"),
        ("--folds", data.folds, data.folds >= 2, "at least 2"),
        (
            "--image-size",
            data.image_size,
            data.image_size is None or 8 <= data.image_size <= 4096,
            "8 to 4096",
        ),
        ("--slice-axis", data.slice_axis, 0 <= data.slice_axis < 3, "0, 1 or 2"),
        (
            "--window",
            data.window,
            data.window is None or data.window[0] < data.window[1],
            "low,high with low < high",
        ),
        (
            "--patch-size",
            data.patch_size,
            data.patch_size is None or (len(data.patch_size) == data.dims and min(data.patch_size) >= 8),
            f"{data.dims} sizes of at least 8, e.g. {','.join(['96'] * data.dims)}",
        ),
        (
            "--spacing",
            data.spacing,
            data.spacing is None
            or (data.spacing == "auto" or (len(data.spacing) == 3 and min(data.spacing) > 0)),
            "auto or three positive voxel sizes, e.g. 0.8,0.8,1.5",
        ),
        ("--overlap", data.overlap, 0 <= data.overlap < 1, "a share from 0 to below 1, e.g. 0.5"),
        ("--cache", train.cache, train.cache in CACHES, f"one of {', '.join(CACHES)}"),
        ("head_dropout", model.head_dropout, 0 <= model.head_dropout < 1, "a probability in [0, 1)"),
    ]
    for option, value, ok, wanted in rules:
        if not ok:
            raise InputError(f"{option} {value}: out of range; give {wanted}")


def save_config(config: RunConfig, path: str | Path) -> None:
    """Write the config as YAML, atomically."""
    write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def load_config(path: str | Path) -> RunConfig:
    """Read a config written by `save_config`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no run config here; give the folder that `relunet train` wrote")
    try:
        return RunConfig.from_dict(yaml.safe_load(path.read_text()))
    except (yaml.YAMLError, TypeError, ValueError) as err:
        raise InputError(
            f"{path}: not a relunet config ({type(err).__name__}); retrain or restore it"
        ) from err


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _build(cls: type, raw: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}")
    return cls(**{k: _coerce(hints[k], v) for k, v in raw.items()})


def _coerce(hint: Any, value: Any) -> Any:
    """Turn YAML values back into the annotated type (dataclasses, nested tuples)."""
    if value is None:
        return None
    if dataclasses.is_dataclass(hint):
        return _build(hint, value)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(inner[0], value)
    if origin is tuple:
        (item, *_rest) = typing.get_args(hint)
        return tuple(_coerce(item, v) for v in value)
    return value
