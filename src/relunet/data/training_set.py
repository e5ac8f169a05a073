"""Load a dataset's cases and turn them into in-memory network samples for training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from relunet.data.layouts import DatasetIndex, load_case
from relunet.data.preprocess import Preprocessor
from relunet.data.samples import pad_to, padded_shape, relative_depth, to_samples
from relunet.errors import InputError
from relunet.types import Case


@dataclass(frozen=True)
class TrainingSet:
    """All training samples of a fold, padded to one shape.

    Attributes:
        images: `(N, C, *P)` float32 normalised images.
        targets: `(N, K, *P)` uint8 multi-label targets.
        depth: `(N,)` relative depth of each sample in its volume (0.5 for pictures).
    """

    images: torch.Tensor
    targets: torch.Tensor
    depth: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def to(self, device: torch.device) -> TrainingSet:
        """The same set with its tensors on `device` (the whole set fits in memory by design)."""
        return TrainingSet(self.images.to(device), self.targets.to(device), self.depth)

    def draw_crops(self, rng: np.random.Generator, indices: np.ndarray) -> None:
        """No patches in memory: whole samples, nothing drawn (see `StreamedSet.draw_crops`)."""
        return None

    def batch(self, index: np.ndarray, corners: None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images `(M, C, *P)` and targets `(M, K, *P)` of samples `index`."""
        rows = torch.from_numpy(index)
        return self.images[rows], self.targets[rows]


def load_cases(index: DatasetIndex, with_label: bool = True) -> list[Case]:
    """Read and check every case of `index`; fails on the first bad file, before any output."""
    cases = [load_case(files, index.labels, with_label) for files in index.cases]
    check_consistent([(case.image_path, case.image.shape) for case in cases])
    return cases


def check_consistent(images: list[tuple[Path, tuple[int, ...]]]) -> None:
    """All images, each `(path, (C, *S) shape)`, must have one channel count and one number of axes."""
    first_path, first = images[0]
    for path, shape in images[1:]:
        if shape[0] != first[0] or len(shape) != len(first):
            raise InputError(
                f"{path}: {shape[0]} channel(s), {len(shape) - 1}D, but {first_path.name} has "
                f"{first[0]} channel(s), {len(first) - 1}D; all images of a dataset must match"
            )


def check_label_sets(index: DatasetIndex, cases: list[Case], label_sets: tuple[tuple[int, ...], ...]) -> None:
    """Each class of `label_sets` must name declared labels and occur in at least one mask of `cases`.

    A class whose labels no mask holds would train on empty targets only.
    """
    text = ";".join(",".join(str(v) for v in values) for values in label_sets)
    asked = sorted({v for values in label_sets for v in values})
    undeclared = [v for v in asked if index.labels is not None and v not in index.labels]
    if undeclared:
        source = index.root / ("dataset.json" if index.layout == "msd" else "masks")
        raise InputError(
            f"{source}: labels '{text}' name {undeclared[:5]}, which are not among its labels "
            f"{list(index.labels)}; choose from those or fix the declaration"
        )
    masks = [case.label for case in cases if case.label is not None]
    for values in label_sets:
        if masks and not any(np.isin(mask, values).any() for mask in masks):
            held = sorted(set().union(*(np.unique(mask).tolist() for mask in masks)) - {0})
            raise _absent(index, values, text, len(masks), f": {held}")


def check_classes_present(
    index: DatasetIndex, label_sets: tuple[tuple[int, ...], ...], present: list[tuple[bool, ...]]
) -> None:
    """Each class must occur in at least one mask; `present[i][k]`: class k occurs in case i."""
    text = ";".join(",".join(str(v) for v in values) for values in label_sets)
    for k, values in enumerate(label_sets):
        if present and not any(case[k] for case in present):
            raise _absent(index, values, text, len(present), "")


def _absent(index: DatasetIndex, values: tuple[int, ...], text: str, masks: int, held: str) -> InputError:
    return InputError(
        f"{index.root}: label {' or '.join(map(str, values))} of labels '{text}' is in none "
        f"of the {masks} masks; choose labels the masks hold{held}"
    )


def build_training_set(
    cases: list[Case], prep: Preprocessor, dims: int, slice_axis: int, size_multiple: int
) -> TrainingSet:
    """Preprocess, slice and pad all cases into one `TrainingSet`, sizes a multiple of `size_multiple`."""
    images, targets, depth = [], [], []
    for case in cases:
        case_images = to_samples(prep.image(case), dims, slice_axis)
        images.append(case_images)
        targets.append(to_samples(prep.targets(case), dims, slice_axis))
        depth.append(relative_depth(len(case_images)))
    shape = padded_shape(tuple(np.max([s.shape[2:] for s in images], axis=0)), size_multiple)
    return TrainingSet(
        images=torch.from_numpy(np.concatenate([pad_to(s, shape) for s in images])),
        targets=torch.from_numpy(np.concatenate([pad_to(t, shape) for t in targets])),
        depth=np.concatenate(depth),
    )
