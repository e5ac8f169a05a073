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
from relunet.evaluation.conformal_selection import conformal_pvalues, select_cases

#: the average-case promise (conformal selection) and the high-probability one (Learn-then-Test)
EXPECTED, HIGH_PROBABILITY = "expected", "high-probability"
GUARANTEES = (EXPECTED, HIGH_PROBABILITY)


@dataclass(frozen=True)
class Promise:
    """What the review flag promises, chosen at prediction time.

    Among the cases not flagged, the fraction with Dice below `target_dice` is at most `risk`:
    on average over calibrations (`guarantee` "expected"), or with probability at least
    `1 - delta` ("high-probability"), for new cases drawn like the calibration cases; the Dice
    interval covers the true Dice with probability `coverage`.
    """

    target_dice: float = 0.8
    risk: float = 0.1
    delta: float = 0.1
    coverage: float = 0.9
    guarantee: str = EXPECTED

    def check(self) -> None:
        """Refuse values outside (0, 1) or an unknown guarantee with one line naming the option."""
        if self.guarantee not in GUARANTEES:
            raise InputError(f"--guarantee {self.guarantee}: choose {' or '.join(GUARANTEES)}")
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
        share = f"at most {self.risk:.0%} of the cases not flagged have Dice below {self.target_dice:g}"
        if self.guarantee == EXPECTED:
            return f"on average over calibrations, {share}, if the cases resemble the calibration cases"
        return f"{share}, with probability {1 - self.delta:.0%}, if the cases resemble the calibration cases"

    def minimum_pairs(self) -> int:
        """The fewest calibration pairs with which the flag can accept any case at all."""
        if self.guarantee == EXPECTED:
            return math.ceil(1 / self.risk) - 1  # the smallest conformal p-value 1 / (n + 1) reaches risk
        return minimum_pairs(self.risk, self.delta)


def check_enough_pairs(n_pairs: int, promise: Promise, where: str) -> None:
    """Refuse a calibration too small for any guarantee at this promise (flag or interval).

    The split-conformal interval holds out half the pairs and needs `1 / (1 - coverage)` of them.
    """
    needed = max(promise.minimum_pairs(), 2 * math.ceil(1 / (1 - promise.coverage)))
    if n_pairs < needed:
        loosen = "--risk / --coverage" if promise.guarantee == EXPECTED else "--risk / --delta / --coverage"
        raise InputError(
            f"{where}: {n_pairs} calibration cases cannot support a promise at --risk {promise.risk:g} "
            f"--delta {promise.delta:g} --guarantee {promise.guarantee} (at least {needed} needed); "
            f"calibrate with more labelled cases or loosen {loosen}"
        )


def decide(cal_scores: np.ndarray, cal_dice: np.ndarray, scores: np.ndarray, promise: Promise) -> dict:
    """Per new case `(N,)`: estimated Dice, interval, review flag; plus the threshold used.

    The estimate (a map fitted on all pairs) is kept inside its interval (whose map is fitted on
    half of them, as split conformal needs). With the expected guarantee the flag is conformal
    selection over this batch and `conformal_pvalue` `(N,)` is returned too; the threshold is then
    the lowest accepted score. The threshold is None when no case is accepted.
    """
    low, high = dice_interval(cal_scores, cal_dice, scores, promise.coverage)
    decided = {
        "estimated_dice": np.clip(estimate_dice(cal_scores, cal_dice, scores), low, high),
        "dice_low": low,
        "dice_high": high,
    }
    if promise.guarantee == EXPECTED:
        pvalues = conformal_pvalues(cal_scores, np.asarray(cal_dice) < promise.target_dice, scores)
        accepted = select_cases(pvalues, promise.risk)
        threshold = float(np.min(np.asarray(scores)[accepted])) if accepted.any() else None
        return {**decided, "conformal_pvalue": pvalues, "review": ~accepted, "threshold": threshold}
    threshold = review_threshold(cal_scores, cal_dice, promise.target_dice, promise.risk, promise.delta)
    return {**decided, "review": flag_for_review(scores, threshold), "threshold": threshold}
