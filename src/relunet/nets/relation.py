"""The Relation U-Net: two images in, four maps out."""

from __future__ import annotations

import torch

from relunet.nets.backbone_factory import BackboneModel, build_backbone
from relunet.types import RelationOutput


class RelationUNet(BackboneModel):
    """A backbone on `cat(x1, x2)` with four K-channel heads: seg_a, seg_b, union, inter.

    Any backbone of `relunet.nets.backbone_catalogue` (`(B, 2C, *S) -> (B, 4K, *S)`): the four heads are
    the 4K output channels of its last layer, each an independent classifier on the last feature
    map, split into named fields.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        num_classes: int,
        features: tuple[int, ...] | None = None,
        backbone: str = "basicunet",
    ) -> None:
        net = build_backbone(backbone, spatial_dims, 2 * in_channels, 4 * num_classes, features)
        super().__init__(net, spatial_dims, in_channels, num_classes)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> RelationOutput:
        """Map `x1`, `x2` of shape `(B, C, *S)` to four logit maps of shape `(B, K, *S)`."""
        self.check_input(x1)
        self.check_input(x2)
        logits = self.backbone(torch.cat([x1, x2], dim=1))
        return RelationOutput(*logits.split(self.num_classes, dim=1))
