"""From a raw `Case` to network space and back: normalisation, label mapping, resizing.

Only `resize` needs torch, and imports it, so that parsing and checking the data settings stays light.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relunet.config import DataConfig
from relunet.errors import InputError
from relunet.types import Case


def normalise(image: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """Z-score each channel of a `(C, *S)` image over the whole case; returns float32.

    With `window = (low, high)` intensities are first clipped to it (a CT window in HU).
    """
    image = image.astype(np.float32)
    if window is not None:
        image = np.clip(image, *window)
    axes = tuple(range(1, image.ndim))
    mean = image.mean(axis=axes, keepdims=True)
    std = image.std(axis=axes, keepdims=True)
    return (image - mean) / np.where(std > 0, std, 1.0)


def binary_label_sets(declared: tuple[int, ...] | None) -> tuple[tuple[int, ...], ...]:
    """The default mapping: one class, every non-zero label (`label > 0`)."""
    if declared is None:
        return ((1,),)
    return (tuple(v for v in declared if v != 0),)


def label_targets(label: np.ndarray, label_sets: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """Map a `(*S)` label map to `(K, *S)` uint8 targets, class k = label in `label_sets[k]`."""
    return np.stack([np.isin(label, values) for values in label_sets]).astype(np.uint8)


def resize(array: np.ndarray, size: tuple[int, ...], mode: str) -> np.ndarray:
    """Resize `(C, *S)` to `(C, *size)`; "bilinear" (trilinear for volumes) or "nearest" (masks)."""
    if tuple(array.shape[1:]) == tuple(size):
        return array
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
    if mode == "bilinear" and len(size) == 3:
        mode = "trilinear"
    kwargs = {"align_corners": False} if mode in ("bilinear", "trilinear") else {}
    out = F.interpolate(tensor, size=size, mode=mode, **kwargs)[0].numpy()
    return out.astype(array.dtype, copy=False)


@dataclass(frozen=True)
class Preprocessor:
    """The mapping between a case and network space, fixed by a run's data settings.

    Attributes:
        label_sets: label values of each output class.
        image_size: side length 2D pictures are resized to (None keeps their size).
        window: intensity window applied before normalisation (None: none).
        spacing: voxel size volumes are resampled to, per axis (None keeps their grid).
    """

    label_sets: tuple[tuple[int, ...], ...]
    image_size: int | None = None
    window: tuple[float, float] | None = None
    spacing: tuple[float, ...] | None = None

    @classmethod
    def of(cls, data: DataConfig) -> Preprocessor:
        """The preprocessor a run's data settings describe."""
        return cls(data.label_sets, data.image_size, data.window, data.spacing)

    def network_shape(self, case: Case) -> tuple[int, ...]:
        """Spatial shape of the case in network space."""
        return self.shape_in_network(case.spatial_shape, voxel_size(case.geometry))

    def shape_in_network(self, spatial: tuple[int, ...], zooms: tuple[float, ...] | None) -> tuple[int, ...]:
        """Network-space shape of an image of spatial shape `spatial` and voxel size `zooms`.

        With a target `spacing`, a volume's grid is scaled so that its voxels have that size.
        """
        if len(spatial) == 3 and self.spacing is not None and zooms is not None:
            return tuple(
                max(1, round(s * z / t)) for s, z, t in zip(spatial, zooms, self.spacing, strict=True)
            )
        if self.image_size is None or len(spatial) != 2:
            return tuple(spatial)
        return (self.image_size, self.image_size)

    def image(self, case: Case) -> np.ndarray:
        """Normalised `(C, *S')` float32 image in network space."""
        return resize(normalise(case.image, self.window), self.network_shape(case), "bilinear")

    def targets(self, case: Case) -> np.ndarray:
        """`(K, *S')` uint8 targets in network space."""
        if case.label is None:
            raise InputError(f"{case.image_path}: no ground-truth mask; give a dataset with masks")
        targets = label_targets(case.label, self.label_sets)
        return resize(targets, self.network_shape(case), "nearest")

    def restore(self, maps: np.ndarray, case: Case) -> np.ndarray:
        """Bring `(K, *S')` probability maps back to the case's own shape `(K, *S)`."""
        return resize(maps, case.spatial_shape, "bilinear")


def parse_label_sets(text: str) -> tuple[tuple[int, ...], ...]:
    """Parse "1;2" (two classes) or "1,2,4;1,4;4" (nested regions) into label sets."""
    try:
        sets = tuple(tuple(int(v) for v in part.split(",")) for part in text.split(";"))
    except ValueError:
        raise InputError(f"--labels {text!r}: give label values as '1;2' or '1,2,4;1,4;4'") from None
    if any(0 in s for s in sets):
        raise InputError(f"--labels {text!r}: 0 is background; list foreground labels only")
    return sets


def parse_window(text: str) -> tuple[float, float]:
    """Parse "LOW,HIGH" (e.g. "-100,400" for a liver CT window)."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--window {text!r}: give two numbers, e.g. '-100,400'") from None
    if low >= high:
        raise InputError(f"--window {text!r}: the low end must be below the high end")
    return low, high


def voxel_size(geometry: dict) -> tuple[float, ...] | None:
    """The voxel size of a volume from its NIfTI header (None for pictures)."""
    header = geometry.get("header")
    return None if header is None else tuple(float(z) for z in header.get_zooms()[:3])


def parse_spacing(text: str) -> tuple[float, ...] | str:
    """Parse "auto" (the dataset's median voxel size) or "x,y,z" (millimetres)."""
    if text == "auto":
        return text
    try:
        spacing = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--spacing {text!r}: give 'auto' or three sizes, e.g. '0.8,0.8,1.5'") from None
    if len(spacing) != 3 or min(spacing) <= 0:
        raise InputError(f"--spacing {text!r}: give three positive sizes, e.g. '0.8,0.8,1.5', or 'auto'")
    return spacing


def parse_patch_size(text: str) -> tuple[int, ...]:
    """Parse "128,128,64" (3D) or "256,256" (2D) into whole sizes."""
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--patch-size {text!r}: give whole sizes, e.g. '128,128,64'") from None
    return sizes
