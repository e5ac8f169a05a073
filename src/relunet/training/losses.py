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
    whole batch (so empty slices do not make the Dice term undefined). `relation_kind` is the
    loss of the Relation U-Net's union and intersection heads (None: `kind`), and
    `relation_weight` their weight in the sum of the four heads' losses (`relation_loss`).
    """

    def __init__(
        self, kind: str = "bce_dice", relation_kind: str | None = None, relation_weight: float = 1.0
    ) -> None:
        super().__init__()
        self.relation_weight = relation_weight
        relation_kind = relation_kind or kind
        for name in (kind, relation_kind):
            if name not in LOSSES:
                raise ValueError(f"unknown loss {name!r}; choose one of {LOSSES}")
        self.bce = nn.BCEWithLogitsLoss(reduction="none")
        with_dice = (kind == "bce_dice", relation_kind == "bce_dice")
        self.dice = DiceLoss(sigmoid=True, batch=True, reduction="none") if any(with_dice) else None
        #: whether the Dice term counts (1) or not (0), for a lone head and for the four relation heads
        self.dice_weights = {
            1: (float(with_dice[0]),),
            4: (float(with_dice[0]),) * 2 + (float(with_dice[1]),) * 2,
        }

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss of `logits` against `target`, both `(B, K, *S)`."""
        return self.per_head(logits, target, heads=1)[0]

    def per_head(self, logits: torch.Tensor, target: torch.Tensor, heads: int) -> torch.Tensor:
        """`(heads,)` losses of 1 or 4 maps stacked along the channels: `(B, heads * K, *S)` each.

        One call for all heads (a few large operations rather than many small ones); head h's
        value equals the loss of its K channels alone. With 4 heads, the last two (union,
        intersection) take `relation_kind`.
        """
        target = target.to(logits.dtype)
        per_head = self.bce(logits, target).mean(dim=(0, *range(2, logits.ndim))).view(heads, -1).mean(1)
        if self.dice is not None:
            weights = torch.tensor(self.dice_weights[heads], dtype=per_head.dtype, device=per_head.device)
            per_head = per_head + weights * self.dice(logits, target).view(heads, -1).mean(1)
        return per_head


def relation_targets(s1: torch.Tensor, s2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Union `max(s1, s2)` and intersection `min(s1, s2)` per class, each `(B, K, *S)`."""
    return torch.maximum(s1, s2), torch.minimum(s1, s2)


def relation_loss(
    out: RelationOutput, s1: torch.Tensor, s2: torch.Tensor, criterion: SegmentationLoss
) -> tuple[torch.Tensor, dict[str, float]]:
    """The four heads' losses summed, and each head's unweighted value for the history.

    The union and intersection heads count `criterion.relation_weight` times.
    """
    union, inter = relation_targets(s1, s2)
    heads = criterion.per_head(torch.cat(tuple(out), 1), torch.cat((s1, s2, union, inter), 1), heads=4)
    total = heads[:2].sum() + criterion.relation_weight * heads[2:].sum()
    return total, dict(zip(out._fields, heads.tolist(), strict=True))
