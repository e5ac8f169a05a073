"""Which per-case score ranks a method's cases best: every score column and the learned estimate.

For each method, every confidence column of its per-case table (`C`, `C_<score>`) and the
cross-fitted learned estimate (`relunet.evaluation.quality`, fitted on the other folds' cases)
is scored against the Dice of `seg_a`: Spearman, Pearson, e-AURC (risk = 1 - Dice) pooled over
all cases, the Spearman and e-AURC of each fold, and optionally the share of cases the review
flag sends to an expert at the review check's guarantee (`review_promise`). `by_map` holds one
score against the Dice of each map the Relation U-Net gives (`seg_a`, `seg_b`, union,
intersection, (s1+s2)/2): which segmentation the score ranks best, and what that map's Dice is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from relunet.analysis.review_promise import share_flagged
from relunet.evaluation.decision import HIGH_PROBABILITY
from relunet.evaluation.metrics import excess_aurc, pearson, spearman
from relunet.evaluation.quality import cross_fitted, feature_columns

#: the name of the learned estimate in the tables
LEARNED = "learned"
#: the Relation U-Net's maps that carry a Dice column in its per-case tables: (column, name)
MAPS = (
    ("dice_seg_a", "seg_a"),
    ("dice_seg_b", "seg_b"),
    ("dice_union", "union"),
    ("dice_inter", "intersection"),
    ("dice_s1s2", "(s1+s2)/2"),
)


def score_columns(rows: Sequence[dict]) -> list[str]:
    """The confidence columns of per-case `rows` (`C`, `C_<score>`), without the fraction."""
    return [c for c in feature_columns(list(rows[0])) if c != "predicted_fraction"]


def method_scores(
    rows: Sequence[dict], folds: Sequence[int], dice_column: str = "dice_seg_a"
) -> dict[str, np.ndarray]:
    """Each score column of `rows`, and the learned estimate cross-fitted over `folds`; `(N,)` each.

    The estimate learns `dice_column`, the Dice the scores are held against.
    """
    scores = {c: np.array([float(r[c]) for r in rows]) for c in score_columns(rows)}
    scores[LEARNED] = cross_fitted(rows, folds, dice_column)
    return scores


#: the review check's setting for the share of cases flagged: calibration cases, risk
REVIEW_CAL, REVIEW_RISK = 100, 0.1


def compare(
    rows_by_method: dict[str, Sequence[dict]],
    folds_by_method: dict[str, Sequence[int]],
    review_splits: int = 0,
    dice_by_method: dict[str, str] | None = None,
) -> list[dict]:
    """One entry per method and score: pooled `spearman`, `pearson`, `eaurc`, their per-fold values.

    `rows_by_method` holds per-case dicts with the Dice column named in `dice_by_method`
    (default `dice_seg_a`); `folds_by_method` each row's fold. With `review_splits`, also
    `flagged`: the mean share of test cases the review flag sends to an expert over that many
    calibration/test splits (`flagged_share`).
    """
    entries = []
    for method, rows in rows_by_method.items():
        folds = np.asarray(folds_by_method[method])
        column = (dice_by_method or {}).get(method, "dice_seg_a")
        dice = np.array([float(r[column]) for r in rows])
        for score, values in method_scores(rows, folds, column).items():
            by_fold = [(int(k), folds == k) for k in np.unique(folds)]
            entry = {
                "method": method,
                "dice": column,
                "score": score,
                "n_cases": len(rows),
                "spearman": spearman(values, dice),
                "pearson": pearson(values, dice),
                "eaurc": excess_aurc(values, 1.0 - dice),
                "spearman_by_fold": {k: spearman(values[m], dice[m]) for k, m in by_fold},
                "eaurc_by_fold": {k: excess_aurc(values[m], 1.0 - dice[m]) for k, m in by_fold},
            }
            if review_splits:
                entry["flagged"] = flagged_share(values, dice, review_splits)
            entries.append(entry)
    return entries


def flagged_share(score: np.ndarray, dice: np.ndarray, splits: int) -> float:
    """Mean share of test cases flagged for review over `splits` seeded calibration/test splits.

    `REVIEW_CAL` calibration cases, risk `REVIEW_RISK`, the review check's target Dice and δ.
    """
    return share_flagged(score, dice, REVIEW_CAL, HIGH_PROBABILITY, risk=REVIEW_RISK, splits=splits)


def fold_wins(entries: Sequence[dict], mine: tuple[str, str], rival: tuple[str, str]) -> dict[str, int]:
    """On how many shared folds `mine` (method, score) beats `rival`: higher Spearman, lower e-AURC."""
    find = {(e["method"], e["score"]): e for e in entries}
    a, b = find[mine], find[rival]
    folds = sorted(set(a["spearman_by_fold"]) & set(b["spearman_by_fold"]))
    return {
        "folds": len(folds),
        "spearman": sum(a["spearman_by_fold"][k] > b["spearman_by_fold"][k] for k in folds),
        "eaurc": sum(a["eaurc_by_fold"][k] < b["eaurc_by_fold"][k] for k in folds),
    }


def by_map(rows: Sequence[dict], folds: Sequence[int], score: str = "C") -> list[dict]:
    """How `score` ranks the cases by the Dice of each map of a Relation U-Net's per-case `rows`.

    One entry per map of `MAPS` with a Dice column: `map`, its Dice (`dice_mean`, `dice_std`: over
    the folds' mean Dice), and the pooled `spearman` and `eaurc` of `score` against that Dice.
    """
    folds = np.asarray(folds)
    values = np.array([float(r[score]) for r in rows])
    entries = []
    for column, name in MAPS:
        if column not in rows[0]:
            continue
        dice = np.array([float(r[column]) for r in rows])
        fold_means = [dice[folds == k].mean() for k in np.unique(folds)]
        entries.append(
            {
                "map": name,
                "dice_mean": float(np.mean(fold_means)),
                "dice_std": float(np.std(fold_means, ddof=1)) if len(fold_means) > 1 else 0.0,
                "spearman": spearman(values, dice),
                "eaurc": excess_aurc(values, 1.0 - dice),
            }
        )
    return entries


def render_maps(entries: Sequence[dict]) -> str:
    """A markdown table of `by_map`'s entries, in the order of `MAPS`."""
    lines = ["| map | Dice | Spearman | e-AURC |", "| --- | ---: | ---: | ---: |"]
    lines += [
        f"| {e['map']} | {e['dice_mean']:.3f} ± {e['dice_std']:.3f} "
        f"| {e['spearman']:.3f} | {e['eaurc']:.4f} |"
        for e in entries
    ]
    return "\n".join(lines) + "\n"


def inner_folds(n: int, k: int = 5, seed: int = 0) -> np.ndarray:
    """`(n,)` group of each of `n` cases in a seeded split into `k` groups (one test fold's cases)."""
    return np.random.default_rng(seed).permutation(n) % k


def render(entries: Sequence[dict]) -> str:
    """A markdown table of `compare`'s entries, best e-AURC first within each method."""
    flagged = all("flagged" in e for e in entries)
    lines = [
        "| method | score | cases | Spearman | Pearson | e-AURC |" + (" sent to review |" if flagged else ""),
        "| --- | --- | ---: | ---: | ---: | ---: |" + (" ---: |" if flagged else ""),
    ]
    for method in dict.fromkeys(e["method"] for e in entries):
        for e in sorted((e for e in entries if e["method"] == method), key=lambda e: e["eaurc"]):
            lines.append(
                f"| {method} | {e['score']} | {e['n_cases']} | {e['spearman']:.3f} | {e['pearson']:.3f} "
                f"| {e['eaurc']:.4f} |" + (f" {e['flagged']:.1%} |" if flagged else "")
            )
    return "\n".join(lines) + "\n"
