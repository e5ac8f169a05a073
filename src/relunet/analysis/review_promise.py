"""How many cases must an expert look at, for which promise? Measured on real out-of-fold cases.

Pools each method's out-of-fold cases of a 5-fold cross-validation (`per_case.csv` of every fold).
The score is a method's `C` column, and `C_pairwise` as its own row where present; the truth is
`dice_seg_a`. Over seeded random calibration/test splits (the same splits for every method of a
dataset), the review flag is fitted on the calibration part, as a user with n_cal labelled cases
would, and judged on the test part: the share of test cases flagged (the price), and whether the
promise held: the realised failure rate among accepted cases, averaged over splits, for the
expected guarantee; the share of splits where it exceeded α, for the high-probability one.

The flags of all splits are computed at once (`decide_splits`, arrays `(splits, cases)`); they
equal `relunet.evaluation.decision.decide` split by split (tests check it).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from mapie.risk_control import FWERFixedSequenceTesting, control_fwer
from scipy.stats import binom, false_discovery_control

from relunet.evaluation.calibration import dice_interval, estimate_dice, minimum_pairs
from relunet.evaluation.decision import EXPECTED, GUARANTEES, Promise, decide
from relunet.evaluation.summary import read_per_case
from relunet.rundir import CrossvalFolder

FOLDS = 5
SCORE_COLUMNS = ("C", "C_pairwise")
CAL_SIZES = (50, 100, 200, 400)
#: a calibration size is used only where at least this many cases are left to test on
MIN_TEST = 100
TARGET_DICE = 0.8
#: targets per dataset: Hippocampus has almost no case below 0.8, so 0.85 tells its methods apart
TARGETS = {"hippocampus": (0.8, 0.85)}
RISKS = (0.05, 0.1)
DELTA = 0.1
COVERAGE = 0.9
SPLITS = 500
#: the interval and estimate (MAPIE per split) are checked on this many of the splits
INTERVAL_SPLITS = 50


def read_scores(folder: Path) -> tuple[dict[str, dict], list[str]]:
    """Pooled out-of-fold cases of every method of one cross-validation with all its folds.

    Returns:
        `{row name: {"method", "column", "case_id", "fold", "score", "dice"}}` (arrays sorted by
        case id, one row per score column), and the names of the methods skipped for a missing fold.
    """
    rows, skipped = {}, []
    crossval = CrossvalFolder(folder)
    for method_dir in sorted((folder / "methods").glob("*/")):
        method = method_dir.name
        if not all(crossval.method_fold(method, k).per_case.is_file() for k in range(FOLDS)):
            skipped.append(method)
            continue
        cases = sorted(read_per_case(folder, method), key=lambda case: case["case_id"])
        columns = [c for c in SCORE_COLUMNS if c in cases[0]]
        for column in columns:
            rows[method if len(columns) == 1 else f"{method} ({column})"] = {
                "method": method,
                "column": column,
                "case_id": [case["case_id"] for case in cases],
                "fold": np.array([int(case["fold"]) for case in cases]),
                "score": np.array([case[column] for case in cases]),
                "dice": np.array([case["dice_seg_a"] for case in cases]),
            }
    return rows, skipped


def calibration_sizes(n_cases: int) -> list[int]:
    """The calibration sizes that leave at least `MIN_TEST` cases to test on."""
    return [n for n in CAL_SIZES if n_cases - n >= MIN_TEST]


def split(n_cases: int, n_cal: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibration and test indices of split `index`: seeded by (index, n_cal), so equal across methods."""
    order = np.random.default_rng([index, n_cal]).permutation(n_cases)
    return order[:n_cal], order[n_cal:]


def split_indices(n_cases: int, n_cal: int, splits: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibration `(S, n_cal)` and test `(S, n_cases - n_cal)` indices of the splits 0 .. S - 1."""
    cal, test = zip(*(split(n_cases, n_cal, i) for i in range(splits)), strict=True)
    return np.stack(cal), np.stack(test)


def decide_splits(
    score: np.ndarray,
    dice: np.ndarray,
    cal: np.ndarray,
    test: np.ndarray,
    guarantee: str,
    target_dice: float = TARGET_DICE,
    risk: float = 0.1,
    delta: float = DELTA,
) -> np.ndarray:
    """`(S, T)` bool: test case accepted (not flagged), per split, by the review flag fitted on `cal`.

    `score`, `dice`: `(N,)` pooled cases; `cal` `(S, M)` and `test` `(S, T)` index them per split.
    Expected: conformal p-values and Benjamini–Hochberg over each split's test cases (SciPy's
    `false_discovery_control` along the split axis); high-probability: `review_threshold`'s
    fixed-sequence Learn-then-Test, walked on every split at once.
    """
    if guarantee not in GUARANTEES:
        raise ValueError(f"guarantee {guarantee!r}: choose {' or '.join(GUARANTEES)}")
    order = np.argsort(-score, kind="stable")
    position = np.empty(len(score), dtype=int)
    position[order] = np.arange(len(score))
    ranked = score[order]
    # the last position of each position's tie group: a threshold accepts a whole group or none of it
    group_end = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))
    group_end = group_end[np.searchsorted(group_end, np.arange(len(score)))]
    in_cal = np.zeros((len(cal), len(score)), dtype=bool)
    np.put_along_axis(in_cal, position[cal], True, axis=1)
    failed = dice[order] < target_dice
    test_at = position[test]
    if guarantee == EXPECTED:
        failures_above = np.cumsum(in_cal & failed, axis=1)[:, group_end]
        pvalues = (1.0 + np.take_along_axis(failures_above, test_at, axis=1)) / (cal.shape[1] + 1.0)
        return false_discovery_control(pvalues, method="bh", axis=1) <= risk
    lowest = _ltt_lowest_accepted(in_cal, failed, group_end, risk, delta)
    return test_at <= lowest[:, None]


def _ltt_lowest_accepted(
    in_cal: np.ndarray, failed: np.ndarray, group_end: np.ndarray, risk: float, delta: float
) -> np.ndarray:
    """`(S,)` last accepted position in score order of `review_threshold` per split; -1 when none.

    `in_cal` `(S, N)`: calibration cases in descending score order; `failed` `(N,)` in that order.
    """
    accepted = np.cumsum(in_cal, axis=1)
    failures = np.cumsum(in_cal & failed, axis=1)
    # a candidate λ: the last calibration case of its tie group
    candidate = in_cal & (accepted[:, group_end] == accepted)
    candidate &= accepted >= minimum_pairs(risk, delta)
    counts = np.arange(accepted[:, -1].max() + 1)
    rejected = (binom.cdf(counts[:, None], counts[None, :], risk) <= delta)[failures, accepted]
    stop = candidate & ~rejected
    first_stop = np.where(stop.any(axis=1), stop.argmax(axis=1), in_cal.shape[1])
    walked = candidate & (np.arange(in_cal.shape[1]) < first_stop[:, None])
    last = in_cal.shape[1] - 1 - walked[:, ::-1].argmax(axis=1)
    return np.where(walked.any(axis=1), group_end[last], -1)


def share_flagged(
    score: np.ndarray,
    dice: np.ndarray,
    n_cal: int,
    guarantee: str,
    target_dice: float = TARGET_DICE,
    risk: float = 0.1,
    delta: float = DELTA,
    splits: int = SPLITS,
) -> float:
    """Mean share of test cases flagged over `splits` seeded calibration/test splits of `n_cal` cases.

    `score`, `dice`: `(N,)` out-of-fold cases; `guarantee` "expected" or "high-probability".
    """
    cal, test = split_indices(len(score), n_cal, splits)
    accepted = decide_splits(score, dice, cal, test, guarantee, target_dice, risk, delta)
    return float(1.0 - accepted.mean())


def promise_kept(test_dice: np.ndarray, accepted: np.ndarray, target_dice: float, risk: float) -> dict:
    """What the flags of `decide_splits` cost and whether their promise held, over the splits.

    `test_dice`, `accepted`: `(S, T)`. Returns the mean share `flagged`, `fdr` (the mean over splits
    of the failure rate among accepted cases, 0 where none is accepted) and its standard error
    `fdr_se`, `broken` (share of splits
    where that rate exceeded `risk`) and `none_accepted` (share of splits that flag every case).
    """
    n_accepted = accepted.sum(axis=1)
    fdp = (accepted & (test_dice < target_dice)).sum(axis=1) / np.maximum(n_accepted, 1)
    return {
        "flagged": float(1.0 - accepted.mean()),
        "fdr": float(fdp.mean()),
        "fdr_se": float(fdp.std() / math.sqrt(len(fdp))),
        "broken": float(np.mean(fdp > risk)),
        "none_accepted": float(np.mean(n_accepted == 0)),
    }


def oracle_flagged(
    score: np.ndarray, dice: np.ndarray, risk: float, target_dice: float = TARGET_DICE
) -> float:
    """The fewest cases a threshold on `score` can flag with at most `risk` failures among the rest.

    Chosen on all pooled cases with their true Dice: a reference for the calibrated flags.
    """
    order = np.argsort(-score, kind="stable")
    ranked = score[order]
    accepted = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True)) + 1
    rate = np.cumsum(dice[order] < target_dice)[accepted - 1] / accepted
    keeps = accepted[rate <= risk]
    return float(1.0 - (keeps.max() if keeps.size else 0) / len(score))


def check_setting(row: dict, n_cal: int, splits: int, targets: tuple[float, ...] = (TARGET_DICE,)) -> dict:
    """One score at one calibration size: per target, risk and guarantee the price and the promise kept."""
    score, dice = row["score"], row["dice"]
    cal, test = split_indices(len(score), n_cal, splits)
    return {
        "n_cases": len(score),
        "n_cal": n_cal,
        "n_test": len(score) - n_cal,
        "splits": splits,
        "decisions": [
            {
                "target_dice": target,
                "risk": risk,
                "guarantee": guarantee,
                "failure_rate": float(np.mean(dice < target)),
                "oracle_flagged": oracle_flagged(score, dice, risk, target),
                **promise_kept(
                    dice[test], decide_splits(score, dice, cal, test, guarantee, target, risk), target, risk
                ),
            }
            for target in targets
            for risk in RISKS
            for guarantee in GUARANTEES
        ],
        **interval_check(score, dice, cal[:INTERVAL_SPLITS], test[:INTERVAL_SPLITS]),
    }


def interval_check(score: np.ndarray, dice: np.ndarray, cal: np.ndarray, test: np.ndarray) -> dict:
    """Coverage and width of the split-conformal Dice interval and the estimate's error, mean over splits."""
    found = []
    for c, t in zip(cal, test, strict=True):
        low, high = dice_interval(score[c], dice[c], score[t], COVERAGE)
        estimate = estimate_dice(score[c], dice[c], score[t])
        found.append(
            {
                "coverage": np.mean((low <= dice[t]) & (dice[t] <= high)),
                "interval_width": np.mean(high - low),
                "mae_estimate": np.mean(np.abs(estimate - dice[t])),
                "mae_constant": np.mean(np.abs(dice[c].mean() - dice[t])),
                "estimate_outside": np.mean((estimate < low) | (estimate > high)),
            }
        )
    return {key: float(np.mean([f[key] for f in found])) for key in found[0]}


def check_dataset(
    rows: dict[str, dict], splits: int, targets: tuple[float, ...] = (TARGET_DICE,)
) -> list[dict]:
    """Every score of one cross-validation (from `read_scores`) at every calibration size it allows."""
    return [
        {
            "score": name,
            "method": row["method"],
            "column": row["column"],
            **check_setting(row, n_cal, splits, targets),
        }
        for name, row in rows.items()
        for n_cal in calibration_sizes(len(row["score"]))
    ]


def fold_mix_check(row: dict, n_cal: int, splits: int, risk: float = 0.1) -> dict | None:
    """Does pooling five fold models' out-of-fold cases change the flag of one fold's model?

    Per fold k and split: the test cases are fold k's own cases outside its calibration; the flag is
    fitted either on `n_cal` of fold k's own cases (its model's scores: valid) or on `n_cal` drawn
    from every fold's out-of-fold cases (the pooled calibration: a mix of five models' scales).
    Returns, per guarantee and calibration, the price and the promise kept, pooled over the folds;
    None when a fold has fewer than `n_cal + MIN_TEST` cases.
    """
    folds = [np.flatnonzero(row["fold"] == k) for k in range(FOLDS)]
    if min(len(f) for f in folds) < n_cal + MIN_TEST:
        return None
    score, dice = row["score"], row["dice"]
    found = {}
    for guarantee in GUARANTEES:
        for calibration in ("own fold", "pooled"):
            accepted, tested = [], []
            for k, own in enumerate(folds):
                own_cal, test = (own[part] for part in split_indices(len(own), n_cal, splits))
                cal = own_cal if calibration == "own fold" else _pooled_cal(len(score), test, n_cal, k)
                accepted.append(decide_splits(score, dice, cal, test, guarantee, TARGET_DICE, risk))
                tested.append(dice[test])
            kept = promise_kept(np.vstack(tested), np.vstack(accepted), TARGET_DICE, risk)
            found[f"{guarantee}, {calibration}"] = kept
    return {"n_cal": n_cal, "risk": risk, "splits": splits, "fold_sizes": [len(f) for f in folds], **found}


def _pooled_cal(n_cases: int, test: np.ndarray, n_cal: int, fold: int) -> np.ndarray:
    """`(S, n_cal)`: per split, `n_cal` pooled cases outside that split's test cases (seeded by fold)."""
    rng = np.random.default_rng([fold, n_cal, n_cases])
    chosen = []
    for tested in test:
        free = np.setdiff1d(np.arange(n_cases), tested)
        chosen.append(rng.choice(free, size=n_cal, replace=False))
    return np.stack(chosen)


def noise_bound(rate: float, splits: int) -> float:
    """The largest mean over `splits` splits consistent with `rate` (three standard errors)."""
    return rate + 3 * math.sqrt(rate * (1 - rate) / splits)


def ltt_procedures(row: dict, n_cal: int, splits: int, starts: tuple[int, ...], risk: float = 0.1) -> dict:
    """Learn-then-Test with fixed-sequence testing from `starts` starting points (δ split evenly).

    MAPIE's `FWERFixedSequenceTesting` walks the exact binomial p-values of the candidate λ, most
    confident first, from the first λ that could be rejected at δ / starts; the λ accepting the most
    cases among those rejected is used. One start is `review_threshold`. Returns per number of
    starts the price and the promise kept over `splits` splits (a loop: for the comparison only).
    """
    score, dice = row["score"], row["dice"]
    cal, test = split_indices(len(score), n_cal, splits)
    found = {}
    for n_starts in starts:
        accepted = np.zeros(test.shape, dtype=bool)
        for i, (c, t) in enumerate(zip(cal, test, strict=True)):
            threshold = _multi_start_threshold(score[c], dice[c], risk, DELTA, n_starts)
            accepted[i] = threshold is not None and score[t] >= threshold
        found[str(n_starts)] = promise_kept(dice[test], accepted, TARGET_DICE, risk)
    return {"n_cal": n_cal, "risk": risk, "splits": splits, "starts": found}


def _multi_start_threshold(
    cal_scores: np.ndarray, cal_dice: np.ndarray, risk: float, delta: float, n_starts: int
) -> float | None:
    """The lowest λ rejected by multi-start fixed-sequence testing (MAPIE), or None."""
    order = np.argsort(-cal_scores, kind="stable")
    ranked = cal_scores[order]
    accepted = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True)) + 1
    failures = np.cumsum(cal_dice[order] < TARGET_DICE)[accepted - 1]
    start = int(np.searchsorted(accepted, minimum_pairs(risk, delta / n_starts)))
    if start >= len(accepted):
        return None
    pvalues = binom.cdf(failures[start:], accepted[start:], risk)
    rejected = control_fwer(pvalues, delta, FWERFixedSequenceTesting(n_starts=min(n_starts, len(pvalues))))
    return float(ranked[accepted[start + rejected.max()] - 1]) if rejected.size else None


def estimate_split(row: dict, n_cal: int, shown_cases: int) -> dict:
    """Estimated and true Dice, with intervals and default review flags, of split 0's test cases.

    `(M,)` arrays `dice`, `estimate`, `low`, `high` and boolean `flagged` for at most `shown_cases`
    test cases (a seeded sample); `coverage` is the interval's over all test cases of the split.
    """
    score, dice = row["score"], row["dice"]
    cal, test = split(len(score), n_cal, 0)
    decided = decide(score[cal], dice[cal], score[test], Promise(TARGET_DICE, 0.1, DELTA, COVERAGE))
    shown = np.random.default_rng(0).permutation(len(test))[:shown_cases]
    covered = (decided["dice_low"] <= dice[test]) & (dice[test] <= decided["dice_high"])
    return {
        "dice": dice[test][shown],
        "estimate": decided["estimated_dice"][shown],
        "low": decided["dice_low"][shown],
        "high": decided["dice_high"][shown],
        "flagged": decided["review"][shown],
        "coverage": float(covered.mean()),
    }
