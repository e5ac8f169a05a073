"""Write predicted masks in the input's own format and geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from relunet.data.readers import write_nifti_mask, write_png_mask
from relunet.types import Case


def label_map(mask: np.ndarray, label_sets: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """Turn `(K, *S)` binary masks back into label values.

    One class: {0, 1}. Disjoint classes: a `(*S)` map holding each class's first label value.
    Overlapping classes (nested regions such as BraTS WT/TC/ET): `(*S, K)` binary channels.
    """
    if len(mask) == 1:
        return mask[0].astype(np.uint8)
    values = [v for s in label_sets for v in s]
    if len(values) != len(set(values)):
        return np.moveaxis(mask.astype(np.uint8), 0, -1)
    out = np.zeros(mask.shape[1:], dtype=np.uint8)
    for k, label_values in enumerate(label_sets):
        out[mask[k]] = label_values[0]
    return out


def write_mask(case: Case, mask: np.ndarray, label_sets: tuple[tuple[int, ...], ...], out_dir: Path) -> Path:
    """Write the `(K, *S)` mask of `case` into `out_dir`; returns the file written.

    NIfTI keeps the input's affine and header; pictures become {0, 255} PNGs.
    """
    values = label_map(mask, label_sets)
    if case.fmt == "nifti":
        path = out_dir / f"{case.case_id}.nii.gz"
        write_nifti_mask(path, values, case.geometry)
    else:
        path = out_dir / f"{case.case_id}.png"
        write_png_mask(path, values)
    return path
