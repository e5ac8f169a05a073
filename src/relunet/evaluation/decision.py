"""From calibration pairs and new scores to a decision per case: estimated Dice, interval, review flag."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from relunet.errors import InputError
from relunet.evaluation.calibration import (
    dice_interval,
    estimate_dice,
    flag_for_review,
    minimum_pairs,
    review_threshold,
)


@dataclass(frozen=True)
class Promise:
    """What the review flag promises, chosen at prediction time.

    Among the cases not flagged, the fraction with Dice below `target_dice` is at most `risk`,
    with probability at least `1 - delta`, for new cases drawn like the calibration cases; the
    Dice interval covers the true Dice with probability `coverage`.
    """

    target_dice: float = 0.8
    risk: float = 0.1
    delta: float = 0.1
    coverage: float = 0.9

    def check(self) -> None:
        """Refuse values outside (0, 1) with one line naming the option."""
        for option, value in (
            ("--target-dice", self.target_dice),
            ("--risk", self.risk),
            ("--delta", self.delta),
            ("--coverage", self.coverage),
        ):
            if not 0 < value < 1:
                raise InputError(f"{option} {value}: give a value strictly between 0 and 1")

    def words(self) -> str:
        """The promise as a sentence."""
        return (
            f"among cases not flagged, at most {self.risk:.0%} have Dice below {self.target_dice:g}, "
            f"with probability {1 - self.delta:.0%}, if the cases resemble the calibration cases"
        )


def check_enough_pairs(n_pairs: int, promise: Promise, where: str) -> None:
    """Refuse a calibration too small for any guarantee at this promise (flag or interval).

    The split-conformal interval holds out half the pairs and needs `1 / (1 - coverage)` of them.
    """
    needed = max(minimum_pairs(promise.risk, promise.delta), 2 * math.ceil(1 / (1 - promise.coverage)))
    if n_pairs < needed:
        raise InputError(
            f"{where}: {n_pairs} calibration cases cannot support a promise at --risk {promise.risk:g} "
            f"--delta {promise.delta:g} (at least {needed} needed); calibrate with more labelled cases "
            "or loosen --risk / --delta / --coverage"
        )


def decide(cal_scores: np.ndarray, cal_dice: np.ndarray, scores: np.ndarray, promise: Promise) -> dict:
    """Per new case `(N,)`: estimated Dice, interval, review flag; plus the threshold used.

    The estimate (a map fitted on all pairs) is kept inside its interval (whose map is fitted on
    half of them, as split conformal needs). The threshold is None when no threshold keeps the
    promise: then every case is flagged.
    """
    low, high = dice_interval(cal_scores, cal_dice, scores, promise.coverage)
    threshold = review_threshold(cal_scores, cal_dice, promise.target_dice, promise.risk, promise.delta)
    return {
        "estimated_dice": np.clip(estimate_dice(cal_scores, cal_dice, scores), low, high),
        "dice_low": low,
        "dice_high": high,
        "review": flag_for_review(scores, threshold),
        "threshold": threshold,
    }
