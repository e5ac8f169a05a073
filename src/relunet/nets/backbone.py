"""MONAI's BasicUNet (the vanilla U-Net of Ronneberger et al.) as the shared backbone."""

from __future__ import annotations

import torch
from monai.networks.nets import BasicUNet
from torch import nn

#: BasicUNet halves the size four times, so every spatial size must be a multiple of this.
SIZE_MULTIPLE = 16


def build_backbone(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    features: tuple[int, ...],
    head_dropout: float = 0.0,
) -> nn.Module:
    """A U-Net mapping `(B, in_channels, *S)` to `(B, out_channels, *S)` logits.

    Its last layer is a 1x1 convolution, so each output channel is an independent linear
    classifier on the last feature map. `head_dropout > 0` puts dropout right before it.
    """
    net = BasicUNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=out_channels,
        features=features,
    )
    if head_dropout > 0:
        net.final_conv = nn.Sequential(nn.Dropout(head_dropout), net.final_conv)
    return net


def check_input(x: torch.Tensor, spatial_dims: int, channels: int) -> None:
    """Raise ValueError with the fix when `x` is not `(B, channels, *S)` with S a multiple of 16."""
    if x.ndim != spatial_dims + 2:
        raise ValueError(f"expected a {spatial_dims + 2}-d tensor (B, C, *S), got {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"expected {channels} input channels, got {x.shape[1]}")
    sizes = x.shape[2:]
    if any(s % SIZE_MULTIPLE for s in sizes):
        padded = tuple(-(-s // SIZE_MULTIPLE) * SIZE_MULTIPLE for s in sizes)
        raise ValueError(f"spatial size {tuple(sizes)} is not a multiple of 16; pad it to {padded}")
