"""Named containers passed between the rooms of the package."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import torch


class RelationOutput(NamedTuple):
    """The four maps of a Relation U-Net, each `(B, K, *S)` (logits or probabilities).

    Attributes:
        seg_a: segmentation of the first input `x1`.
        seg_b: segmentation of the second input `x2`.
        union: the *Possible* relation, `s1 OR s2`.
        inter: the *Consensus* relation, `s1 AND s2`.
    """

    seg_a: torch.Tensor
    seg_b: torch.Tensor
    union: torch.Tensor
    inter: torch.Tensor

    def map(self, fn) -> RelationOutput:
        """Apply `fn` to each of the four maps."""
        return RelationOutput(*(fn(t) for t in self))


@dataclass(frozen=True)
class Case:
    """One image (2D picture or 3D volume) as read from disk, before any preprocessing.

    Attributes:
        case_id: name of the case (file stem without channel suffix).
        image: `(C, *S)` raw intensities; `S` is `(H, W)` or `(X, Y, Z)`.
        label: `(*S)` integer label map, or None when there is no ground truth.
        image_path: the file the image came from (the first channel's file).
        fmt: "nifti" or "image2d"; masks are written back in this format.
        geometry: what a writer needs to put a mask back in place (NIfTI affine and header).
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray | None
    image_path: Path
    fmt: str
    geometry: dict[str, Any] = field(default_factory=dict)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """The spatial shape `S` of the image."""
        return tuple(self.image.shape[1:])
