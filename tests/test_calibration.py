"""relunet.evaluation.calibration on synthetic (score, Dice) pairs whose relation is known.

Synthetic model: score s ~ U(0, 1); a case fails (Dice < 0.8) with probability 0.6 (1 - s), so
the risk among cases with s ≥ λ is 0.3 (1 - λ), at most 0.1 exactly when λ ≥ 2/3.
"""

import math

import numpy as np
import pytest

from relunet.errors import InputError
from relunet.evaluation.calibration import (
    dice_interval,
    estimate_dice,
    flag_for_review,
    minimum_pairs,
    review_threshold,
    shift_pvalue,
)

TARGET = 0.8


def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` synthetic (score, Dice) pairs."""
    scores = rng.uniform(size=n)
    fails = rng.uniform(size=n) < 0.6 * (1 - scores)
    dice = np.where(fails, rng.uniform(0.3, TARGET, size=n), rng.uniform(TARGET, 1.0, size=n))
    return scores, dice


def true_risk(threshold: float) -> float:
    """Risk among accepted cases (s ≥ threshold) of the synthetic model."""
    return 0.3 * (1 - threshold)


def noise_bound(rate: float, repeats: int) -> float:
    return rate + 3 * math.sqrt(rate * (1 - rate) / repeats)


def test_estimated_dice_is_monotone_bounded_and_close_to_the_truth():
    rng = np.random.default_rng(0)
    cal_scores, cal_dice = draw(rng, 2000)
    grid = np.linspace(-0.5, 1.5, 201)
    estimate = estimate_dice(cal_scores, cal_dice, grid)
    assert estimate.shape == grid.shape
    assert (np.diff(estimate) >= 0).all() and estimate.min() >= 0 and estimate.max() <= 1
    inside = (grid >= 0.05) & (grid <= 0.95)
    p = 0.6 * (1 - grid[inside])  # mean Dice = p * 0.55 + (1 - p) * 0.9
    assert np.abs(estimate[inside] - (0.9 - 0.35 * p)).max() < 0.05


def test_interval_coverage_is_nominal_over_repeats():
    rng = np.random.default_rng(1)
    covered, widths = [], []
    for _ in range(200):
        cal_scores, cal_dice = draw(rng, 100)
        scores, dice = draw(rng, 200)
        low, high = dice_interval(cal_scores, cal_dice, scores, coverage=0.9)
        assert low.shape == high.shape == scores.shape and (low <= high).all()
        assert low.min() >= 0 and high.max() <= 1
        covered.append(np.mean((low <= dice) & (dice <= high)))
        widths.append(np.mean(high - low))
    # split conformal with 50 conformalizing pairs: expected coverage in [0.9, 0.9 + 1 / 51]
    assert 0.885 <= np.mean(covered) <= 0.935
    assert np.mean(widths) < 0.9  # informative, not [0, 1]


def test_interval_is_everything_with_too_few_pairs():
    rng = np.random.default_rng(2)
    cal_scores, cal_dice = draw(rng, 12)
    low, high = dice_interval(cal_scores, cal_dice, np.array([0.2, 0.9]), coverage=0.9)
    assert (low == 0).all() and (high == 1).all()


def test_the_promise_holds_in_at_least_one_minus_delta_of_calibration_draws():
    rng = np.random.default_rng(3)
    risk, delta, repeats = 0.1, 0.1, 200
    ltt, plug_in = [], []
    for _ in range(repeats):
        cal_scores, cal_dice = draw(rng, 400)
        ltt.append(review_threshold(cal_scores, cal_dice, TARGET, risk, delta))
        plug_in.append(_plug_in_threshold(cal_scores, cal_dice, risk))
    found = [t for t in ltt if t is not None]
    assert len(found) >= 0.6 * repeats  # the promise is within reach at n = 400 (about 70 % of draws)
    broken = np.mean([t is not None and true_risk(t) > risk for t in ltt])
    assert broken <= noise_bound(delta, repeats)
    assert np.mean(found) < 0.9  # it accepts more than the very top (optimum: λ = 2/3)
    # the harness can fail: the naive threshold (empirical risk ≤ α) breaks it about half the time
    assert np.mean([true_risk(t) > risk for t in plug_in]) > 0.3


def _plug_in_threshold(cal_scores: np.ndarray, cal_dice: np.ndarray, risk: float) -> float:
    order = np.argsort(-cal_scores)
    empirical = np.cumsum(cal_dice[order] < TARGET) / np.arange(1, len(order) + 1)
    return float(cal_scores[order][np.flatnonzero(empirical <= risk)[-1]])


def test_fixed_sequence_stops_at_the_first_null_not_rejected():
    scores = np.linspace(1, 0, 240, endpoint=False)
    dice = np.full(240, 0.9)
    dice[30:40] = 0.5  # ten failures right after the 30 most confident cases
    threshold = review_threshold(scores, dice, TARGET, risk=0.1, delta=0.1)
    # 31 accepted with one failure: P(Bin(31, 0.1) <= 1) = 0.17 > 0.1, so the scan stops there,
    # although 240 accepted with 10 failures alone would be rejected
    assert threshold == scores[29]
    flags = flag_for_review(scores, threshold)
    assert not flags[:30].any() and flags[30:].all()


def test_tied_scores_are_accepted_together():
    dice = np.full(30, 0.95)
    assert review_threshold(np.full(30, 0.5), dice) == 0.5
    scores = np.r_[np.full(21, 0.9), np.full(9, 0.4)]  # 21 < 22 needed: the tie at 0.4 joins
    assert review_threshold(scores, dice) == 0.4


def test_no_threshold_with_too_few_pairs_or_an_unreachable_risk():
    needed = minimum_pairs(0.1, 0.1)
    perfect = np.linspace(0.5, 1, needed)
    assert review_threshold(perfect, np.ones(needed)) == 0.5
    assert review_threshold(perfect[1:], np.ones(needed - 1)) is None
    rng = np.random.default_rng(4)
    scores = rng.uniform(size=400)
    failing = np.where(rng.uniform(size=400) < 0.3, 0.5, 0.9)  # 30 % failures whatever the score
    assert review_threshold(scores, failing, TARGET, risk=0.1, delta=0.1) is None
    assert flag_for_review(scores, None).all()


@pytest.mark.parametrize("risk", [0.01, 0.03, 0.05, 0.1, 0.2, 0.37])
@pytest.mark.parametrize("delta", [0.01, 0.05, 0.1, 0.3])
def test_minimum_pairs_against_brute_force(risk, delta):
    brute = next(n for n in range(1, 10_000) if (1 - risk) ** n <= delta)
    assert minimum_pairs(risk, delta) == brute


def test_flags_follow_the_threshold_and_nan_goes_to_an_expert():
    scores = np.array([0.1, 0.5, 0.7, np.nan])
    assert flag_for_review(scores, 0.5).tolist() == [True, False, False, True]


def test_shift_pvalue_small_for_a_shift_large_for_the_same_distribution():
    rng = np.random.default_rng(5)
    reference = rng.normal(size=500)
    assert shift_pvalue(reference, rng.normal(size=300)) > 0.05
    assert shift_pvalue(reference, rng.normal(0.5, 1, size=300)) < 1e-4


def test_bad_input_is_one_line():
    with pytest.raises(InputError, match="calibration scores but"):
        estimate_dice(np.ones(3), np.ones(4), np.ones(2))
    with pytest.raises(InputError, match=r"outside \[0, 1\]"):
        review_threshold(np.ones(3), np.array([0.5, 1.2, 0.9]))
    with pytest.raises(InputError, match="risk 1.5"):
        minimum_pairs(1.5, 0.1)
    with pytest.raises(InputError, match="finite"):
        dice_interval(np.ones(30), np.ones(30), np.array([np.nan]))
