"""A training set read from the disk cache one batch at a time: memory independent of the case count.

`StreamedSet` numbers its samples as `TrainingSet` does (cases in order, slices in order), so the
same drawn indices give the same batches; without patches every sample is padded to the same
shape as the in-memory set's. With a patch size each drawn sample is cut to a patch
(`relunet.data.patches`).
"""

from __future__ import annotations

import numpy as np
import torch

from relunet.data.patches import cut, draw_starts
from relunet.data.sample_cache import CachedCase
from relunet.data.samples import pad_to


class StreamedSet:
    """Samples of cached cases, read per batch.

    Args:
        cases: the cached cases, in the order of the training set.
        shape: the spatial shape of every batch sample: the padded shape, or the patch.
        patch: True to cut patches of `shape` (at corners from `draw_crops`), False to pad to it.
    """

    def __init__(self, cases: list[CachedCase], shape: tuple[int, ...], patch: bool) -> None:
        self.cases = cases
        self.shape = tuple(shape)
        self.patch = patch
        self.device = torch.device("cpu")
        counts = [len(c.depth) for c in cases]
        self.depth = np.concatenate([c.depth for c in cases])
        self._case_of = np.repeat(np.arange(len(cases)), counts)
        self._first = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def __len__(self) -> int:
        return len(self.depth)

    def to(self, device: torch.device) -> StreamedSet:
        """Deliver batches on `device`."""
        self.device = device
        return self

    def draw_crops(self, rng: np.random.Generator, indices: np.ndarray) -> np.ndarray | None:
        """`(M, d)` patch corners of the samples `indices` from the epoch's `rng` (None without patches)."""
        if not self.patch:
            return None
        shapes = np.array([self.cases[self._case_of[i]].sample_shape for i in indices])
        return draw_starts(rng, shapes, self.shape, [self._foreground(i) for i in indices])

    def batch(
        self, index: np.ndarray, corners: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images `(M, C, *shape)` float32 and targets `(M, K, *shape)` uint8 of samples `index`."""
        images, targets = [], []
        for n, i in enumerate(index):
            case, row = self.cases[self._case_of[i]], i - self._first[self._case_of[i]]
            for path, out in ((case.images, images), (case.targets, targets)):
                sample = np.load(path, mmap_mode="r")[row]
                if self.patch:
                    out.append(cut(sample, corners[n], self.shape))
                else:
                    out.append(pad_to(np.asarray(sample)[None], self.shape)[0])
        return (
            torch.from_numpy(np.stack(images)).to(self.device),
            torch.from_numpy(np.stack(targets)).to(self.device),
        )

    def _foreground(self, i: int) -> np.ndarray:
        """`(F, d)` foreground coordinates of sample `i`."""
        case = self.cases[self._case_of[i]]
        points = np.load(case.foreground)
        return points[points[:, 0] == i - self._first[self._case_of[i]], 1:]
