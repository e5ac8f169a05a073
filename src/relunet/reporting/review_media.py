"""What the review page shows of one case: a 2D picture with its overlay, or small NIfTI volumes for NiiVue.

Pictures become data URLs: the picture itself (8-bit) and a transparent overlay at display size
with the mask's contour and the disagreement map. Volumes become gzipped 8-bit NIfTI files in
base64: the image windowed to its 0.5-99.5 percentile range, the mask as a label map (NiiVue draws
its outline) and the disagreement map.
"""

from __future__ import annotations

import base64
import gzip
import io
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image
from scipy import ndimage

from relunet.data.readers import read_image2d, read_mask2d, read_nifti
from relunet.errors import InputError

#: overlay colours (RGBA): the mask's contour and the voxels where the union and intersection heads differ
CONTOUR = (0, 229, 255, 255)
DISAGREEMENT = (255, 0, 200, 120)
#: pictures are shown at least this many pixels on their long side, and stored at most this many
DISPLAY_SIDE = 512
MAX_SIDE = 1024
WINDOW = (0.5, 99.5)


def picture_layers(image: Path, mask: Path, disagreement: Path | None) -> dict:
    """Data URLs of a 2D case: `image` (the picture) and `overlay` (contour and disagreement, RGBA PNG).

    `disagreement`: whether the overlay holds a disagreement map (a model without relation heads has none).
    """
    picture = _to_uint8(read_image2d(image))
    picture = picture[0] if len(picture) == 1 else np.moveaxis(picture, 0, -1)
    labels = read_mask2d(mask)
    _check_shape(mask, labels.shape, picture.shape[:2], image)
    where = np.zeros(labels.shape, bool)
    if disagreement is not None:
        where = read_mask2d(disagreement) > 0
        _check_shape(disagreement, where.shape, picture.shape[:2], image)
    height, width = labels.shape
    scale = min(max(1.0, DISPLAY_SIDE / max(height, width)), MAX_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return {
        "image": _picture_url(picture, size, jpeg=image.suffix.lower() in (".jpg", ".jpeg")),
        "overlay": _png_url(_overlay(labels, where, size)),
        "disagreement": disagreement is not None,
    }


def volume_layers(image: Path, mask: Path, disagreement: Path | None) -> dict:
    """Base64 NIfTI (gzip) of a 3D case's image, mask and disagreement, and a point worth looking at.

    `focus` is in world millimetres: per axis, the slice with the most disagreement voxels (or mask
    voxels when the heads agree everywhere; the middle when both are empty).
    """
    data, geometry = read_nifti(image)
    volume = _first_channel(data)
    labels, mask_geometry = read_nifti(mask)
    labels = _label_volume(labels)
    _check_shape(mask, labels.shape, volume.shape, image)
    layers = {
        "image": _nifti_b64(_to_uint8(volume), geometry["affine"]),
        "mask": _nifti_b64(labels, mask_geometry["affine"], label=True),
        "disagreement": None,
    }
    where = np.zeros(volume.shape, bool)
    if disagreement is not None:
        found, dis_geometry = read_nifti(disagreement)
        found = _label_volume(found)
        _check_shape(disagreement, found.shape, volume.shape, image)
        layers["disagreement"] = _nifti_b64(found, dis_geometry["affine"])
        where = found > 0
    voxel = _focus(where if where.any() else labels > 0)
    layers["focus"] = [round(float(v), 3) for v in (geometry["affine"] @ [*voxel, 1.0])[:3]]
    return layers


def _check_shape(path: Path, shape: tuple[int, ...], expected: tuple[int, ...], image: Path) -> None:
    if tuple(shape) != tuple(expected):
        raise InputError(
            f"{path}: shape {tuple(shape)} differs from its image {image} {tuple(expected)}; "
            "the image changed since `relunet predict`: predict again"
        )


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """8-bit intensities: kept when already 8-bit, else the 0.5-99.5 percentile window scaled to 0-255."""
    if values.dtype == np.uint8:
        return values
    finite = values[np.isfinite(values)]
    low, high = np.percentile(finite, WINDOW) if finite.size else (0.0, 1.0)
    scaled = (np.nan_to_num(values.astype(np.float64), nan=low) - low) / (high - low or 1.0)
    return np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def _picture_url(picture: np.ndarray, size: tuple[int, int], jpeg: bool) -> str:
    """The picture as a data URL, downscaled when larger than `size` (JPEG stays JPEG)."""
    img = Image.fromarray(picture)
    if img.width > size[0]:
        img = img.resize(size, Image.Resampling.LANCZOS)
    return _image_url(img, "JPEG" if jpeg else "PNG")


def _overlay(labels: np.ndarray, where: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`(H, W, 4)` RGBA at display `size`: disagreement filled, the contour of each label on top."""
    values, ranks = np.unique(labels, return_inverse=True)
    ranks = ranks.reshape(labels.shape).astype(np.int32) + int(values[0] != 0)  # 0: background
    ranks = _resize_nearest(ranks, size)
    where = _resize_nearest(where.astype(np.uint8), size) > 0
    width = max(1, round(max(size) / DISPLAY_SIDE * 2))
    low = ndimage.minimum_filter(ranks, size=2 * width + 1, mode="constant", cval=0)
    edge = (low != ranks) & (ranks > 0)
    out = np.zeros((*ranks.shape, 4), np.uint8)
    out[where] = DISAGREEMENT
    out[edge] = CONTOUR
    return out


def _resize_nearest(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(values).resize(size, Image.Resampling.NEAREST))


def _png_url(rgba: np.ndarray) -> str:
    return _image_url(Image.fromarray(rgba, "RGBA"), "PNG")


def _image_url(img: Image.Image, fmt: str) -> str:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        img.save(buffer, "JPEG", quality=90)
    else:
        img.save(buffer, "PNG", optimize=True)
    kind = "jpeg" if fmt == "JPEG" else "png"
    return f"data:image/{kind};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _first_channel(data: np.ndarray) -> np.ndarray:
    """`(X, Y, Z)` from a volume stored as `(X, Y)`, `(X, Y, Z)` or `(X, Y, Z, C, ...)`: the first channel."""
    if data.ndim < 3:
        return data.reshape(data.shape + (1,) * (3 - data.ndim))
    return data.reshape(data.shape[:3] + (-1,))[..., 0]


def _label_volume(labels: np.ndarray) -> np.ndarray:
    """`(X, Y, Z)` uint8 labels; `(X, Y, Z, K)` binary channels (nested regions) become their count."""
    values = np.asarray(labels)
    if values.ndim > 3:
        values = (values.reshape(values.shape[:3] + (-1,)) > 0).sum(-1)
    values = _first_channel(values)
    return np.clip(np.nan_to_num(values), 0, 255).astype(np.uint8)


def _nifti_b64(values: np.ndarray, affine: np.ndarray, label: bool = False) -> str:
    """A gzipped NIfTI-1 of uint8 `values` with `affine`, in base64; `label` marks it a label map."""
    img = nib.Nifti1Image(values.astype(np.uint8), affine)
    img.header.set_slope_inter(1, 0)
    if label:
        img.header.set_intent("label")
    packed = gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)
    return base64.b64encode(packed).decode("ascii")


def _focus(region: np.ndarray) -> list[float]:
    """Per axis, the index of the slice holding most of `region` (the middle slice when it is empty)."""
    if not region.any():
        return [(n - 1) / 2 for n in region.shape]
    axes = range(region.ndim)
    return [float(np.argmax(region.sum(axis=tuple(a for a in axes if a != k)))) for k in axes]
