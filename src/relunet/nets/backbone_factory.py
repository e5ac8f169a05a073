"""The backbone factory, and the base of the models built on a backbone."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from relunet.config import ModelConfig
from relunet.errors import InputError
from relunet.nets.backbone_catalogue import SPECS, BackboneSpec


@dataclass(frozen=True)
class Backbone:
    """A network `(B, in, *S) -> (B, out, *S)` and what a model needs to know of it.

    Attributes:
        net: the network.
        size_multiple: every spatial size of its input must be a multiple of this.
        last_layer: dotted name in `net` of its last layer, which maps the last feature map
            `(B, F, *S)` to the outputs (dropout first, when built with `head_dropout > 0`).
    """

    net: nn.Module
    size_multiple: int
    last_layer: str


def build_backbone(
    name: str,
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    features: tuple[int, ...] | None = None,
    head_dropout: float = 0.0,
) -> Backbone:
    """Backbone `name` of `relunet.nets.backbone_catalogue` with `features` (None: its default widths).

    `head_dropout > 0` puts dropout right before the last layer.
    """
    spec = _spec(name)
    features = spec.features if features is None else tuple(features)
    net = spec.build(spatial_dims, in_channels, out_channels, features)
    if head_dropout > 0:
        parent, _, child = spec.last_layer.rpartition(".")
        last = net.get_submodule(spec.last_layer)
        setattr(net.get_submodule(parent), child, nn.Sequential(nn.Dropout(head_dropout), last))
    return Backbone(net, spec.size_multiple(features), spec.last_layer)


def model_features(cfg: ModelConfig) -> tuple[int, ...]:
    """The widths of the model `cfg` describes: `cfg.features`, or its backbone's default."""
    return _spec(cfg.backbone).features if cfg.features is None else cfg.features


def check_features(cfg: ModelConfig) -> None:
    """Refuse widths `cfg.features` its backbone cannot be built with, in one line naming the option.

    The backbone itself is the judge (MONAI checks the count, and the multiples that normalisation
    and attention need): it is built once, small, on the CPU.
    """
    if cfg.features is None:
        return
    default = ",".join(map(str, _spec(cfg.backbone).features))
    given = ",".join(map(str, cfg.features))
    if any(width < 1 for width in cfg.features):
        raise InputError(f"--features {given}: widths must be whole numbers above 0, e.g. {default}")
    try:
        build_backbone(cfg.backbone, cfg.spatial_dims, cfg.in_channels, 1, cfg.features)
    except (ValueError, TypeError, AssertionError, RuntimeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(
            f"--features {given}: {cfg.backbone} cannot be built with these widths ({reason}); "
            f"its default widths are {default}"
        ) from None


def size_multiple(cfg: ModelConfig) -> int:
    """Every spatial size of the input of the model `cfg` describes must be a multiple of this."""
    return _spec(cfg.backbone).size_multiple(model_features(cfg))


def _spec(name: str) -> BackboneSpec:
    if name not in SPECS:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(SPECS)}")
    return SPECS[name]


class BackboneModel(nn.Module):
    """Base of the models: a backbone, the input check, and the backbone's last layer as `head`.

    Subclasses define `forward`, calling `check_input` on each input image `(B, C, *S)`.
    """

    def __init__(self, backbone: Backbone, spatial_dims: int, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.backbone = backbone.net
        self.size_multiple = backbone.size_multiple
        self.last_layer = backbone.last_layer

    @property
    def head(self) -> nn.Module:
        """The last layer (dropout, if any, then the classifier): features `(B, F, *S)` to logits."""
        return self.backbone.get_submodule(self.last_layer)

    def features(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The last feature map `(B, F, *S)`, the input of `head`, for the model's inputs.

        `self.head(self.features(x))` equals the backbone's output for `x`; MC dropout computes
        the features once and draws only the head.
        """
        captured: list[torch.Tensor] = []
        hook = self.head.register_forward_pre_hook(lambda _module, args: captured.append(args[0]))
        try:
            self(*inputs)
        finally:
            hook.remove()
        return captured[0]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError with the fix unless `x` is `(B, C, *S)` with S a multiple of the backbone's."""
        if x.ndim != self.spatial_dims + 2:
            raise ValueError(f"expected a {self.spatial_dims + 2}-d tensor (B, C, *S), got {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {x.shape[1]}")
        sizes, multiple = tuple(x.shape[2:]), self.size_multiple
        if any(s % multiple for s in sizes):
            padded = tuple(-(-s // multiple) * multiple for s in sizes)
            raise ValueError(f"spatial size {sizes} is not a multiple of {multiple}; pad it to {padded}")
