"""Seeded k-fold splits by case, saved once as `splits.json` and reused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from relunet.atomic import write_json
from relunet.errors import InputError


def kfold(case_ids: list[str], folds: int, seed: int) -> list[dict[str, list[str]]]:
    """Split case names into `folds` test folds of near-equal size; each case is tested once."""
    if folds < 2:
        raise InputError(f"--folds {folds}: need at least 2 folds")
    if len(case_ids) < folds:
        raise InputError(f"{len(case_ids)} cases cannot make {folds} folds; use fewer folds")
    order = np.random.default_rng(seed).permutation(sorted(case_ids))
    parts = np.array_split(order, folds)
    return [{"train": sorted(set(order) - set(part)), "test": sorted(part.tolist())} for part in parts]


def read_splits(path: Path) -> list[dict[str, list[str]]]:
    """The folds saved at `path`: a list of {"train": [...], "test": [...]} case-name lists."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no splits here; give the run folder that `relunet train` wrote")
    try:
        splits = json.loads(path.read_text())["folds"]
        if not isinstance(splits, list) or not all(_is_fold(f) for f in splits):
            raise TypeError("folds must be lists of case names")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise InputError(
            f"{path}: damaged splits ({type(err).__name__}); restore it from a copy or retrain in a new --out"
        ) from err
    return splits


def fold_split(path: Path, fold: int) -> dict[str, list[str]]:
    """One fold's {"train": [...], "test": [...]} case names from the splits at `path`."""
    splits = read_splits(path)
    if not 0 <= fold < len(splits):
        raise InputError(f"{path}: no fold {fold} among {len(splits)} folds; choose another --fold")
    return splits[fold]


def _is_fold(fold: object) -> bool:
    return isinstance(fold, dict) and all(
        isinstance(fold.get(k), list) and all(isinstance(c, str) for c in fold[k]) for k in ("train", "test")
    )


def load_or_create_splits(
    path: Path, case_ids: list[str], folds: int, seed: int
) -> list[dict[str, list[str]]]:
    """Reuse the splits at `path` if present (checking they fit the data), else create them."""
    if path.is_file():
        splits = read_splits(path)
        known = {c for fold in splits for c in fold["test"]}
        if len(splits) != folds or known != set(case_ids):
            raise InputError(
                f"{path}: saved splits ({len(splits)} folds, {len(known)} cases) do not match "
                f"this dataset ({folds} folds, {len(case_ids)} cases); use a new --out folder"
            )
        return splits
    splits = kfold(case_ids, folds, seed)
    write_json(path, {"seed": seed, "folds": splits})
    return splits
