"""Pure metric functions over arrays.

Empty-mask rule: the Dice of two empty masks is 1 (both agree there is nothing); the Dice of
an empty and a non-empty mask is 0. The same rule holds for the confidence C.
The correlations and the AUROC import `scipy.stats` when called: it is slow to import, and the
commands that only read or check files need none of it.
"""

from __future__ import annotations

import math

import numpy as np


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice `2|a ∩ b| / (|a| + |b|)` of two boolean masks of the same shape; 1 if both are empty."""
    a = a.astype(bool, copy=False)
    b = b.astype(bool, copy=False)
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(a, b).sum()) / total


def dice_per_class(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dice of each class of two `(K, *S)` masks, shape `(K,)`."""
    return np.array([dice(x, y) for x, y in zip(a, b, strict=True)])


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when either input is constant or has fewer than 2 values."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    from scipy import stats

    return float(stats.pearsonr(x, y).statistic)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (ties get average ranks); NaN when either input is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    from scipy import stats

    return float(stats.spearmanr(x, y).statistic)


def risk_coverage(confidence: np.ndarray, risk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Risk–coverage curve: keep cases from the most confident down, one point per distinct confidence.

    Cases with tied confidence are kept or dropped together, so each point sits at the end of a
    group of ties. Returns `(coverage, selective_risk)`, coverage increasing to 1, where
    selective risk is the mean risk of the kept cases.
    """
    confidence, risk = np.asarray(confidence, float), np.asarray(risk, float)
    order = np.argsort(-confidence, kind="stable")
    conf_sorted, cum_risk = confidence[order], np.cumsum(risk[order])
    ends = np.flatnonzero(np.append(np.diff(conf_sorted) != 0, True))
    kept = ends + 1
    return kept / len(risk), cum_risk[ends] / kept


def aurc(confidence: np.ndarray, risk: np.ndarray) -> float:
    """Area under the risk–coverage curve (lower is better).

    The curve is a step function: each group of tied confidences spans its share of coverage
    at the selective risk reached once the whole group is kept. Without ties this is the mean
    over k = 1..n of the mean risk of the k most confident cases (Geifman et al., 2019).
    """
    coverage, selective = risk_coverage(confidence, risk)
    widths = np.diff(np.concatenate([[0.0], coverage]))
    return float(np.sum(widths * selective))


def excess_aurc(confidence: np.ndarray, risk: np.ndarray) -> float:
    """AURC minus the AURC of the ideal ranking (by ascending risk)."""
    risk = np.asarray(risk, float)
    return aurc(confidence, risk) - aurc(-risk, risk)


def kept_mean(confidence: np.ndarray, values: np.ndarray, fraction: float) -> float:
    """Mean of `values` over the `ceil(fraction * n)` most confident cases (ties in input order)."""
    confidence, values = np.asarray(confidence, float), np.asarray(values, float)
    keep = max(1, math.ceil(round(fraction * len(values), 9)))
    order = np.argsort(-confidence, kind="stable")
    return float(values[order[:keep]].mean())


def failure_auroc(confidence: np.ndarray, dice: np.ndarray, threshold: float = 0.7) -> float:
    """AUROC of low confidence detecting failures (Dice below `threshold`); NaN without both classes.

    Ties count one half (Mann–Whitney U).
    """
    confidence, dice = np.asarray(confidence, float), np.asarray(dice, float)
    failed = dice < threshold
    if failed.all() or not failed.any():
        return math.nan
    from scipy import stats

    u = stats.mannwhitneyu(-confidence[failed], -confidence[~failed], alternative="two-sided").statistic
    return float(u / (failed.sum() * (~failed).sum()))
