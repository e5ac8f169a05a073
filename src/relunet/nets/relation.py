"""The Relation U-Net: two images in, four maps out."""

from __future__ import annotations

import torch
from torch import nn

from relunet.nets.backbone import build_backbone, check_input
from relunet.types import RelationOutput


class RelationUNet(nn.Module):
    """U-Net on `cat(x1, x2)` with four K-channel heads: seg_a, seg_b, union, inter.

    The four heads are the 4K output channels of the backbone's last 1x1 convolution, each
    an independent classifier on the last feature map, split into named fields.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        num_classes: int,
        features: tuple[int, ...],
    ) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.backbone = build_backbone(spatial_dims, 2 * in_channels, 4 * num_classes, features)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> RelationOutput:
        """Map `x1`, `x2` of shape `(B, C, *S)` to four logit maps of shape `(B, K, *S)`."""
        check_input(x1, self.spatial_dims, self.in_channels)
        check_input(x2, self.spatial_dims, self.in_channels)
        logits = self.backbone(torch.cat([x1, x2], dim=1))
        return RelationOutput(*logits.split(self.num_classes, dim=1))
