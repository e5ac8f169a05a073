"""A learned quality estimate: a small regressor from a method's per-case scores to its Dice.

The features are what one prediction already gives, no ground truth: every confidence column
(`C` and the `C_<name>` scores beside it, per-class ones left out) and `predicted_fraction`,
the share of voxels predicted foreground. Scores near 1 are spread out as `-log(1 - s)` and
the fraction as `log(fraction)`, then a ridge regression (scikit-learn) maps them to Dice.
The estimate is only honest on cases that did not fit it: `cross_fitted` fits on the other
groups (cross-validation folds) and predicts each group in turn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

#: how far from 0 and 1 the transforms clip, so empty or perfect cases stay finite
EPSILON = 1e-4
#: ridge penalties tried by leave-one-out on the fitting cases
ALPHAS = (0.1, 1.0, 10.0, 100.0)


def feature_columns(columns: Sequence[str]) -> list[str]:
    """The per-case columns the estimate reads, in table order.

    `C`, `C_<score>` (not the per-class `C_class<k>`) and `predicted_fraction` where present.
    """
    return [
        c
        for c in columns
        if c == "C" or (c.startswith("C_") and not c.startswith("C_class")) or c == "predicted_fraction"
    ]


def features(rows: Sequence[dict], columns: Sequence[str]) -> np.ndarray:
    """`(N, F)` transformed features of `rows` (per-case dicts) for `columns`."""
    table = np.array([[float(row[c]) for c in columns] for row in rows], dtype=np.float64)
    table = table.reshape(len(rows), len(columns))
    out = np.empty_like(table)
    for j, column in enumerate(columns):
        values = np.clip(table[:, j], EPSILON, 1 - EPSILON)
        out[:, j] = np.log(values) if column == "predicted_fraction" else -np.log1p(-values)
    return out


def fit_quality(x: np.ndarray, dice: np.ndarray) -> Pipeline:
    """Ridge regression of Dice `(N,)` on features `(N, F)`, penalty chosen by leave-one-out."""
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS))
    return model.fit(x, dice)


def cross_fitted(rows: Sequence[dict], groups: Sequence[int], dice_column: str = "dice_seg_a") -> np.ndarray:
    """Estimated Dice `(N,)` of each row, from a model fitted on the rows of the other groups.

    `groups` gives each row's group (its cross-validation fold); a row's own group never fits
    the model that scores it. Needs at least two groups.
    """
    groups = np.asarray(groups)
    if len(set(groups.tolist())) < 2:
        raise ValueError("cross-fitting needs rows from at least two groups")
    columns = feature_columns(list(rows[0]))
    x = features(rows, columns)
    dice = np.array([float(row[dice_column]) for row in rows])
    estimate = np.empty(len(rows))
    for group in np.unique(groups):
        mine = groups == group
        estimate[mine] = fit_quality(x[~mine], dice[~mine]).predict(x[mine])
    return np.clip(estimate, 0.0, 1.0)
