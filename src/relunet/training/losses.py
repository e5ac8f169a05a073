"""Losses for the single-head U-Net and the four heads of the Relation U-Net."""

from __future__ import annotations

import torch
from monai.losses import DiceLoss
from torch import nn

from relunet.types import RelationOutput

LOSSES = ("bce_dice", "bce")


class SegmentationLoss(nn.Module):
    """Sigmoid multi-label loss on `(B, K, *S)` logits and {0, 1} targets.

    "bce" is the paper's cross-entropy; "bce_dice" adds MONAI's soft Dice computed over the
    whole batch (so empty slices do not make the Dice term undefined).
    """

    def __init__(self, kind: str = "bce_dice") -> None:
        super().__init__()
        if kind not in LOSSES:
            raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")
        self.bce = nn.BCEWithLogitsLoss(reduction="none")
        self.dice = DiceLoss(sigmoid=True, batch=True, reduction="none") if kind == "bce_dice" else None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss of `logits` against `target`, both `(B, K, *S)`."""
        return self.per_head(logits, target, heads=1)[0]

    def per_head(self, logits: torch.Tensor, target: torch.Tensor, heads: int) -> torch.Tensor:
        """`(heads,)` losses of `heads` maps stacked along the channels: `(B, heads * K, *S)` each.

        One call for all heads (a few large operations rather than many small ones); head h's
        value equals `forward` on its K channels.
        """
        target = target.to(logits.dtype)
        per_channel = self.bce(logits, target).mean(dim=(0, *range(2, logits.ndim)))
        if self.dice is not None:
            per_channel = per_channel + self.dice(logits, target).flatten()
        return per_channel.view(heads, -1).mean(1)


def relation_targets(s1: torch.Tensor, s2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Union `max(s1, s2)` and intersection `min(s1, s2)` per class, each `(B, K, *S)`."""
    return torch.maximum(s1, s2), torch.minimum(s1, s2)


def relation_loss(
    out: RelationOutput, s1: torch.Tensor, s2: torch.Tensor, criterion: SegmentationLoss
) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum of the four heads' losses, and each head's value for the history."""
    union, inter = relation_targets(s1, s2)
    heads = criterion.per_head(torch.cat(tuple(out), 1), torch.cat((s1, s2, union, inter), 1), heads=4)
    return heads.sum(), dict(zip(out._fields, heads.tolist(), strict=True))
