"""Read and write images and masks: NIfTI through nibabel, 2D pictures through Pillow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from PIL import Image

from relunet.atomic import atomic_path
from relunet.errors import InputError

NIFTI_SUFFIXES = (".nii.gz", ".nii")
IMAGE2D_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def file_kind(path: Path) -> str | None:
    """Return "nifti", "image2d" or None from the file name."""
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(IMAGE2D_SUFFIXES):
        return "image2d"
    return None


def stem(path: Path) -> str:
    """File name without its image suffix (`case.nii.gz` -> `case`)."""
    name = path.name
    for suffix in NIFTI_SUFFIXES + IMAGE2D_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def read_nifti(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Return the voxel array as stored (`(X, Y, Z)` or `(X, Y, Z, C)`) and its geometry."""
    _require_file(path)
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj)
    except Exception as err:  # nibabel, gzip and zlib raise many types for a damaged file
        raise InputError(
            f"{path}: cannot read this NIfTI file ({type(err).__name__}: {_short(err)}); "
            "replace it with a complete copy or remove the case"
        ) from err
    return data, {"affine": img.affine, "header": img.header}


def read_image2d(path: Path) -> np.ndarray:
    """Return a 2D picture as `(C, H, W)`, C = 1 (gray) or 3 (colour), in its stored range."""
    with _open_picture(path) as img:
        if img.mode in ("1", "L", "I", "I;16", "F"):
            arr = np.asarray(img.convert("F") if img.mode == "1" else img)[None]
        else:
            arr = np.moveaxis(np.asarray(img.convert("RGB")), -1, 0)
    return np.ascontiguousarray(arr)


def read_mask2d(path: Path) -> np.ndarray:
    """Return a 2D mask as `(H, W)` integers; {0, 255} masks become {0, 1}."""
    with _open_picture(path) as img:
        arr = np.asarray(img.convert("L") if img.mode not in ("1", "L", "I", "I;16") else img)
    arr = arr.astype(np.int64)
    if arr.max(initial=0) == 255 and set(np.unique(arr).tolist()) <= {0, 255}:
        arr = arr // 255
    return arr


def write_nifti_mask(path: Path, mask: np.ndarray, geometry: dict[str, Any]) -> None:
    """Write an integer mask with the affine and header of the image it belongs to."""
    header = geometry.get("header")
    header = header.copy() if header is not None else None
    img = nib.Nifti1Image(mask.astype(np.uint8), geometry.get("affine", np.eye(4)), header)
    img.set_data_dtype(np.uint8)
    img.header.set_slope_inter(1, 0)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))


def write_png_mask(path: Path, mask: np.ndarray) -> None:
    """Write a binary `(H, W)` mask as a {0, 255} PNG."""
    with atomic_path(path) as tmp:
        Image.fromarray((mask > 0).astype(np.uint8) * 255).save(tmp, format="PNG")


def _open_picture(path: Path) -> Image.Image:
    _require_file(path)
    try:
        img = Image.open(path)
        img.load()
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError for bad files
        raise InputError(
            f"{path}: cannot read this image ({type(err).__name__}: {_short(err)}); "
            "replace it with a complete copy or remove it"
        ) from err
    return img


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"{path}: file not found; check the path or the dataset listing")


def _short(err: Exception) -> str:
    return str(err).splitlines()[0][:120] if str(err) else "unreadable"
