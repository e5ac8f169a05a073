"""From calibration pairs (score, Dice) to a decision per case: estimated Dice, interval, review flag.

Calibration pairs are per-case confidence scores and true Dice of labelled cases the model never
trained on. Every guarantee here holds for new cases drawn from the same distribution as the
calibration cases (exchangeable with them); `shift_pvalue` warns when a batch looks otherwise.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from mapie.regression import SplitConformalRegressor
from scipy.stats import binom, ks_2samp
from sklearn.isotonic import IsotonicRegression

from relunet.errors import InputError

#: seed of the split of the calibration pairs into a fitting half and a conformalizing half
SPLIT_SEED = 0


def estimate_dice(cal_scores: np.ndarray, cal_dice: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Estimated Dice `(N,)` of new cases: a non-decreasing map of the score, fitted by isotonic regression.

    Args:
        cal_scores: `(M,)` confidence scores of the calibration cases.
        cal_dice: `(M,)` their true Dice, in [0, 1].
        scores: `(N,)` confidence scores of new cases.
    """
    cal_scores, cal_dice = _pairs(cal_scores, cal_dice)
    return _isotonic(cal_scores, cal_dice).predict(_values(scores, "scores"))


def dice_interval(
    cal_scores: np.ndarray, cal_dice: np.ndarray, scores: np.ndarray, coverage: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """Split-conformal interval `(low, high)`, each `(N,)`, holding a new Dice with probability ≥ `coverage`.

    The calibration pairs are split in two halves by a fixed seed: the isotonic map is fitted on
    one, MAPIE's `SplitConformalRegressor` takes the absolute residuals on the other. Clipped to
    [0, 1]. With too few pairs for a finite interval at this coverage (MAPIE needs the half to
    hold at least `1 / (1 - coverage)` pairs), the interval is [0, 1].

    Args:
        cal_scores: `(M,)` confidence scores of the calibration cases.
        cal_dice: `(M,)` their true Dice, in [0, 1].
        scores: `(N,)` confidence scores of new cases.
        coverage: the probability, over the calibration and the new case, that the interval holds.
    """
    cal_scores, cal_dice = _pairs(cal_scores, cal_dice)
    scores = _values(scores, "scores")
    _check_level("coverage", coverage)
    fit, conformal = _halves(len(cal_scores))
    if len(conformal) < max(1 / (1 - coverage), 1 / coverage):
        return np.zeros(len(scores)), np.ones(len(scores))
    regressor = SplitConformalRegressor(
        estimator=_isotonic(cal_scores[fit], cal_dice[fit]), confidence_level=coverage, prefit=True
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimator does not appear fitted")
        regressor.conformalize(cal_scores[conformal], cal_dice[conformal])
        _, interval = regressor.predict_interval(scores)
    return np.clip(interval[:, 0, 0], 0.0, 1.0), np.clip(interval[:, 1, 0], 0.0, 1.0)


def review_threshold(
    cal_scores: np.ndarray,
    cal_dice: np.ndarray,
    target_dice: float = 0.8,
    risk: float = 0.1,
    delta: float = 0.1,
) -> float | None:
    """The smallest score λ to accept a case at (score ≥ λ) that keeps the promise; None when none does.

    Promise (Learn-then-Test): among accepted cases, the fraction with Dice < `target_dice` is at
    most `risk`, with probability ≥ 1 - `delta` over the calibration draw. Candidates λ are the
    distinct calibration scores. For each, the null "risk among accepted > `risk`" is tested with
    the exact binomial tail of the failures among the accepted calibration cases; fixed-sequence
    testing at level `delta` walks from the most confident λ down and stops at the first null not
    rejected. The λ above the first one accepting `minimum_pairs(risk, delta)` cases are skipped:
    no null there could be rejected (where to start depends on the scores alone, not the Dice).

    Args:
        cal_scores: `(M,)` confidence scores of the calibration cases.
        cal_dice: `(M,)` their true Dice, in [0, 1].
        target_dice: a case with Dice below it is a failure.
        risk: the most failures allowed among accepted cases (α).
        delta: the probability that the promise fails (δ).

    Returns:
        λ, or None when no threshold keeps the promise (then every case goes to an expert).
    """
    cal_scores, cal_dice = _pairs(cal_scores, cal_dice)
    _check_level("risk", risk)
    _check_level("delta", delta)
    order = np.argsort(-cal_scores, kind="stable")
    ranked = cal_scores[order]
    accepted = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True)) + 1  # per distinct λ, descending
    failures = np.cumsum(cal_dice[order] < target_dice)[accepted - 1]
    start = int(np.searchsorted(accepted, minimum_pairs(risk, delta)))
    rejected = _pvalue(failures[start:], accepted[start:], risk) <= delta
    run = len(rejected) if rejected.all() else int(np.argmin(rejected))
    return float(ranked[accepted[start + run - 1] - 1]) if run else None


def flag_for_review(scores: np.ndarray, threshold: float | None) -> np.ndarray:
    """`(N,)` bool, True for a case to send to an expert: score below `threshold` or not a number.

    Every case is flagged when `threshold` is None.
    """
    scores = np.asarray(scores, dtype=float)
    return np.ones(scores.shape, dtype=bool) if threshold is None else ~(scores >= threshold)


def minimum_pairs(risk: float, delta: float) -> int:
    """The fewest calibration pairs with which a promise at (`risk`, `delta`) is possible at all.

    The smallest n for which n accepted cases without a failure reject the null "risk among
    accepted > `risk`" at level `delta`.
    """
    _check_level("risk", risk)
    _check_level("delta", delta)
    n = max(1, math.floor(math.log(delta) / math.log1p(-risk)) - 1)
    while _pvalue(0, n, risk) > delta:
        n += 1
    return n


def shift_pvalue(reference: np.ndarray, new: np.ndarray) -> float:
    """Kolmogorov–Smirnov p-value that `new` `(N,)` comes from the distribution of `reference` `(M,)`.

    A small value warns that new cases may not resemble the calibration cases, the assumption
    every promise here rests on.
    """
    return float(ks_2samp(_values(reference, "reference"), _values(new, "new")).pvalue)


def _pvalue(failures: np.ndarray | int, accepted: np.ndarray | int, risk: float) -> np.ndarray:
    """Exact binomial p-value of the null "failure rate > `risk`" given `failures` out of `accepted`."""
    return binom.cdf(failures, accepted, risk)


def _isotonic(scores: np.ndarray, dice: np.ndarray) -> IsotonicRegression:
    return IsotonicRegression(increasing=True, out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, dice)


def _halves(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the fitting half and the conformalizing half (the larger) of `n` calibration pairs."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    return order[: n // 2], order[n // 2 :]


def _pairs(cal_scores: np.ndarray, cal_dice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cal_scores, cal_dice = _values(cal_scores, "calibration scores"), _values(cal_dice, "calibration Dice")
    if len(cal_scores) != len(cal_dice):
        raise InputError(
            f"{len(cal_scores)} calibration scores but {len(cal_dice)} Dice values; give one of each per case"
        )
    if not ((cal_dice >= 0) & (cal_dice <= 1)).all():
        raise InputError("calibration Dice: values outside [0, 1]; give Dice scores")
    return cal_scores, cal_dice


def _values(values: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or not array.size or not np.isfinite(array).all():
        raise InputError(f"{name}: give a non-empty 1-D array of finite numbers (shape {array.shape})")
    return array


def _check_level(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise InputError(f"{name} {value}: give a value strictly between 0 and 1")
