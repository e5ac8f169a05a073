"""The MONAI networks a model can be built on: name -> builder, default widths, size multiple, last layer.

Each builder returns a network mapping `(B, in, *S)` to `(B, out, *S)` logits, in 2D and 3D, whose
last layer maps its last feature map `(B, F, *S)` to the outputs: every output channel is an
independent classifier on the same features, as the Relation U-Net's four heads and MC dropout
need. The default widths are small, for the CPU: about 0.4-0.5 M parameters in 2D, as the
original BasicUNet 16-16-32-64-128-16; SwinUNETR's smallest (feature size 12) has 1.6 M.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from monai.networks.blocks import ADN, Convolution
from monai.networks.nets import BasicUNet, DynUNet, SegResNet, SwinUNETR, UNet
from torch import nn


@dataclass(frozen=True)
class BackboneSpec:
    """How one MONAI network is built and what the models need to know of it.

    Attributes:
        build: `(spatial_dims, in_channels, out_channels, features) -> network`.
        features: the default widths, read as `build`'s docstring says.
        size_multiple: `features -> n`: every spatial size of the input must be a multiple of n.
        last_layer: dotted name, inside the network, of the module that maps the last feature map
            to the outputs.
    """

    build: Callable[[int, int, int, tuple[int, ...]], nn.Module]
    features: tuple[int, ...]
    size_multiple: Callable[[tuple[int, ...]], int]
    last_layer: str


def _basicunet(dims: int, in_channels: int, out_channels: int, features: tuple[int, ...]) -> nn.Module:
    """MONAI BasicUNet, the vanilla U-Net; `features`: five level widths and the last feature map."""
    return BasicUNet(spatial_dims=dims, in_channels=in_channels, out_channels=out_channels, features=features)


def _unet(dims: int, in_channels: int, out_channels: int, features: tuple[int, ...]) -> nn.Module:
    """MONAI UNet, two residual units per level; `features`: the width of each level.

    MONAI's UNet ends in a transposed convolution straight to its outputs; it is built here to
    give `features[0]` channels instead, then instance norm, PReLU and a 1x1 convolution.
    """
    strides = (2,) * (len(features) - 1)
    body = UNet(dims, in_channels, features[0], channels=features, strides=strides, num_res_units=2)
    norm_act = ADN("NA", features[0], act="PRELU", norm="INSTANCE", norm_dim=dims)
    return nn.Sequential(body, norm_act, Convolution(dims, features[0], out_channels, 1, conv_only=True))


def _segresnet(dims: int, in_channels: int, out_channels: int, features: tuple[int, ...]) -> nn.Module:
    """MONAI SegResNet (residual encoder, light decoder); `features`: (first width,), a multiple of 8."""
    (width,) = features
    return SegResNet(dims, init_filters=width, in_channels=in_channels, out_channels=out_channels)


def _dynunet(dims: int, in_channels: int, out_channels: int, features: tuple[int, ...]) -> nn.Module:
    """MONAI DynUNet, nnU-Net's network: 3x3 convolutions, stride 2; `features`: the width of each level."""
    levels = len(features)
    return DynUNet(
        dims,
        in_channels,
        out_channels,
        kernel_size=[3] * levels,
        strides=[1] + [2] * (levels - 1),
        upsample_kernel_size=[2] * (levels - 1),
        filters=features,
    )


def _swinunetr(dims: int, in_channels: int, out_channels: int, features: tuple[int, ...]) -> nn.Module:
    """MONAI SwinUNETR (Swin transformer encoder); `features`: (feature size,), a multiple of 12."""
    (size,) = features
    return SwinUNETR(in_channels=in_channels, out_channels=out_channels, feature_size=size, spatial_dims=dims)


def _per_level(features: tuple[int, ...]) -> int:
    return 2 ** (len(features) - 1)


#: name -> how to build it; the names are `relunet.config.BACKBONES`
SPECS: dict[str, BackboneSpec] = {
    "basicunet": BackboneSpec(_basicunet, (16, 16, 32, 64, 128, 16), lambda _: 16, "final_conv"),
    "unet": BackboneSpec(_unet, (16, 16, 32, 64, 128), _per_level, "2"),
    "segresnet": BackboneSpec(_segresnet, (8,), lambda _: 8, "conv_final.2"),
    "dynunet": BackboneSpec(_dynunet, (16, 16, 32, 64, 128), _per_level, "output_block"),
    "swinunetr": BackboneSpec(_swinunetr, (12,), lambda _: 32, "out"),
}
