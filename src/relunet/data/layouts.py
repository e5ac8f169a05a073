"""Dataset layouts, detected from the folder: MSD (dataset.json) and 2D folders (images/ + masks/).

An index lists each case's files without reading them; `load_case` reads and checks one case.
"""

from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from relunet.data.readers import (
    as_label_map,
    file_kind,
    nifti_shape,
    read_image2d,
    read_mask2d,
    read_nifti,
    stem,
)
from relunet.errors import InputError, first_line
from relunet.types import Case

CHANNEL_SUFFIX = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
MASK_LABELS = (0, 1)
ENTRY_EXAMPLE = '{"image": "./imagesTr/case.nii.gz", "label": "./labelsTr/case.nii.gz"}'


@dataclass(frozen=True)
class CaseFiles:
    """The files of one case: one image file (3D/4D NIfTI or a picture) or one per channel."""

    case_id: str
    images: tuple[Path, ...]
    label: Path | None


@dataclass(frozen=True)
class DatasetIndex:
    """The cases of a dataset folder and the label values it declares (None if unknown)."""

    root: Path
    layout: str
    cases: tuple[CaseFiles, ...]
    labels: tuple[int, ...] | None

    @property
    def case_ids(self) -> list[str]:
        """Case names in listing order."""
        return [c.case_id for c in self.cases]

    def subset(self, case_ids: list[str]) -> DatasetIndex:
        """The same index restricted to `case_ids` (in that order)."""
        by_id = {c.case_id: c for c in self.cases}
        missing = [i for i in case_ids if i not in by_id]
        if missing:
            raise InputError(
                f"{self.root}: cases {missing[:3]} of the run's split are not in this dataset; "
                "give the dataset the run was trained on"
            )
        return DatasetIndex(self.root, self.layout, tuple(by_id[i] for i in case_ids), self.labels)


def index_dataset(root: str | Path) -> DatasetIndex:
    """Index a dataset with ground truth: an MSD folder or a 2D images/ + masks/ folder."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder; give a dataset folder (MSD or images/ + masks/)")
    if (root / "dataset.json").is_file():
        return _index_msd(root)
    if (root / "images").is_dir():
        return _index_folder2d(root)
    if (root / "imagesTr").is_dir():
        raise InputError(f"{root}: imagesTr/ but no dataset.json; add the MSD dataset.json")
    raise InputError(
        f"{root}: no dataset found; expected dataset.json + imagesTr/ + labelsTr/ (MSD) "
        "or images/ + masks/ with matching names"
    )


def index_input(path: str | Path) -> DatasetIndex:
    """Index images to segment: a dataset folder, a folder of images, or one image file."""
    path = Path(path)
    if path.is_file():
        return _index_files(path.parent, [path])
    if not path.is_dir():
        raise InputError(f"{path}: no such file or folder; give an image, a folder or a dataset")
    if (path / "dataset.json").is_file() or (path / "images").is_dir():
        return index_dataset(path)
    return _index_files(path, _listed(path))


def load_case(files: CaseFiles, labels: tuple[int, ...] | None, with_label: bool = True) -> Case:
    """Read one case and check it: image readable and finite, label shape and values as declared."""
    first = files.images[0]
    fmt = file_kind(first)
    geometry: dict = {}
    if fmt == "nifti":
        arrays = []
        for path in files.images:
            data, geo = read_nifti(path)
            _check_finite(path, data, "the scan")
            geometry = geometry or geo
            arrays.append(_channels_first(data, path))
        image = np.concatenate(arrays, axis=0)
    else:
        arrays = [read_image2d(p) for p in files.images]
        for path, data in zip(files.images, arrays, strict=True):
            _check_finite(path, data, "the picture")
        image = np.concatenate(arrays, axis=0)
    label = None
    if with_label and files.label is not None:
        label = _read_label(files.label, fmt)
        if label.shape != image.shape[1:]:
            raise InputError(
                f"{files.label}: mask shape {label.shape} does not match image shape "
                f"{image.shape[1:]} of {first.name}; give the mask of this image"
            )
        _check_label_values(files.label, label, labels)
    return Case(files.case_id, image, label, first, fmt, geometry)


def case_shape(files: CaseFiles) -> tuple[tuple[int, ...], tuple[float, ...] | None]:
    """A case's `(C, *S)` image shape and voxel size (None for pictures), from headers alone."""
    first = files.images[0]
    if file_kind(first) != "nifti":
        channels = sum(len(read_image2d(p)) for p in files.images)
        return (channels, *read_image2d(first).shape[1:]), None
    shapes = [nifti_shape(path)[0] for path in files.images]
    spatial = shapes[0][:3] if len(shapes[0]) > 2 else shapes[0]
    channels = sum(shape[3] if len(shape) == 4 else 1 for shape in shapes)
    return (channels, *spatial), nifti_shape(first)[1][: len(spatial)]


def median_spacing(index: DatasetIndex) -> tuple[float, ...]:
    """The median voxel size of the dataset's volumes per axis (nnU-Net's target spacing)."""
    zooms = [case_shape(files)[1] for files in index.cases]
    if any(z is None or len(z) != 3 for z in zooms):
        raise InputError(f"{index.root}: --spacing resamples volumes; this dataset holds pictures")
    return tuple(float(v) for v in np.median(np.array(zooms), axis=0))


def _index_msd(root: Path) -> DatasetIndex:
    meta_path = root / "dataset.json"
    meta = _read_meta(meta_path)
    entries = meta.get("training")
    if not isinstance(entries, list):
        raise InputError(
            f"{meta_path}: 'training' must be a list of entries like {ENTRY_EXAMPLE}; fix or regenerate it"
        )
    cases = [_msd_case(root, meta_path, n, entry) for n, entry in enumerate(entries, start=1)]
    if not cases:
        raise InputError(f"{meta_path}: lists no training cases; add cases to 'training'")
    _check_unique_ids(meta_path, cases)
    return DatasetIndex(root, "msd", tuple(cases), _declared_labels(meta, meta_path))


def _check_unique_ids(meta_path: Path, cases: list[CaseFiles]) -> None:
    seen: dict[str, Path] = {}
    for case in cases:
        if case.case_id in seen:
            raise InputError(
                f"{meta_path}: case '{case.case_id}' is listed twice ({seen[case.case_id]} and "
                f"{case.images[0]}); keep one entry"
            )
        seen[case.case_id] = case.images[0]


def _read_meta(meta_path: Path) -> dict:
    """The parsed dataset.json, which must be a JSON object."""
    try:
        meta = json.loads(meta_path.read_bytes())
    except (ValueError, RecursionError, OSError) as err:  # ValueError: bad JSON or bad UTF-8
        raise InputError(
            f"{meta_path}: not an MSD dataset.json ({first_line(err)}); fix or regenerate it"
        ) from err
    if not isinstance(meta, dict):
        raise InputError(f"{meta_path}: not a JSON object with 'training' and 'labels'; fix or regenerate it")
    return meta


def _msd_case(root: Path, meta_path: Path, n: int, entry: object) -> CaseFiles:
    """The files of training entry number `n` (from 1) of dataset.json."""
    if not isinstance(entry, dict) or "image" not in entry:
        raise InputError(f"{meta_path}: training entry {n} is not an object like {ENTRY_EXAMPLE}; fix it")
    image = _entry_path(root, meta_path, n, "image", entry["image"])
    case_id = stem(image)
    if os.path.lexists(image):
        images: tuple[Path, ...] = (image,)
    elif "channels" in entry:
        channels = entry["channels"]
        if not isinstance(channels, list):
            raise InputError(f"{meta_path}: training entry {n}: 'channels' must be a list of paths; fix it")
        images = tuple(_entry_path(root, meta_path, n, "channels", p) for p in channels)
    else:
        images = tuple(sorted(image.parent.glob(f"{glob.escape(case_id)}_[0-9][0-9][0-9][0-9].nii*")))
    if not images:
        raise InputError(f"{image}: image file not found; add it or remove it from dataset.json")
    label = entry.get("label")
    if label is None or label == "":
        return CaseFiles(case_id, images, None)
    return CaseFiles(case_id, images, _entry_path(root, meta_path, n, "label", label))


def _entry_path(root: Path, meta_path: Path, n: int, key: str, value: object) -> Path:
    """`root / value` for a relative image or mask path of dataset.json that stays inside `root`."""
    where = f"{meta_path}: training entry {n}: '{key}'"
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise InputError(f"{where} must be a path like './imagesTr/case.nii.gz', not {value!r:.60}; fix it")
    if Path(value).is_absolute():
        raise InputError(f"{where} {value!r:.80} is absolute; give it relative to {root}")
    if os.path.normpath(value).split(os.sep)[0] == "..":
        raise InputError(f"{where} {value!r:.80} leads out of {root}; keep the dataset's files inside it")
    path = root / value
    if not file_kind(path):
        raise InputError(f"{where} {value!r:.80} is not a NIfTI (.nii.gz, .nii) or picture (.png, .jpg) file")
    return path


def _index_folder2d(root: Path) -> DatasetIndex:
    images = _by_stem(_listed(root / "images", "image2d"))
    if not images:
        raise InputError(f"{root / 'images'}: no PNG/JPG images; add images or give another folder")
    masks = _by_stem(_listed(root / "masks", "image2d")) if (root / "masks").is_dir() else {}
    cases = []
    for case_id, image in images.items():
        mask = masks.get(case_id)
        if mask is None:
            raise InputError(
                f"{image}: no mask with the same name in {root / 'masks'}; "
                "add masks/" + case_id + ".png or remove the image"
            )
        cases.append(CaseFiles(case_id, (image,), mask))
    return DatasetIndex(root, "folder2d", tuple(cases), MASK_LABELS)


def _index_files(root: Path, files: list[Path]) -> DatasetIndex:
    """One case per picture; NIfTI files named `case_0000`, `case_0001`, ... are one case's channels."""
    groups: dict[str, list[Path]] = {}
    for path in files:
        if not file_kind(path):
            raise InputError(f"{path}: not an image (NIfTI, PNG or JPG); give an image file")
    for name, path in _by_stem(files).items():
        match = CHANNEL_SUFFIX.match(name) if file_kind(path) == "nifti" else None
        groups.setdefault(match["case"] if match else name, []).append(path)
    if not groups:
        raise InputError(f"{root}: no images (NIfTI, PNG or JPG) found; give a folder with images")
    for case, paths in groups.items():
        whole = [p for p in paths if stem(p) == case]
        if len(paths) > 1 and whole:
            raise _ambiguous(case, whole[0], next(p for p in paths if p != whole[0]))
    cases = tuple(CaseFiles(case, tuple(sorted(paths)), None) for case, paths in groups.items())
    return DatasetIndex(root, "files", cases, None)


def _listed(folder: Path, kind: str | None = None) -> list[Path]:
    """The image files of `folder` (of `kind` if given) by name, sorted.

    Hidden files (macOS `._case.png`) are skipped; so are `.DS_Store`, `Thumbs.db`, `desktop.ini`
    and `__MACOSX/`, which have no image suffix.
    """
    return sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and file_kind(p) and kind in (None, file_kind(p))
    )


def _by_stem(paths) -> dict[str, Path]:
    """Map case name -> file; two files of one name (`a.png`, `a.jpg`) are ambiguous and refused."""
    found: dict[str, Path] = {}
    for path in paths:
        name = stem(path)
        if name in found:
            raise _ambiguous(name, found[name], path)
        found[name] = path
    return found


def _ambiguous(case: str, first: Path, second: Path) -> InputError:
    return InputError(
        f"{second}: {first.name} is also case '{case}'; keep one of the two files and remove the other"
    )


def _declared_labels(meta: dict, meta_path: Path) -> tuple[int, ...] | None:
    labels = meta.get("labels")
    if not labels:
        return None
    if isinstance(labels, dict):
        for candidates in (labels.keys(), labels.values()):  # MSD {"1": "liver"}, nnU-Net v2 {"liver": 1}
            values = [_label_value(v) for v in candidates]
            if None not in values:
                return tuple(sorted(set(values)))
    raise InputError(
        f"{meta_path}: 'labels' must map label values to names, like "
        '{"0": "background", "1": "tumour"}; fix it'
    )


def _label_value(value: object) -> int | None:
    """`value` as a label value (an integer or a string of one), else None."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _channels_first(data: np.ndarray, path: Path) -> np.ndarray:
    if data.ndim == 3 or data.ndim == 2:
        return data[None]
    if data.ndim == 4:
        return np.moveaxis(data, -1, 0)
    raise InputError(f"{path}: {data.ndim}-d image; expected a 2D, 3D or 4D (channels last) NIfTI")


def _read_label(path: Path, fmt: str | None) -> np.ndarray:
    if fmt != "nifti":
        return read_mask2d(path)
    data, _ = read_nifti(path)
    if data.ndim == 4 and data.shape[-1] == 1:
        data = data[..., 0]
    _check_finite(path, data, "the mask")
    return as_label_map(path, data)


def _check_finite(path: Path, data: np.ndarray, fix: str) -> None:
    """Refuse NaN or infinite values; only float arrays can hold them."""
    if data.dtype.kind != "f":
        return
    bad = data.size - np.count_nonzero(np.isfinite(data))
    if bad:
        noun = "voxel" if file_kind(path) == "nifti" else "pixel"
        are = f"{noun} is" if bad == 1 else f"{noun}s are"
        raise InputError(f"{path}: {bad} {are} NaN or infinite; fix {fix} or remove the case")


def _check_label_values(path: Path, label: np.ndarray, labels: tuple[int, ...] | None) -> None:
    if labels is None:
        return
    extra = sorted(set(np.unique(label).tolist()) - set(labels))
    if extra:
        allowed = "{0, 255} or {0, 1}" if labels == MASK_LABELS else str(list(labels))
        raise InputError(
            f"{path}: mask values {extra[:5]} are not among the declared labels {allowed}; "
            "fix the mask or the label declaration"
        )
