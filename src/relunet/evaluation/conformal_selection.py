"""The expected (average-case) promise: conformal selection with Benjamini–Hochberg over a batch.

Jin & Candès, "Selection by prediction with conformal p-values" (JMLR 2023). A new case is a
failure when its Dice is below the target. Its conformal p-value counts the calibration failures
scored at least as high as it: a case scored above almost every calibration failure gets a small
p-value. Benjamini–Hochberg at level `risk` over the batch then accepts the cases it rejects the
null "this case is a failure" for; the others are flagged. Promise: on average over calibrations
(and batches), the fraction of failures among accepted cases is at most `risk`, for cases
exchangeable with the calibration cases.

Ties: a calibration failure scored exactly as high as the new case counts against it (the
deterministic, conservative p-value of Jin & Candès, eq. 7 without its random tie-break). The
decisions are then reproducible and still valid; with continuous scores nothing is lost.
A batch of one: Benjamini–Hochberg is the single test p ≤ `risk`, and the promise reads "the
chance that the case is accepted and fails is at most `risk`".

BH's adjusted p-values come from SciPy (`scipy.stats.false_discovery_control`); the conformal
p-values are the few lines below, as no maintained library computes them (MAPIE 1.6 has
conformal regression, classification and risk control, not selection).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import false_discovery_control


def conformal_pvalues(cal_scores: np.ndarray, cal_failed: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Conformal p-value `(N,)` of each new case for the null "this case is a failure".

    `(1 + #{calibration failures with score ≥ s}) / (M + 1)` for a new case of score `s`; a new
    score that is not a number gets 1 (never accepted).

    Args:
        cal_scores: `(M,)` confidence scores of the calibration cases (higher: more confident).
        cal_failed: `(M,)` bool, True where the calibration case's Dice is below the target.
        scores: `(N,)` confidence scores of new cases.
    """
    failed_scores = np.sort(np.asarray(cal_scores, dtype=float)[np.asarray(cal_failed, dtype=bool)])
    scores = np.asarray(scores, dtype=float)
    above = len(failed_scores) - np.searchsorted(failed_scores, scores, side="left")
    pvalues = (1.0 + above) / (len(cal_scores) + 1.0)
    return np.where(np.isnan(scores), 1.0, pvalues)


def select_cases(pvalues: np.ndarray, risk: float) -> np.ndarray:
    """`(N,)` bool, True for a case accepted by Benjamini–Hochberg at level `risk` over the batch."""
    pvalues = np.asarray(pvalues, dtype=float)
    if not pvalues.size:
        return np.zeros(0, dtype=bool)
    return false_discovery_control(pvalues, method="bh") <= risk
