"""Rich tables for the terminal."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from relunet.evaluation.decision import EXPECTED
from relunet.inference.prediction_records import ONE_SCORE_WARNING, scores_cannot_rank

FILE_COLUMNS = ("mask", "disagreement")
SUMMARY_KEYS = (
    "n_cases",
    "dice_seg_a_mean",
    "dice_seg_a_std",
    "C_mean",
    "C_std",
    "pearson",
    "spearman",
    "aurc",
    "eaurc",
)


def cases_table(rows: list[dict], title: str, limit: int | None = None) -> Table:
    """A table of per-case rows (as given, file paths left out), numbers with three decimals."""
    table = Table(title=title)
    shown = rows[:limit] if limit else rows
    columns = [c for c in rows[0] if c not in FILE_COLUMNS] if rows else []
    for column in columns:
        table.add_column(column, justify="left" if column in ("case_id", "mask") else "right")
    for row in shown:
        table.add_row(*(_fmt(row[c]) for c in columns))
    return table


def summary_table(summary: dict, title: str = "summary") -> Table:
    """The headline numbers of a `summary.json`."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in SUMMARY_KEYS:
        if key in summary:
            table.add_row(key, _fmt(summary[key]))
    return table


def _fmt(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def prediction_lines(folder: Path) -> str:
    """What a prediction folder holds, for the console: cases, flagged, warnings (one score, batch shift)."""
    record = json.loads((folder / "prediction.json").read_text())
    lines = [f"{record['n_cases']} cases written to {folder}"]
    if scores_cannot_rank(record):
        lines.append(f"warning: {ONE_SCORE_WARNING}")
    if record["calibrated"]:
        promise = record["promise"]
        if promise["threshold"] is None:
            expected = promise.get("guarantee") == EXPECTED
            loosen = "--risk" if expected else "--risk / --delta, or try --guarantee expected"
            lines.append(
                f"all {record['n_flagged']} flagged for review: no case can be accepted under the promise "
                f"({promise['words']}) with these calibration cases; calibrate with more labelled "
                f"cases, or loosen {loosen}"
            )
        else:
            lines.append(f"{record['n_flagged']} flagged for review: {promise['words']}")
        if record["shift"]["warn"]:
            lines.append(f"warning: {record['shift']['message']}")
    else:
        lines.append("not calibrated: run `relunet calibrate RUN DATA` for estimated Dice and review flags")
    return "\n".join(lines)
