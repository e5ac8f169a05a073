"""Network samples from images: 2D slices of volumes (and back), padding to the network's size multiple."""

from __future__ import annotations

import numpy as np


def to_samples(array: np.ndarray, dims: int, slice_axis: int) -> np.ndarray:
    """Cut `(C, *S)` into network samples `(N, C, *s)`.

    A 2D picture or, with `dims` 3, a volume is one sample; a volume with `dims` 2 becomes
    its slices along spatial axis `slice_axis`.
    """
    spatial = array.ndim - 1
    if spatial == dims:
        return array[None]
    if spatial == 3 and dims == 2:
        return np.moveaxis(array, 1 + slice_axis, 0)
    raise ValueError(f"cannot make {dims}D samples from a {spatial}D image")


def from_samples(samples: np.ndarray, spatial: int, dims: int, slice_axis: int) -> np.ndarray:
    """Inverse of `to_samples`: `(N, K, *s)` back to `(K, *S)` for an image with `spatial` dims."""
    if spatial == dims:
        return samples[0]
    return np.moveaxis(samples, 0, 1 + slice_axis)


def relative_depth(n_samples: int) -> np.ndarray:
    """Position of each of `n_samples` slices in its volume, from 0 to 1 (0.5 for one sample)."""
    if n_samples == 1:
        return np.array([0.5])
    return np.linspace(0.0, 1.0, n_samples)


def padded_shape(shape: tuple[int, ...], multiple: int) -> tuple[int, ...]:
    """Smallest shape >= `shape` whose sizes are multiples of `multiple`, and at least twice it.

    `multiple` is the network's (`relunet.nets.size_multiple`).

    Twice the multiple leaves the U-Net's bottleneck 2 voxels wide, which instance
    normalisation needs during training.
    """
    return tuple(max(2 * multiple, -(-s // multiple) * multiple) for s in shape)


def pad_to(samples: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Zero-pad the trailing spatial axes of `(N, C, *s)` at their far end up to `shape`.

    Samples that already have that shape come back as they are, not copied (a whole CT volume is
    hundreds of MB).
    """
    pad = [(0, 0), (0, 0)] + [(0, t - s) for s, t in zip(samples.shape[2:], shape, strict=True)]
    if any(after < 0 for _, after in pad):
        raise ValueError(f"samples of size {samples.shape[2:]} exceed the padded size {shape}")
    return np.pad(samples, pad) if any(after for _, after in pad) else samples


def crop_to(samples: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Undo `pad_to`: keep the first `shape` voxels of each spatial axis of `(N, K, *s)`."""
    return samples[(..., *(slice(0, s) for s in shape))]
