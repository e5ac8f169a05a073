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
        self.bce = nn.BCEWithLogitsLoss()
        self.dice = DiceLoss(sigmoid=True, batch=True) if kind == "bce_dice" else None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss of `logits` against `target`, both `(B, K, *S)`."""
        target = target.to(logits.dtype)
        loss = self.bce(logits, target)
        if self.dice is not None:
            loss = loss + self.dice(logits, target)
        return loss


def relation_targets(s1: torch.Tensor, s2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Union `max(s1, s2)` and intersection `min(s1, s2)` per class, each `(B, K, *S)`."""
    return torch.maximum(s1, s2), torch.minimum(s1, s2)


def relation_loss(
    out: RelationOutput, s1: torch.Tensor, s2: torch.Tensor, criterion: SegmentationLoss
) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum of the four heads' losses, and each head's value for the history."""
    union, inter = relation_targets(s1, s2)
    parts = {
        name: criterion(logits, target)
        for name, logits, target in zip(out._fields, out, (s1, s2, union, inter), strict=True)
    }
    total = torch.stack(list(parts.values())).sum()
    return total, {name: value.item() for name, value in parts.items()}
