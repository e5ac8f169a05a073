import math

import numpy as np
import pytest

from relunet.evaluation.metrics import (
    aurc,
    dice,
    dice_per_class,
    excess_aurc,
    kept_mean,
    pearson,
    risk_coverage,
    spearman,
)
from relunet.evaluation.summary import summarise


def test_dice_hand_computed():
    a = np.array([1, 1, 1, 0, 0], bool)
    b = np.array([0, 1, 1, 1, 0], bool)
    assert dice(a, b) == pytest.approx(2 * 2 / 6)


def test_dice_empty_rule():
    empty = np.zeros(4, bool)
    assert dice(empty, empty) == 1.0
    assert dice(empty, np.array([0, 1, 0, 0], bool)) == 0.0


def test_dice_per_class():
    a = np.array([[1, 0], [1, 1]], bool)
    b = np.array([[1, 0], [0, 0]], bool)
    np.testing.assert_allclose(dice_per_class(a, b), [1.0, 0.0])


def test_aurc_without_ties_is_mean_of_selective_risks():
    conf = np.array([0.9, 0.8, 0.7, 0.6])
    risk = np.array([0.0, 0.2, 0.4, 0.6])
    # selective risks at k = 1..4: 0, 0.1, 0.2, 0.3 -> mean 0.15
    assert aurc(conf, risk) == pytest.approx(0.15)
    assert excess_aurc(conf, risk) == pytest.approx(0.0)


def test_aurc_with_ties_keeps_tied_cases_together():
    conf = np.array([0.9, 0.5, 0.5, 0.1])
    risk = np.array([0.0, 0.4, 0.0, 0.8])
    coverage, selective = risk_coverage(conf, risk)
    np.testing.assert_allclose(coverage, [0.25, 0.75, 1.0])
    np.testing.assert_allclose(selective, [0.0, 0.4 / 3, 0.3])
    # widths 0.25, 0.5, 0.25
    assert aurc(conf, risk) == pytest.approx(0.25 * 0 + 0.5 * 0.4 / 3 + 0.25 * 0.3)


def test_aurc_of_constant_confidence_is_mean_risk():
    risk = np.array([0.1, 0.5, 0.3])
    assert aurc(np.ones(3), risk) == pytest.approx(0.3)


def test_bad_ranking_has_positive_excess_aurc():
    risk = np.array([0.0, 0.2, 0.4, 0.6])
    assert excess_aurc(risk, risk) > 0.1


def test_kept_mean():
    conf = np.array([0.1, 0.9, 0.5, 0.7])
    values = np.array([0.2, 1.0, 0.6, 0.8])
    assert kept_mean(conf, values, 0.5) == pytest.approx(0.9)
    assert kept_mean(conf, values, 0.1) == pytest.approx(1.0)
    assert kept_mean(conf, values, 1.0) == pytest.approx(0.65)


def test_correlations():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert math.isnan(pearson(np.ones(4), x))


def test_summary_has_the_checked_names_and_no_nan():
    rows = [{"case_id": f"c{i}", "dice_seg_a": d, "C": 0.9} for i, d in enumerate([0.5, 0.7])]
    summary = summarise(rows)
    for key in ("n_cases", "dice_seg_a_mean", "dice_seg_a_std", "pearson", "spearman", "aurc"):
        assert key in summary
    assert summary["n_cases"] == 2
    assert summary["pearson"] is None
    assert summary["dice_at_coverage_100"] == pytest.approx(0.6)


def test_failure_auroc():
    from relunet.evaluation.metrics import failure_auroc

    dice = np.array([0.9, 0.8, 0.5, 0.6])
    assert failure_auroc(np.array([0.9, 0.8, 0.2, 0.3]), dice) == pytest.approx(1.0)
    assert failure_auroc(np.array([0.2, 0.3, 0.9, 0.8]), dice) == pytest.approx(0.0)
    # of the 4 (failure, success) pairs only (0.5, 0.9) has the failure less confident
    assert failure_auroc(np.array([0.9, 0.1, 0.5, 0.95]), dice) == pytest.approx(0.25)
    assert math.isnan(failure_auroc(np.ones(3), np.array([0.9, 0.9, 0.8])))
