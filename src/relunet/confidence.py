"""Per-case confidence scores from predicted maps; no ground truth involved.

All scores lie in [0, 1]; high means the prediction is probably right.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np

from relunet.evaluation.metrics import dice_per_class

THRESHOLD = 0.5


def relation_confidence(union: np.ndarray, inter: np.ndarray) -> float:
    """C = Dice of the binarised union and intersection maps, `(K, *S)` each; mean over classes."""
    return float(dice_per_class(union > THRESHOLD, inter > THRESHOLD).mean())


def disagreement(union: np.ndarray, inter: np.ndarray) -> np.ndarray:
    """Where to look: `(K, *S)` voxels the binarised union and intersection heads disagree on."""
    return (union > THRESHOLD) != (inter > THRESHOLD)


def mean_foreground_probability(probability: np.ndarray) -> float:
    """Mean probability over voxels predicted foreground, `(K, *S)`; 1 if none is."""
    foreground = probability > THRESHOLD
    return float(probability[foreground].mean()) if foreground.any() else 1.0


def mean_pairwise_dice(masks: Sequence[np.ndarray]) -> float:
    """Mean Dice over all pairs of 2+ binary `(K, *S)` masks, each pair's mean over classes.

    Two empty masks agree (1). Pair by pair, so memory stays that of the masks themselves.
    """
    return float(np.mean([dice_per_class(a, b).mean() for a, b in combinations(masks, 2)]))


def soft_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two `(K, *S)` probability maps, `2 sum(ab) / (sum(a) + sum(b))`, mean over classes.

    A class empty in both maps scores 1, as in `dice`.
    """
    per_class = []
    for x, y in zip(a, b, strict=True):
        total = float(x.sum(dtype=np.float64) + y.sum(dtype=np.float64))
        per_class.append(1.0 if total == 0 else 2.0 * float((x * y).sum(dtype=np.float64)) / total)
    return float(np.mean(per_class))


def band_agreement(probability: np.ndarray, low: float = 0.1, high: float = 0.9) -> float:
    """Dice of the loose (`p > low`) and the sure (`p > high`) masks of one `(K, *S)` map.

    The single-map analogue of C: 1 when every voxel is decided, lower the wider the band of
    undecided voxels around the segmentation.
    """
    return float(dice_per_class(probability > low, probability > high).mean())


def relation_scores(maps: dict[str, np.ndarray]) -> dict[str, float]:
    """One-pass scores of a self-pair prediction besides C, from its four `(K, *S)` probability maps.

    `soft`: C on probabilities (`soft_dice` of union and intersection); `heads`: mean Dice over
    the six pairs of the four binarised heads; `ab`: Dice of binarised `seg_a` and `seg_b`; `fg`:
    the mean foreground probability of `seg_a`; `band`: its `band_agreement`.
    """
    masks = [maps[head] > THRESHOLD for head in ("seg_a", "seg_b", "union", "inter")]
    return {
        "soft": soft_dice(maps["union"], maps["inter"]),
        "heads": mean_pairwise_dice(masks),
        "ab": float(dice_per_class(masks[0], masks[1]).mean()),
        "fg": mean_foreground_probability(maps["seg_a"]),
        "band": band_agreement(maps["seg_a"]),
    }


class SampleAgreement:
    """Running mean and agreement of repeated probability maps (MC-dropout draws, anchors).

    Agreement = Dice of the intersection and the union of the binarised samples, mean over
    classes: 1 when all samples give the same mask. With `pairwise=True` the binarised samples
    are also kept, for the mean pairwise Dice (for a few samples: ensembles, flips).
    """

    def __init__(self, pairwise: bool = False) -> None:
        self.masks: list[np.ndarray] | None = [] if pairwise else None
        self.count = 0
        self.total: np.ndarray | None = None
        self.all_agree: np.ndarray | None = None
        self.any_says: np.ndarray | None = None

    def add(self, probability: np.ndarray) -> None:
        """Add one `(K, *S)` probability map."""
        mask = probability > THRESHOLD
        if self.total is None:
            self.total, self.all_agree, self.any_says = probability.astype(np.float64), mask, mask
        else:
            self.total = self.total + probability
            self.all_agree = self.all_agree & mask
            self.any_says = self.any_says | mask
        if self.masks is not None:
            self.masks.append(mask)
        self.count += 1

    @property
    def mean(self) -> np.ndarray:
        """Mean probability `(K, *S)` over the samples added."""
        if self.total is None:
            raise ValueError("no samples added")
        return (self.total / self.count).astype(np.float32)

    @property
    def agreement(self) -> float:
        """Dice of the intersection and the union of the binarised samples."""
        if self.all_agree is None:
            raise ValueError("no samples added")
        return float(dice_per_class(self.any_says, self.all_agree).mean())

    @property
    def pairwise(self) -> float:
        """Mean Dice over all pairs of binarised samples (needs `pairwise=True`, 2+ samples).

        Computed from the Gram matrix of the flattened masks, so 200 samples cost one matrix
        product per class rather than 19,900 Dice evaluations. Two empty masks agree (1).
        """
        if not self.masks or len(self.masks) < 2:
            raise ValueError("pairwise Dice needs pairwise=True and at least two samples")
        stacked = np.stack(self.masks)  # (n, K, *S)
        n, k = stacked.shape[:2]
        per_class = []
        for c in range(k):
            flat = stacked[:, c].reshape(n, -1).astype(np.float32)
            overlap = flat @ flat.T
            sizes = np.diag(overlap)
            total = sizes[:, None] + sizes[None, :]
            dice = np.where(total > 0, 2 * overlap / np.where(total > 0, total, 1), 1.0)
            per_class.append(dice[np.triu_indices(n, 1)].mean())
        return float(np.mean(per_class))


#: the relation heads each flip of `flip_scores` gives
RELATION_HEADS = ("seg_a", "seg_b", "union", "inter")


def flip_scores(views: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Candidate scores of a Relation U-Net fed the self-pair of an image and of each of its flips.

    `views` holds, per flip (the unflipped image first), the four back-flipped `(K, *S)`
    probability maps of `RELATION_HEADS`. Every score lies in [0, 1], mean over classes:

    - `self`: C of the unflipped self-pair alone (one pass).
    - `mean`: the mean over the flips of each flip's C.
    - `pooled`: Dice of the union of all flips' union masks and the intersection of all
      flips' intersection masks: disagreement within a flip and between flips both lower it.
    - `meanmaps`: C of the flips' mean union and mean intersection maps.
    - `pairwise`: the mean pairwise Dice of the flips' binarised `seg_a` masks.
    - `mean_pairwise`: `mean` times `pairwise`.
    """
    unions = [view["union"] > THRESHOLD for view in views]
    inters = [view["inter"] > THRESHOLD for view in views]
    each = [float(dice_per_class(u, i).mean()) for u, i in zip(unions, inters, strict=True)]
    seg_a = SampleAgreement(pairwise=True)
    for view in views:
        seg_a.add(view["seg_a"])
    mean = float(np.mean(each))
    return {
        "self": each[0],
        "mean": mean,
        "pooled": float(dice_per_class(np.logical_or.reduce(unions), np.logical_and.reduce(inters)).mean()),
        "meanmaps": relation_confidence(
            np.mean([v["union"] for v in views], axis=0), np.mean([v["inter"] for v in views], axis=0)
        ),
        "pairwise": seg_a.pairwise,
        "mean_pairwise": mean * seg_a.pairwise,
    }
