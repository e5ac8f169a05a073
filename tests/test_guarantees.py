"""The two review promises on simulated exchangeable data: each holds over many draws, and the
expected one flags fewer cases than the high-probability one; the split-vectorised flags of the
review check equal `decide`'s."""

import math

import numpy as np
import pytest

from relunet.analysis.review_promise import (
    _multi_start_threshold,
    decide_splits,
    promise_kept,
    share_flagged,
    split_indices,
)
from relunet.errors import InputError
from relunet.evaluation.calibration import flag_for_review, review_threshold
from relunet.evaluation.conformal_selection import conformal_pvalues, select_cases
from relunet.evaluation.decision import EXPECTED, HIGH_PROBABILITY, Promise, check_enough_pairs, decide

TARGET, RISK, DELTA = 0.8, 0.1, 0.1


def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` exchangeable (score, Dice) pairs: about 20 % fail, the score ranks them imperfectly."""
    dice = np.clip(rng.beta(6, 1.2, size=n), 0, 1)
    score = dice + rng.normal(0, 0.08, size=n)
    return score, dice


def simulate(guarantee: str, n_cal: int, n_test: int, draws: int, seed: int) -> dict:
    """`draws` independent calibrations and batches, each flagged as `relunet predict` would."""
    rng = np.random.default_rng(seed)
    accepted, tested = [], []
    for _ in range(draws):
        cal_scores, cal_dice = draw(rng, n_cal)
        scores, dice = draw(rng, n_test)
        if guarantee == EXPECTED:
            accepted.append(select_cases(conformal_pvalues(cal_scores, cal_dice < TARGET, scores), RISK))
        else:
            threshold = review_threshold(cal_scores, cal_dice, TARGET, RISK, DELTA)
            accepted.append(~flag_for_review(scores, threshold))
        tested.append(dice)
    return promise_kept(np.stack(tested), np.stack(accepted), TARGET, RISK)


@pytest.mark.parametrize("n_cal", [50, 100])
def test_expected_promise_holds_on_average_over_draws(n_cal):
    kept = simulate(EXPECTED, n_cal, 200, 2000, seed=n_cal)
    assert kept["fdr"] <= RISK + 3 * kept["fdr_se"]
    assert kept["fdr"] > RISK / 2  # the promise is used, not wasted: the flag is not needlessly strict


@pytest.mark.parametrize("n_cal", [50, 100])
def test_high_probability_promise_breaks_at_most_delta_of_draws(n_cal):
    draws = 2000
    kept = simulate(HIGH_PROBABILITY, n_cal, 1000, draws, seed=n_cal + 1)
    assert kept["broken"] <= DELTA + 3 * math.sqrt(DELTA * (1 - DELTA) / draws)


def test_a_batch_of_one_is_accepted_only_with_a_p_value_at_most_risk():
    kept = simulate(EXPECTED, 100, 1, 4000, seed=3)
    assert kept["fdr"] <= RISK + 3 * kept["fdr_se"]  # P(accepted and a failure) <= risk
    cal_scores, cal_dice = draw(np.random.default_rng(3), 100)
    scores = np.linspace(0.5, 1.1, 50)
    for s in scores:
        pvalue = conformal_pvalues(cal_scores, cal_dice < TARGET, np.array([s]))
        assert select_cases(pvalue, RISK)[0] == (pvalue[0] <= RISK)


def test_expected_flags_fewer_than_the_high_probability_flag():
    expected = simulate(EXPECTED, 100, 400, 300, seed=4)["flagged"]
    high = simulate(HIGH_PROBABILITY, 100, 400, 300, seed=4)["flagged"]
    assert expected < high - 0.1


def test_one_start_is_review_threshold_and_several_starts_keep_the_promise():
    rng = np.random.default_rng(5)
    found = {1: [], 3: []}
    for _ in range(60):
        cal_scores, cal_dice = draw(rng, 100)
        single = _multi_start_threshold(cal_scores, cal_dice, RISK, DELTA, 1)
        assert single == review_threshold(cal_scores, cal_dice, TARGET, RISK, DELTA)
        for k in found:
            found[k].append(_multi_start_threshold(cal_scores, cal_dice, RISK, DELTA, k))
    scores, dice = draw(rng, 20000)
    rates = {k: [np.mean(dice[scores >= t] < TARGET) for t in v if t is not None] for k, v in found.items()}
    assert all(np.mean(np.array(r) > RISK) <= DELTA + 0.12 for r in rates.values())


@pytest.mark.parametrize("guarantee", [EXPECTED, HIGH_PROBABILITY])
def test_split_flags_equal_decide_with_ties(guarantee):
    rng = np.random.default_rng(6)
    score = np.round(rng.uniform(size=300), 2)  # many tied scores
    dice = np.clip(score + rng.normal(0, 0.15, size=300), 0, 1)
    cal, test = split_indices(300, 60, 20)
    accepted = decide_splits(score, dice, cal, test, guarantee, TARGET, RISK, DELTA)
    for i in range(20):
        decided = decide(
            score[cal[i]], dice[cal[i]], score[test[i]], Promise(TARGET, RISK, DELTA, 0.9, guarantee)
        )
        assert (~decided["review"] == accepted[i]).all()


def test_conformal_pvalues_count_tied_failures_against_the_case():
    cal_scores = np.array([0.9, 0.5, 0.5, 0.2])
    failed = np.array([False, True, True, True])
    pvalues = conformal_pvalues(cal_scores, failed, np.array([0.95, 0.5, 0.3, np.nan]))
    assert pvalues == pytest.approx([1 / 5, 3 / 5, 3 / 5, 1.0])
    assert select_cases(np.array([0.001, 0.02, 0.5]), 0.05).tolist() == [True, True, False]
    assert select_cases(np.array([]), 0.05).size == 0


def test_share_flagged_is_seeded_and_follows_the_guarantee():
    score, dice = draw(np.random.default_rng(7), 600)
    once = share_flagged(score, dice, 100, EXPECTED, splits=30)
    assert once == share_flagged(score, dice, 100, EXPECTED, splits=30)
    assert once < share_flagged(score, dice, 100, HIGH_PROBABILITY, splits=30)
    with pytest.raises(ValueError, match="guarantee"):
        share_flagged(score, dice, 100, "sometimes", splits=3)


def test_expected_promise_in_words_and_its_smallest_calibration():
    promise = Promise(guarantee=EXPECTED)
    assert promise.words() == (
        "on average over calibrations, at most 10% of the cases not flagged have Dice below 0.8, "
        "if the cases resemble the calibration cases"
    )
    assert "with probability 90%" in Promise(guarantee=HIGH_PROBABILITY).words()
    assert promise.minimum_pairs() == 9 < Promise(guarantee=HIGH_PROBABILITY).minimum_pairs()
    check_enough_pairs(15, Promise(coverage=0.8, guarantee=EXPECTED), "cal")
    with pytest.raises(InputError, match="--guarantee high-probability"):
        check_enough_pairs(15, Promise(coverage=0.8, guarantee=HIGH_PROBABILITY), "cal")
    with pytest.raises(InputError, match="--guarantee sometimes: choose expected or high-probability"):
        Promise(guarantee="sometimes").check()
