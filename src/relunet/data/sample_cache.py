"""Preprocessed training samples on disk, one case at a time, keyed by the preprocessing settings.

Each case is read, checked, preprocessed and cut into samples once; its samples are stored
sample-major in `.npy` files (`(N, C, *s)` float32 images, `(N, K, *s)` uint8 targets) that are
memory-mapped when a batch is read, so reading one slice or one patch reads only its bytes. MONAI's
`PersistentDataset` stores each case as one pickle, which is read whole: a 512x512x300 CT per
slice drawn. A case's entry is complete when its manifest (`<case>.json`, written last) is there
and names the same source files (size and modification time); a resumed run reuses it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from relunet.atomic import atomic_path, write_json
from relunet.data.layouts import CaseFiles, load_case
from relunet.data.preprocess import Preprocessor
from relunet.data.samples import relative_depth, to_samples

#: foreground voxels kept per case to centre patches on (nnU-Net keeps 10,000 per class)
FOREGROUND_POINTS = 10_000
CACHE_FORMAT = 1


@dataclass(frozen=True)
class CachedCase:
    """One case's entry in the cache.

    Attributes:
        case_id: the case's name.
        images: path of the `(N, C, *s)` float32 samples.
        targets: path of the `(N, K, *s)` uint8 targets.
        foreground: path of `(F, 1 + d)` int32 rows (sample index, voxel coordinates) of foreground.
        sample_shape: `s`, the spatial shape of each sample.
        depth: `(N,)` relative depth of each sample in its volume.
        classes_present: whether each class occurs anywhere in the case.
    """

    case_id: str
    images: Path
    targets: Path
    foreground: Path
    sample_shape: tuple[int, ...]
    depth: np.ndarray
    classes_present: tuple[bool, ...]


class SampleCache:
    """The cache folder of one preprocessing setting: `<root>/<key>/`."""

    def __init__(self, root: Path, prep: Preprocessor, dims: int, slice_axis: int) -> None:
        settings = {"format": CACHE_FORMAT, "prep": repr(prep), "dims": dims, "slice_axis": slice_axis}
        key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        self.folder = Path(root) / key
        self.prep = prep
        self.dims = dims
        self.slice_axis = slice_axis

    def entry(self, files: CaseFiles, labels: tuple[int, ...] | None) -> CachedCase:
        """The case's entry, made now unless an up-to-date one is there."""
        manifest_path = self.folder / f"{files.case_id}.json"
        sources = _sources(files)
        if manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("sources") == sources:
                return self._cached(files.case_id, manifest)
        manifest = self._write(files, labels, sources)
        write_json(manifest_path, manifest)
        return self._cached(files.case_id, manifest)

    def _write(self, files: CaseFiles, labels: tuple[int, ...] | None, sources: list) -> dict:
        """Read, check and preprocess one case; write its arrays; return its manifest."""
        case = load_case(files, labels)
        images = np.ascontiguousarray(to_samples(self.prep.image(case), self.dims, self.slice_axis))
        _save(self._path(files.case_id, "image"), images)
        del images
        targets = np.ascontiguousarray(to_samples(self.prep.targets(case), self.dims, self.slice_axis))
        del case
        _save(self._path(files.case_id, "target"), targets)
        present = tuple(bool(targets[:, k].any()) for k in range(targets.shape[1]))
        points = np.argwhere(targets.any(axis=1))
        if len(points) > FOREGROUND_POINTS:
            keep = np.random.default_rng(0).choice(len(points), FOREGROUND_POINTS, replace=False)
            points = points[np.sort(keep)]
        _save(self._path(files.case_id, "foreground"), points.astype(np.int32))
        return {
            "sources": sources,
            "samples": len(targets),
            "sample_shape": list(targets.shape[2:]),
            "classes_present": list(present),
        }

    def _cached(self, case_id: str, manifest: dict) -> CachedCase:
        return CachedCase(
            case_id,
            self._path(case_id, "image"),
            self._path(case_id, "target"),
            self._path(case_id, "foreground"),
            tuple(manifest["sample_shape"]),
            relative_depth(manifest["samples"]),
            tuple(manifest["classes_present"]),
        )

    def _path(self, case_id: str, what: str) -> Path:
        return self.folder / f"{case_id}.{what}.npy"


def _sources(files: CaseFiles) -> list[list]:
    """Each source file of the case with its size and modification time, to tell a stale entry."""
    paths = [*files.images, *([files.label] if files.label else [])]
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.save(handle, array)
