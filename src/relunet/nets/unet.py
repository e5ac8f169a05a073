"""The baselines: a plain U-Net, and the same U-Net with dropout before its last layer."""

from __future__ import annotations

import torch

from relunet.nets.backbone_factory import BackboneModel, build_backbone


class SegmentationUNet(BackboneModel):
    """A backbone with one K-channel head, `(B, C, *S) -> (B, K, *S)` logits.

    With `head_dropout > 0` it is the MC-dropout baseline: dropout right before the last
    layer, kept active at test time by `relunet.inference` to draw samples.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        num_classes: int,
        features: tuple[int, ...] | None = None,
        head_dropout: float = 0.0,
        backbone: str = "basicunet",
    ) -> None:
        net = build_backbone(backbone, spatial_dims, in_channels, num_classes, features, head_dropout)
        super().__init__(net, spatial_dims, in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map `x` of shape `(B, C, *S)` to logits `(B, K, *S)`."""
        self.check_input(x)
        return self.backbone(x)
