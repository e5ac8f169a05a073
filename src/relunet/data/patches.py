"""Training patches: where to cut them (a share centred on foreground, as nnU-Net does) and the cut.

The draws come from the epoch's generator, a fixed count per sample whatever it holds, so a
resumed run cuts the same patches as an uninterrupted one.
"""

from __future__ import annotations

import numpy as np

from relunet.data.samples import padded_shape
from relunet.errors import InputError

#: share of patches centred on a foreground voxel (nnU-Net's oversample_foreground_percent)
FOREGROUND_SHARE = 1 / 3


def draw_starts(
    rng: np.random.Generator,
    shapes: np.ndarray,
    patch: tuple[int, ...],
    foreground: list[np.ndarray],
) -> np.ndarray:
    """The corner of a patch in each of M samples.

    Args:
        rng: the epoch's generator.
        shapes: `(M, d)` spatial shape of each sample.
        patch: the patch's spatial size, `d` sizes.
        foreground: per sample, `(F, d)` foreground voxel coordinates (F may be 0).

    Returns:
        `(M, d)` int64 corners; a patch larger than its sample starts at 0 and is padded.
    """
    patch_arr = np.asarray(patch)
    room = np.maximum(shapes - patch_arr, 0)
    on_foreground = rng.random(len(shapes)) < FOREGROUND_SHARE
    pick = rng.random(len(shapes))
    uniform = (rng.random(shapes.shape) * (room + 1)).astype(np.int64)
    starts = uniform
    for i, points in enumerate(foreground):
        if on_foreground[i] and len(points):
            centre = points[int(pick[i] * len(points))]
            starts[i] = np.clip(centre - patch_arr // 2, 0, room[i])
    return starts


def cut(sample: np.ndarray, start: np.ndarray, patch: tuple[int, ...]) -> np.ndarray:
    """The `(C, *patch)` block of a `(C, *s)` sample from corner `start`, zero-padded past its end."""
    block = np.asarray(sample[(slice(None), *(slice(b, b + p) for b, p in zip(start, patch, strict=True)))])
    pad = [(0, 0)] + [(0, p - s) for s, p in zip(block.shape[1:], patch, strict=True)]
    return np.pad(block, pad) if any(after for _, after in pad) else np.ascontiguousarray(block)


def check_patch_size(patch: tuple[int, ...] | None, multiple: int) -> None:
    """A patch's sizes must be multiples of the network's size multiple, and at least twice it."""
    if patch is None:
        return
    fitted = padded_shape(patch, multiple)
    if tuple(fitted) != tuple(patch):
        raise InputError(
            f"--patch-size {','.join(map(str, patch))}: each size must be a multiple of {multiple} "
            f"and at least {2 * multiple} for this backbone; e.g. {','.join(map(str, fitted))}"
        )
