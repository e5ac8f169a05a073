"""Rich tables for the terminal."""

from __future__ import annotations

from rich.table import Table

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
    """A table of per-case rows (as given), numbers with three decimals."""
    table = Table(title=title)
    shown = rows[:limit] if limit else rows
    columns = list(rows[0]) if rows else []
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
