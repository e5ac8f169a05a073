"""Dataset layouts, detected from the folder: MSD (dataset.json) and 2D folders (images/ + masks/).

An index lists each case's files without reading them; `load_case` reads and checks one case.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from relunet.data.readers import file_kind, read_image2d, read_mask2d, read_nifti, stem
from relunet.errors import InputError
from relunet.types import Case

CHANNEL_SUFFIX = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
MASK_LABELS = (0, 1)


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
    files = sorted(p for p in path.iterdir() if p.is_file() and file_kind(p))
    return _index_files(path, files)


def load_case(files: CaseFiles, labels: tuple[int, ...] | None, with_label: bool = True) -> Case:
    """Read one case and check it: image readable, label shape and values as declared."""
    first = files.images[0]
    fmt = file_kind(first)
    geometry: dict = {}
    if fmt == "nifti":
        arrays = []
        for path in files.images:
            data, geo = read_nifti(path)
            geometry = geometry or geo
            arrays.append(_channels_first(data, path))
        image = np.concatenate(arrays, axis=0)
    else:
        image = np.concatenate([read_image2d(p) for p in files.images], axis=0)
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


def _index_msd(root: Path) -> DatasetIndex:
    meta_path = root / "dataset.json"
    try:
        meta = json.loads(meta_path.read_text())
        entries = meta["training"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise InputError(f"{meta_path}: not an MSD dataset.json ({err}); fix or regenerate it") from err
    cases = []
    for entry in entries:
        image = root / entry["image"]
        case_id = stem(image)
        if image.is_file():
            images: tuple[Path, ...] = (image,)
        elif "channels" in entry:
            images = tuple(root / p for p in entry["channels"])
        else:
            images = tuple(sorted(image.parent.glob(f"{case_id}_[0-9][0-9][0-9][0-9].nii*")))
        if not images:
            raise InputError(f"{image}: image file not found; add it or remove it from dataset.json")
        label = root / entry["label"] if entry.get("label") else None
        cases.append(CaseFiles(case_id, images, label))
    if not cases:
        raise InputError(f"{meta_path}: lists no training cases; add cases to 'training'")
    return DatasetIndex(root, "msd", tuple(cases), _declared_labels(meta, meta_path))


def _index_folder2d(root: Path) -> DatasetIndex:
    images = sorted(p for p in (root / "images").iterdir() if file_kind(p) == "image2d")
    if not images:
        raise InputError(f"{root / 'images'}: no PNG/JPG images; add images or give another folder")
    masks = {stem(p): p for p in (root / "masks").glob("*") if file_kind(p) == "image2d"}
    cases = []
    for image in images:
        mask = masks.get(stem(image))
        if mask is None:
            raise InputError(
                f"{image}: no mask with the same name in {root / 'masks'}; "
                "add masks/" + stem(image) + ".png or remove the image"
            )
        cases.append(CaseFiles(stem(image), (image,), mask))
    return DatasetIndex(root, "folder2d", tuple(cases), MASK_LABELS)


def _index_files(root: Path, files: list[Path]) -> DatasetIndex:
    """One case per picture; NIfTI files named `case_0000`, `case_0001`, ... are one case's channels."""
    groups: dict[str, list[Path]] = {}
    for path in files:
        if not file_kind(path):
            raise InputError(f"{path}: not an image (NIfTI, PNG or JPG); give an image file")
        match = CHANNEL_SUFFIX.match(stem(path)) if file_kind(path) == "nifti" else None
        groups.setdefault(match["case"] if match else stem(path), []).append(path)
    if not groups:
        raise InputError(f"{root}: no images (NIfTI, PNG or JPG) found; give a folder with images")
    cases = tuple(CaseFiles(case, tuple(sorted(paths)), None) for case, paths in groups.items())
    return DatasetIndex(root, "files", cases, None)


def _declared_labels(meta: dict, meta_path: Path) -> tuple[int, ...] | None:
    labels = meta.get("labels")
    if not labels:
        return None
    try:
        keys = [int(k) for k in labels]  # MSD: {"0": "background", ...}
    except ValueError:
        try:
            keys = [int(v) for v in labels.values()]  # nnU-Net v2: {"background": 0, ...}
        except (TypeError, ValueError) as err:
            raise InputError(f"{meta_path}: 'labels' must map label values to names") from err
    return tuple(sorted(keys))


def _channels_first(data: np.ndarray, path: Path) -> np.ndarray:
    if data.ndim == 3 or data.ndim == 2:
        return data[None]
    if data.ndim == 4:
        return np.moveaxis(data, -1, 0)
    raise InputError(f"{path}: {data.ndim}-d image; expected a 2D, 3D or 4D (channels last) NIfTI")


def _read_label(path: Path, fmt: str | None) -> np.ndarray:
    if fmt == "nifti":
        data, _ = read_nifti(path)
        if data.ndim == 4 and data.shape[-1] == 1:
            data = data[..., 0]
    else:
        data = read_mask2d(path)
    rounded = np.rint(data)
    if not np.array_equal(rounded, data):
        raise InputError(f"{path}: mask holds non-integer values; save it as an integer label map")
    return rounded.astype(np.int64)


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
