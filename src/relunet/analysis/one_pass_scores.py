"""Which per-case score ranks a method's cases best: every score column and the learned estimate.

For each method, every confidence column of its per-case table (`C`, `C_<score>`) and the
cross-fitted learned estimate (`relunet.evaluation.quality`, fitted on the other folds' cases)
is scored against the Dice of `seg_a`: Spearman, Pearson, e-AURC (risk = 1 - Dice) pooled over
all cases, and the Spearman of each fold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from relunet.evaluation.metrics import excess_aurc, pearson, spearman
from relunet.evaluation.quality import cross_fitted, feature_columns

#: the name of the learned estimate in the tables
LEARNED = "learned"


def score_columns(rows: Sequence[dict]) -> list[str]:
    """The confidence columns of per-case `rows` (`C`, `C_<score>`), without the fraction."""
    return [c for c in feature_columns(list(rows[0])) if c != "predicted_fraction"]


def method_scores(rows: Sequence[dict], folds: Sequence[int]) -> dict[str, np.ndarray]:
    """Each score column of `rows`, and the learned estimate cross-fitted over `folds`; `(N,)` each."""
    scores = {c: np.array([float(r[c]) for r in rows]) for c in score_columns(rows)}
    scores[LEARNED] = cross_fitted(rows, folds)
    return scores


def compare(
    rows_by_method: dict[str, Sequence[dict]], folds_by_method: dict[str, Sequence[int]]
) -> list[dict]:
    """One entry per method and score: pooled `spearman`, `pearson`, `eaurc`, and `spearman_by_fold`.

    `rows_by_method` holds per-case dicts with `dice_seg_a`; `folds_by_method` each row's fold.
    """
    entries = []
    for method, rows in rows_by_method.items():
        folds = np.asarray(folds_by_method[method])
        dice = np.array([float(r["dice_seg_a"]) for r in rows])
        for score, values in method_scores(rows, folds).items():
            entries.append(
                {
                    "method": method,
                    "score": score,
                    "n_cases": len(rows),
                    "spearman": spearman(values, dice),
                    "pearson": pearson(values, dice),
                    "eaurc": excess_aurc(values, 1.0 - dice),
                    "spearman_by_fold": {
                        int(k): spearman(values[folds == k], dice[folds == k]) for k in np.unique(folds)
                    },
                }
            )
    return entries


def inner_folds(n: int, k: int = 5, seed: int = 0) -> np.ndarray:
    """`(n,)` group of each of `n` cases in a seeded split into `k` groups (one test fold's cases)."""
    return np.random.default_rng(seed).permutation(n) % k


def render(entries: Sequence[dict]) -> str:
    """A markdown table of `compare`'s entries, best e-AURC first within each method."""
    lines = [
        "| method | score | cases | Spearman | Pearson | e-AURC |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    methods = list(dict.fromkeys(e["method"] for e in entries))
    for method in methods:
        for e in sorted((e for e in entries if e["method"] == method), key=lambda e: e["eaurc"]):
            lines.append(
                f"| {method} | {e['score']} | {e['n_cases']} | {e['spearman']:.3f} | {e['pearson']:.3f} "
                f"| {e['eaurc']:.4f} |"
            )
    return "\n".join(lines) + "\n"
