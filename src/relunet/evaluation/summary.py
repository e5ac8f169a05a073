"""From per-case rows to a flat summary: means, correlations, coverage curve, AURC."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from relunet.errors import InputError
from relunet.evaluation.metrics import aurc, excess_aurc, failure_auroc, kept_mean, pearson, spearman
from relunet.rundir import CrossvalFolder

COVERAGES = tuple(range(10, 101, 10))
#: a test case whose Dice is below this is a failure the confidence should find
FAILURE_THRESHOLD = 0.7


def summarise(
    rows: list[dict[str, float | str]],
    confidence: str = "C",
    dice: str = "dice_seg_a",
    failure_threshold: float = FAILURE_THRESHOLD,
) -> dict[str, float | int | None]:
    """Summarise per-case rows into a flat dict.

    Keys: `n_cases`; `<metric>_mean` and `<metric>_std` for every numeric column;
    `pearson`, `spearman` of confidence with Dice; `aurc`, `eaurc` with risk = 1 - Dice;
    `auroc_failure`, how well low confidence finds cases with Dice below `failure_threshold`;
    `dice_at_coverage_<d>`, the mean Dice of the d % most confident cases. NaN becomes None.
    """
    numeric = [k for k, v in rows[0].items() if isinstance(v, int | float) and not isinstance(v, bool)]
    summary: dict[str, float | int | None] = {"n_cases": len(rows)}
    for key in numeric:
        values = np.array([float(r[key]) for r in rows])
        summary[f"{key}_mean"] = float(values.mean())
        summary[f"{key}_std"] = float(values.std())
    conf = np.array([float(r[confidence]) for r in rows])
    score = np.array([float(r[dice]) for r in rows])
    summary["pearson"] = pearson(conf, score)
    summary["spearman"] = spearman(conf, score)
    summary["aurc"] = aurc(conf, 1.0 - score)
    summary["eaurc"] = excess_aurc(conf, 1.0 - score)
    summary["auroc_failure"] = failure_auroc(conf, score, failure_threshold)
    summary["failure_threshold"] = failure_threshold
    for d in COVERAGES:
        summary[f"dice_at_coverage_{d}"] = kept_mean(conf, score, d / 100)
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}


def read_per_case(folder: Path, method: str) -> list[dict]:
    """All folds' per-case rows of a cross-validated method (numbers as floats), with their fold.

    Reads `folder/methods/<method>/fold_K/per_case.csv`.
    """
    rows = []
    for fold_folder in CrossvalFolder(Path(folder)).method_folds(method):
        anew = "and run `relunet crossval` again to evaluate that fold anew"
        fix = f"delete {fold_folder.per_case.parent} {anew}"
        rows += [{"fold": fold_folder.number, **row} for row in read_case_table(fold_folder.per_case, fix)]
    return rows


def read_case_table(path: Path, fix: str) -> list[dict]:
    """The rows of one per-case table (numbers as floats); a damaged one is an `InputError` saying `fix`."""
    try:
        with path.open(newline="") as handle:
            return [
                {k: v if k == "case_id" else float(v) for k, v in row.items()}
                for row in csv.DictReader(handle)
            ]
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, TypeError) as err:
        raise InputError(f"{path}: damaged per-case table ({type(err).__name__}); {fix}") from err
