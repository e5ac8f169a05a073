"""Read and write images and masks: NIfTI through nibabel, 2D pictures through Pillow."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from PIL import ExifTags, Image, ImageOps

from relunet.atomic import atomic_path
from relunet.errors import InputError, first_line

NIFTI_SUFFIXES = (".nii.gz", ".nii")
IMAGE2D_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
PICTURE_FORMATS = ("PNG", "JPEG", "BMP", "TIFF")  # what Pillow may read a picture as (JPEG includes MPO)
LABEL_LIMIT = 2**31  # no label map holds values this large
DEFLATE_MAX_RATIO = 1032  # gzip never packs more than this many bytes into one


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
    """Return the voxel array as stored (`(X, Y, Z)` or `(X, Y, Z, C)`) and its geometry.

    The size the header declares is checked against the file before any voxel is read.
    """
    _require_file(path)
    try:
        with _quiet_nibabel():
            img = nib.load(str(path))
        header = img.header
        shape, dtype, offset = header.get_data_shape(), header.get_data_dtype(), header.get_data_offset()
    except Exception as err:  # nibabel, gzip and zlib raise many types for a damaged file
        raise _unreadable_nifti(path, err) from err
    _check_declared_size(path, shape, dtype, offset)
    try:
        with _quiet_nibabel():
            data = np.asarray(img.dataobj)
    except Exception as err:
        raise _unreadable_nifti(path, err) from err
    _check_voxel_type(path, data)
    return data, {"affine": img.affine, "header": header}


def nifti_shape(path: Path) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The voxel array shape (`(X, Y, Z)` or `(X, Y, Z, C)`) and voxel size a header declares."""
    _require_file(path)
    try:
        with _quiet_nibabel():
            header = nib.load(str(path)).header
            return tuple(int(n) for n in header.get_data_shape()), tuple(float(z) for z in header.get_zooms())
    except Exception as err:  # nibabel, gzip and zlib raise many types for a damaged file
        raise _unreadable_nifti(path, err) from err


def read_image2d(path: Path) -> np.ndarray:
    """Return a 2D picture as `(C, H, W)`, C = 1 (gray) or 3 (colour), in its stored range.

    Alpha is dropped; a palette picture is looked up, and is gray when its colours are.
    """
    with _open_picture(path) as img:
        arr = _converted(path, img, _picture_array)
    return np.ascontiguousarray(arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0))


def read_mask2d(path: Path) -> np.ndarray:
    """Return a 2D mask as `(H, W)` integers; {0, 255} masks become {0, 1}.

    A palette mask gives its palette indices; a colour mask must be gray (equal channels).
    """
    with _open_picture(path) as img:
        arr = _converted(path, img, _mask_array)
    if arr.ndim == 3:
        if not (arr == arr[..., :1]).all():
            raise InputError(
                f"{path}: colour mask (its red, green and blue differ); "
                "save it as a gray or palette PNG with one value per label"
            )
        arr = arr[..., 0]
    arr = as_label_map(path, arr)
    if arr.max(initial=0) == 255 and set(np.unique(arr).tolist()) <= {0, 255}:
        arr = arr // 255
    return arr


def as_label_map(path: Path, data: np.ndarray) -> np.ndarray:
    """`data` as int64 labels; non-integer, NaN, infinite or huge (beyond 2**31) values are refused."""
    rounded = np.rint(data) if data.dtype.kind == "f" else data
    if not np.array_equal(rounded, data) or np.abs(rounded).max(initial=0) >= LABEL_LIMIT:
        raise InputError(
            f"{path}: mask holds non-integer, NaN or huge values; save it as an integer label map"
        )
    return rounded.astype(np.int64)


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


def _unreadable_nifti(path: Path, err: Exception) -> InputError:
    return InputError(
        f"{path}: cannot read this NIfTI file ({type(err).__name__}: {first_line(err)}); "
        "replace it with a complete copy or remove the case"
    )


def _check_declared_size(path: Path, shape: tuple[int, ...], dtype: np.dtype, offset: int) -> None:
    """Refuse a header that declares no voxels, or more voxel bytes than the file can hold.

    Checked before reading, so that a damaged header never makes a giant allocation.
    """
    if any(int(n) <= 0 for n in shape):
        raise InputError(
            f"{path}: the header declares shape {shape}, no voxels; replace it or remove the case"
        )
    declared = math.prod(int(n) for n in shape) * dtype.itemsize
    size = path.stat().st_size
    room = DEFLATE_MAX_RATIO * size if path.name.lower().endswith(".gz") else size - offset
    if declared > room:
        raise InputError(
            f"{path}: the header declares {shape} voxels of {dtype} ({declared:,} bytes), more than "
            f"this {size:,}-byte file holds; the file is truncated or damaged, replace it"
        )


@contextmanager
def _quiet_nibabel() -> Iterator[None]:
    """Silence what nibabel says of a damaged header (logged fixes, warnings, float overflow).

    The one-line error, or the non-finite voxel check, says what matters.
    """
    logger = nib.imageglobals.logger
    disabled, logger.disabled = logger.disabled, True
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.disabled = disabled


def _check_voxel_type(path: Path, data: np.ndarray) -> None:
    if data.dtype.kind not in "biuf":
        raise InputError(
            f"{path}: voxel type {data.dtype} is not a real number; save the image as integers or floats"
        )


def _picture_array(img: Image.Image) -> np.ndarray:
    """`(H, W)` for a gray picture, `(H, W, 3)` for a colour one."""
    if img.mode in ("P", "PA"):
        rgb = np.asarray(img.convert("RGBA"))[..., :3]
        return rgb[..., 0] if (rgb == rgb[..., :1]).all() else rgb
    if img.mode in ("1", "LA"):
        return np.asarray(img.convert("L"))
    if len(img.getbands()) == 1:
        return np.asarray(img)
    return np.asarray(img.convert("RGB"))


def _mask_array(img: Image.Image) -> np.ndarray:
    """`(H, W)` values (palette indices for a palette mask), or `(H, W, 3)` for a colour mask."""
    if img.mode in ("P", "PA", "LA"):
        return np.asarray(img.getchannel(0))
    if len(img.getbands()) == 1:
        return np.asarray(img)
    return np.asarray(img.convert("RGB"))


def _converted(path: Path, img: Image.Image, convert) -> np.ndarray:
    try:
        return convert(img)
    except (ValueError, OSError) as err:  # a mode Pillow cannot convert
        raise InputError(
            f"{path}: cannot convert this {img.mode} picture ({first_line(err)}); save it as gray or RGB"
        ) from err


def _open_picture(path: Path) -> Image.Image:
    _require_file(path)
    img = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below instead
            img = Image.open(path, formats=PICTURE_FORMATS)
        if Image.MAX_IMAGE_PIXELS and img.width * img.height > Image.MAX_IMAGE_PIXELS:
            raise _too_many_pixels(path, f"{img.width} x {img.height}")
        img.load()
        img = _upright(img)
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError for bad files
        if img is not None:
            img.close()
        if isinstance(err, InputError):
            raise
        if isinstance(err, Image.DecompressionBombError):
            raise _too_many_pixels(path, first_line(err)) from err
        raise InputError(
            f"{path}: cannot read this image ({type(err).__name__}: {first_line(err)}); "
            "replace it with a complete copy or remove it"
        ) from err
    return img


def _upright(img: Image.Image) -> Image.Image:
    """The picture as a viewer shows it: turned by its EXIF orientation tag, if it has one.

    Cameras store a turned photo unrotated with a tag; the expert drew the mask on the turned view.
    """
    if img.getexif().get(ExifTags.Base.Orientation, 1) == 1:
        return img
    with img:
        return ImageOps.exif_transpose(img)


def _too_many_pixels(path: Path, detail: str) -> InputError:
    return InputError(
        f"{path}: too many pixels ({detail}); downscale the picture to at most {Image.MAX_IMAGE_PIXELS:,}"
    )


def _require_file(path: Path) -> None:
    """Refuse, in one line each, a missing, broken-link, folder or empty path."""
    if path.is_symlink() and not path.exists():
        raise InputError(f"{path}: broken link to {path.readlink()}; fix the link or remove it")
    if path.is_dir():
        raise InputError(f"{path}: a folder, not an image file; rename or remove it")
    if not path.is_file():
        raise InputError(f"{path}: file not found; check the path or the dataset listing")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes); replace it with a complete copy or remove it")
