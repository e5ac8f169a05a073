"""Does the review promise hold on real out-of-fold cases, and how many cases does it send to an expert?

Pools each method's out-of-fold cases of a 5-fold cross-validation (`per_case.csv` of every fold).
The score is a method's `C` column, and `C_pairwise` as its own row where present; the truth is
`dice_seg_a`. Over seeded random calibration/test splits per calibration size (the same splits for
every method of a dataset), it calibrates with `relunet.evaluation.calibration` on the calibration
part and scores the test part: how often the promise "among accepted cases at most α have
Dice < τ" was broken, the interval's coverage, the estimated Dice's error and the fraction of cases
sent to an expert.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from relunet.evaluation.calibration import (
    dice_interval,
    estimate_dice,
    flag_for_review,
    review_threshold,
)
from relunet.evaluation.summary import read_per_case
from relunet.rundir import CrossvalFolder

FOLDS = 5
SCORE_COLUMNS = ("C", "C_pairwise")
CAL_SIZES = (50, 100, 400)
#: a calibration size is used only where at least this many cases are left to test on
MIN_TEST = 100
TARGET_DICE = 0.8
RISKS = (0.05, 0.1)
DELTA = 0.1
COVERAGE = 0.9
#: the methods of the headline table and the calibration sizes it shows
HEADLINE = ("relation_self_pair", "ensemble_5", "unet")
HEADLINE_SIZES = (100, 400)
#: the risk of the figures
FIGURE_RISK = 0.1
#: the calibration size of the figure of estimated against true Dice, and the most test cases it shows
FIGURE_SIZE = 100
FIGURE_CASES = 300


def read_scores(folder: Path) -> tuple[dict[str, dict], list[str]]:
    """Pooled out-of-fold cases of every method of one cross-validation with all its folds.

    Returns:
        `{row name: {"method", "column", "case_id", "score", "dice"}}` (arrays sorted by case id,
        one row per score column), and the names of the methods skipped for a missing fold.
    """
    rows, skipped = {}, []
    for method_dir in sorted((folder / "methods").glob("*/")):
        method = method_dir.name
        if not all(CrossvalFolder(folder).method_fold(method, k).per_case.is_file() for k in range(FOLDS)):
            skipped.append(method)
            continue
        cases = sorted(read_per_case(folder, method), key=lambda case: case["case_id"])
        columns = [c for c in SCORE_COLUMNS if c in cases[0]]
        for column in columns:
            rows[method if len(columns) == 1 else f"{method} ({column})"] = {
                "method": method,
                "column": column,
                "case_id": [case["case_id"] for case in cases],
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


def score_split(score: np.ndarray, dice: np.ndarray, cal: np.ndarray, test: np.ndarray) -> dict:
    """Calibrate on `cal`, judge on `test`: interval, estimate, and per risk the review decision.

    `score` and `dice` are `(N,)` over the pooled cases; `cal` and `test` index them.
    """
    low, high = dice_interval(score[cal], dice[cal], score[test], COVERAGE)
    estimate = estimate_dice(score[cal], dice[cal], score[test])
    return {
        "coverage": float(np.mean((low <= dice[test]) & (dice[test] <= high))),
        "interval_width": float(np.mean(high - low)),
        "mae_estimate": float(np.mean(np.abs(estimate - dice[test]))),
        "mae_constant": float(np.mean(np.abs(dice[cal].mean() - dice[test]))),
        "estimate_outside": float(np.mean((estimate < low) | (estimate > high))),
        "per_risk": [review_split(score, dice, cal, test, risk) for risk in RISKS],
    }


def review_split(score: np.ndarray, dice: np.ndarray, cal: np.ndarray, test: np.ndarray, risk: float) -> dict:
    """The review threshold at `risk` fitted on `cal`: cases flagged and whether the promise broke."""
    threshold = review_threshold(score[cal], dice[cal], TARGET_DICE, risk, DELTA)
    flagged = flag_for_review(score[test], threshold)
    return {
        "no_threshold": threshold is None,
        "flagged": float(flagged.mean()),
        "broken_test": _failure_rate(dice[test][~flagged]) > risk,
    }


def _failure_rate(accepted_dice: np.ndarray) -> float:
    """Fraction of accepted cases with Dice below the target; 0 when none is accepted."""
    return float(np.mean(accepted_dice < TARGET_DICE)) if accepted_dice.size else 0.0


def oracle_flagged(score: np.ndarray, dice: np.ndarray, risk: float) -> float:
    """The fewest cases a threshold on `score` can flag with at most `risk` failures among the rest.

    Chosen on all pooled cases with their true Dice: a reference for the calibrated thresholds.
    """
    order = np.argsort(-score, kind="stable")
    ranked = score[order]
    accepted = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True)) + 1
    rate = np.cumsum(dice[order] < TARGET_DICE)[accepted - 1] / accepted
    keeps = accepted[rate <= risk]
    return float(1.0 - (keeps.max() if keeps.size else 0) / len(score))


def check_setting(row: dict, n_cal: int, splits: int) -> dict:
    """One score at one calibration size over `splits` splits: means and rates over the splits."""
    score, dice = row["score"], row["dice"]
    results = [score_split(score, dice, *split(len(score), n_cal, i)) for i in range(splits)]
    return {
        "n_cases": len(score),
        "n_cal": n_cal,
        "n_test": len(score) - n_cal,
        "failure_rate": float(np.mean(dice < TARGET_DICE)),
        "splits": splits,
        **_means([{k: v for k, v in r.items() if k != "per_risk"} for r in results]),
        "risks": [
            {
                "risk": risk,
                **_means([r["per_risk"][k] for r in results]),
                "oracle_flagged": oracle_flagged(score, dice, risk),
            }
            for k, risk in enumerate(RISKS)
        ],
    }


def _means(results: list[dict]) -> dict[str, float]:
    """Each key's mean over the splits (a rate for booleans)."""
    return {key: float(np.mean([r[key] for r in results])) for key in results[0]}


def check_dataset(rows: dict[str, dict], splits: int) -> list[dict]:
    """Every score of one cross-validation (from `read_scores`) at every calibration size it allows."""
    return [
        {"score": name, "method": row["method"], "column": row["column"], **check_setting(row, n_cal, splits)}
        for name, row in rows.items()
        for n_cal in calibration_sizes(len(row["score"]))
    ]


def noise_bound(splits: int) -> float:
    """The largest broken-promise rate consistent with δ over `splits` splits (three standard errors)."""
    return DELTA + 3 * math.sqrt(DELTA * (1 - DELTA) / splits)


def estimate_split(row: dict) -> dict:
    """Estimated and true Dice, with intervals and review flags, of one split's test cases.

    Split 0 at calibration size `FIGURE_SIZE` of one score row (from `read_scores`); the flags at
    `FIGURE_RISK`. Returns `(M,)` arrays `dice`, `estimate`, `low`, `high` and boolean `flagged` for
    at most `FIGURE_CASES` test cases (a seeded sample), and `coverage`: the interval's coverage over
    all test cases of the split.
    """
    score, dice = row["score"], row["dice"]
    cal, test = split(len(score), FIGURE_SIZE, 0)
    low, high = dice_interval(score[cal], dice[cal], score[test], COVERAGE)
    covered = np.mean((low <= dice[test]) & (dice[test] <= high))
    shown = np.random.default_rng(0).permutation(len(test))[:FIGURE_CASES]
    test, low, high = test[shown], low[shown], high[shown]
    estimate = estimate_dice(score[cal], dice[cal], score[test])
    threshold = review_threshold(score[cal], dice[cal], TARGET_DICE, FIGURE_RISK, DELTA)
    flagged = flag_for_review(score[test], threshold)
    return {
        "dice": dice[test],
        "estimate": estimate,
        "low": low,
        "high": high,
        "flagged": flagged,
        "coverage": covered,
    }


def render(results: dict) -> str:
    """The page: assumption, command, headline, one table per dataset, figures."""
    splits = results["splits"]
    lines = [
        "# Sending cases to an expert: does the promise hold, and what does it cost?",
        "",
        f"Generated by `{results['command']}` in {results['seconds']:.0f} s "
        f"({results['cpu_seconds']:.0f} s of CPU; do not edit by hand).",
        "Numbers: `review/review_check.json`.",
        "",
        "**Assumption.** Every guarantee here holds only for new cases drawn from the same distribution",
        "as the calibration cases (exchangeable with them): same scanner and protocol, same population,",
        "same model. A batch from elsewhere may break it (`shift_pvalue` warns when a batch's scores do",
        "not look like the calibration's).",
        "",
        "**The promise.** A case is accepted (not sent to an expert) when its confidence score is at",
        "least λ. λ is chosen on the calibration cases so that, among accepted cases, at most α have",
        f"Dice below τ = {TARGET_DICE:g}, with probability at least 1 − δ = {1 - DELTA:g} over the",
        "calibration draw (Learn-then-Test: exact binomial p-values, fixed-sequence testing from the",
        "most confident λ down; `relunet.evaluation.calibration.review_threshold`). When no λ keeps the",
        "promise, every case goes to an expert.",
        "",
        "**The data.** The out-of-fold cases of each 5-fold cross-validation in `docs/crossval/`, pooled",
        "per method; truth = `dice_seg_a`, score = the method's `C` (relation_self_pair: C of the",
        "Relation U-Net; anchors: agreement of the anchored maps; unet: mean foreground probability;",
        "mcdropout (C): Dice of the union and intersection of the draws; ensemble_5, unet_flip_tta and",
        "mcdropout (C_pairwise): mean pairwise Dice). Each setting draws "
        f"{splits} seeded random calibration/test splits",
        "(the same splits for every method of a dataset): calibrate on n_cal cases, judge on the rest.",
        "",
        "**Columns.** *broken*: fraction of splits where the failure rate among accepted test cases",
        f"exceeded α; it must stay ≤ δ = {DELTA:g} up to sampling noise: ≤ {noise_bound(splits):.3f}",
        f"(δ + 3·√(δ(1−δ)/{splits})). The test part is finite, so its own sampling noise adds to this",
        "rate, most where few test cases are accepted, and the splits of one finite pool are not",
        f"independent draws, so the bound is a guide. {_worst_broken(results)}",
        "*no λ*: fraction of splits where no threshold kept the promise. *flagged*: mean fraction of",
        "test cases sent to an expert (all of them when there is no λ): the price of the promise; lower",
        "is better at the same promise. *oracle*: the fewest cases a threshold on this score could flag,",
        "chosen with the true Dice of all cases. *coverage*: of the split-conformal interval, nominal",
        f"{COVERAGE:g}. *width*: its mean width. *MAE*: mean absolute error of the estimated Dice",
        "(isotonic map of the score) against the constant predictor (the calibration cases' mean Dice).",
        "The interval is centred on an isotonic map fitted on half the calibration cases (the other half",
        "sets its width), the estimate on one fitted on all of them, so an estimate can fall outside its",
        f"interval: it did for {_largest(results, 'estimate_outside'):.1%} of test cases at most (mean over",
        "splits, worst setting). `relunet predict` keeps each estimate inside its interval (clips it);",
        "the MAE here is of the unclipped estimate.",
        "",
        *_headline(results),
    ]
    for dataset, found in results["datasets"].items():
        lines += _dataset_section(dataset, found)
    return "\n".join(lines) + "\n"


def _worst_broken(results: dict) -> str:
    """The sentence naming the setting with the highest broken-promise rate."""
    rate, where = max(
        (r["broken_test"], f"{dataset}, {s['score']}, n_cal = {s['n_cal']}, α = {r['risk']:g}")
        for dataset, found in results["datasets"].items()
        for s in found["settings"]
        for r in s["risks"]
    )
    return f"The highest rate over all settings: {rate:.1%} ({where})."


def _largest(results: dict, key: str) -> float:
    return max(s[key] for found in results["datasets"].values() for s in found["settings"])


def _headline(results: dict) -> list[str]:
    columns = [(risk, n_cal) for risk in RISKS for n_cal in HEADLINE_SIZES]
    lines = [
        f"## Headline: fraction of cases sent to an expert, δ = {DELTA:g}",
        "",
        "Mean fraction of test cases flagged over the splits (in brackets: the broken-promise rate on",
        f"the test part). *Dice < {TARGET_DICE:g}*: the failure rate over all pooled cases; where it is",
        "already at most α, accepting every case keeps the promise, and the score is not needed.",
        "",
        f"| dataset | score | Dice < {TARGET_DICE:g} | "
        + " | ".join(f"α = {risk:g}, n_cal = {n_cal}" for risk, n_cal in columns)
        + " |",
        "| --- | --- | ---: | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for dataset, found in results["datasets"].items():
        for score in HEADLINE:
            mine = {s["n_cal"]: s for s in found["settings"] if s["score"] == score}
            if mine:
                cells = [_headline_cell(mine.get(n_cal), risk) for risk, n_cal in columns]
                failures = next(iter(mine.values()))["failure_rate"]
                lines.append(f"| {dataset} | {score} | {failures:.1%} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _headline_cell(setting: dict | None, risk: float) -> str:
    if setting is None:
        return "—"
    r = at_risk(setting, risk)
    return f"{r['flagged']:.1%} ({r['broken_test']:.1%})"


def at_risk(setting: dict, risk: float) -> dict:
    """The results at `risk` of one setting of `check_dataset`."""
    return next(r for r in setting["risks"] if r["risk"] == risk)


def _dataset_section(dataset: str, found: dict) -> list[str]:
    lines = [f"## {dataset}", ""]
    if found["skipped"]:
        lines += [f"Skipped (a fold missing): {', '.join(found['skipped'])}.", ""]
    lines += [
        "| score | n_cal | n_test | α | broken | no λ | flagged | oracle | coverage | width "
        "| MAE isotonic | MAE constant |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in found["settings"]:
        for r in s["risks"]:
            cells = [
                s["score"],
                str(s["n_cal"]),
                str(s["n_test"]),
                f"{r['risk']:g}",
                *(f"{r[k]:.1%}" for k in ("broken_test", "no_threshold", "flagged")),
                f"{r['oracle_flagged']:.1%}",
                f"{s['coverage']:.3f}",
                f"{s['interval_width']:.3f}",
                f"{s['mae_estimate']:.4f}",
                f"{s['mae_constant']:.4f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for figure in found["figures"]:
        lines += [f"![{figure}](review/{figure})", ""]
    return lines
