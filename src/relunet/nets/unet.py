"""The baselines: a plain U-Net, and the same U-Net with dropout before its last layer."""

from __future__ import annotations

import torch
from torch import nn

from relunet.nets.backbone import build_backbone, check_input


class SegmentationUNet(nn.Module):
    """U-Net with one K-channel head, `(B, C, *S) -> (B, K, *S)` logits.

    With `head_dropout > 0` it is the MC-dropout baseline: dropout right before the last
    layer, kept active at test time by `relunet.inference` to draw samples.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        num_classes: int,
        features: tuple[int, ...],
        head_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.backbone = build_backbone(
            spatial_dims, in_channels, num_classes, features, head_dropout=head_dropout
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map `x` of shape `(B, C, *S)` to logits `(B, K, *S)`."""
        check_input(x, self.spatial_dims, self.in_channels)
        return self.backbone(x)

    @property
    def head(self) -> nn.Module:
        """The last layer (dropout, if any, then a 1x1 convolution): features `(B, F, *S)` to logits."""
        return self.backbone.final_conv

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map `(B, F, *S)`, the input of `head`, for `x` of shape `(B, C, *S)`.

        `self.head(self.features(x))` equals `self(x)`; MC dropout computes the features once and
        draws only the head.
        """
        check_input(x, self.spatial_dims, self.in_channels)
        captured: list[torch.Tensor] = []
        hook = self.head.register_forward_pre_hook(lambda _module, args: captured.append(args[0]))
        try:
            self.backbone(x)
        finally:
            hook.remove()
        return captured[0]
