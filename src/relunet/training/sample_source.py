"""Where a fold's training samples come from: one tensor in memory, or the disk cache batch by batch.

`plan_training_set` decides from the images' headers alone, before any voxel is read, and refuses
in one line a setting that would not fit in memory (`relunet.memory_estimate`); `StreamedSource`
then fills the disk cache a case at a time and hands the loop a `StreamedSet`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from relunet.config import RunConfig
from relunet.data.layouts import DatasetIndex, case_shape
from relunet.data.preprocess import Preprocessor
from relunet.data.sample_cache import CachedCase, SampleCache
from relunet.data.samples import padded_shape
from relunet.data.streamed_set import StreamedSet
from relunet.data.training_set import check_classes_present, check_consistent
from relunet.errors import InputError
from relunet.memory_estimate import (
    available_bytes,
    check_fits,
    in_memory_set_bytes,
    preprocess_bytes,
    shape_text,
    training_step_bytes,
)

#: "auto" keeps the set in memory while it needs at most this share of the available memory
IN_MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class SetPlan:
    """How a fold's training set is held.

    Attributes:
        where: "memory" (`TrainingSet`) or "disk" (`StreamedSet` over the cache).
        case_shapes: `(C, *S)` of every case, from the headers.
    """

    where: str
    case_shapes: list[tuple[int, ...]]


def plan_training_set(config: RunConfig, index: DatasetIndex, multiple: int) -> SetPlan:
    """Choose memory or disk as `config.train.cache` says, and check the choice fits in memory.

    Raises `InputError` (one line: how much, and which option lowers it) where it would not fit.
    """
    data, train = config.data, config.train
    headers = [case_shape(files) for files in index.cases]
    shapes = [shape for shape, _ in headers]
    check_consistent([(files.images[0], shape) for files, shape in zip(index.cases, shapes, strict=True)])
    prep = Preprocessor.of(data)
    shapes = [(s[0], *prep.shape_in_network(s[1:], zooms)) for s, zooms in headers]
    samples = [_sample_shape(s[1:], data.dims, data.slice_axis) for s in shapes]
    padded = padded_shape(tuple(np.max([shape for shape, _ in samples], axis=0)), multiple)
    step_shape = data.patch_size or padded
    step = training_step_bytes(config.model, step_shape, train.batch_size)
    in_memory = in_memory_set_bytes(shapes, [n for _, n in samples], padded, config.model.num_classes)
    where = train.cache
    if where == "auto":
        fits = in_memory + step <= IN_MEMORY_SHARE * available_bytes()
        where = "memory" if data.patch_size is None and fits else "disk"
    if where == "memory" and data.patch_size is not None:
        raise InputError("--patch-size cuts patches from the disk cache; use --cache disk or auto")
    what = f"training on {train.batch_size} samples of {shape_text(step_shape)} per step"
    remedy = _step_remedy(config, multiple)
    if where == "memory":
        check_fits(
            in_memory + step,
            f"{what}, with the {len(shapes)} cases in memory (--cache memory)",
            "use --cache disk, or " + remedy,
        )
    else:
        check_fits(max(step, preprocess_bytes(shapes)), what, remedy)
    return SetPlan(where, shapes)


class StreamedSource:
    """The disk cache of a run's preprocessing setting, filled one case at a time.

    `fill` caches every case of the dataset (and checks, as loading them would, that each class
    occurs in some mask); `training_set` serves a fold's training cases from it.
    """

    def __init__(self, cache_root: Path, config: RunConfig) -> None:
        data = config.data
        self.cache = SampleCache(cache_root, Preprocessor.of(data), data.dims, data.slice_axis)
        self.config = config
        self.entries: dict[str, CachedCase] = {}

    def fill(self, index: DatasetIndex) -> None:
        """Cache every case of `index`; on bad input, remove the folders this call created."""
        folder = self.cache.folder
        created = [path for path in (folder.parent.parent, folder.parent, folder) if not path.exists()]
        try:
            for files in index.cases:
                self.entries[files.case_id] = self.cache.entry(files, index.labels)
            present = [entry.classes_present for entry in self.entries.values()]
            check_classes_present(index, self.config.data.label_sets, present)
        except InputError:
            if created:
                shutil.rmtree(created[0], ignore_errors=True)
            raise

    def training_set(self, case_ids: list[str], multiple: int) -> StreamedSet:
        """The samples of `case_ids` (in dataset order), padded as the in-memory set, or patched."""
        cases = [self.entries[i] for i in case_ids]
        patch = self.config.data.patch_size
        if patch is not None:
            return StreamedSet(cases, patch, patch=True)
        shape = padded_shape(tuple(np.max([c.sample_shape for c in cases], axis=0)), multiple)
        return StreamedSet(cases, shape, patch=False)


def _sample_shape(spatial: tuple[int, ...], dims: int, slice_axis: int) -> tuple[tuple[int, ...], int]:
    """The spatial shape of a case's samples and their count (slices of a volume for `dims` 2)."""
    if len(spatial) == dims:
        return tuple(spatial), 1
    return tuple(s for a, s in enumerate(spatial) if a != slice_axis), spatial[slice_axis]


def _step_remedy(config: RunConfig, multiple: int) -> str:
    """The options that lower a training step's memory, for this setting."""
    data = config.data
    side = max(2 * multiple, 96 // multiple * multiple if data.dims == 3 else 256 // multiple * multiple)
    patch = ",".join([str(side)] * data.dims)
    options = [f"lower --batch-size (now {config.train.batch_size})"]
    if data.patch_size is None:
        options.append(f"use --patch-size {patch}")
    else:
        smaller = ",".join(str(max(2 * multiple, s // 2 // multiple * multiple)) for s in data.patch_size)
        options.append(f"use a smaller --patch-size, e.g. {smaller}")
    if data.dims == 3:
        options.append("use --dims 2")
    return " or ".join(options)
