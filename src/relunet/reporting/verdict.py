"""The verdict: per dataset, every method at its published default against the Relation U-Net.

The rows of a dataset's table are the methods of the cross-validations whose settings file names
that table (`verdict:` in `relunet.reporting.crossval_settings`); a method run at several counts
(anchors, MC-dropout draws) keeps its largest, the paper's. Every figure comes from the methods'
out-of-fold cases (`per_case.csv` of every fold), one metric family throughout: Dice (mean ± std
over the folds), Spearman and e-AURC of the method's score `C` against Dice pooled over all folds'
cases, with the folds on which it beats the Relation U-Net's self-pair, and the share of cases an
expert must check (`expert_share`). Then three sentences that say where the self-pair wins and
where it loses, generated from the table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from relunet.analysis.review_promise import (
    DELTA,
    FOLDS,
    TARGET_DICE,
    TARGETS,
    calibration_sizes,
    oracle_flagged,
    share_flagged,
)
from relunet.errors import InputError
from relunet.evaluation.decision import EXPECTED, GUARANTEES
from relunet.evaluation.summary import read_per_case, summarise
from relunet.reporting.crossval_settings import CrossvalSettings, crossval_link
from relunet.reporting.tables import RELATION

#: the review promise of the expert columns: at most `RISK` of accepted cases below `TARGET_DICE`
RISK = 0.1
#: calibration cases of the calibrated expert column, and the seeded random splits it averages
CAL_CASES = 100
SPLITS = 500
#: how the verdict's paragraph begins (the README copies that paragraph)
VERDICT_START = "**Verdict.**"
#: the rival the verdict's last sentence holds the self-pair's score against
ENSEMBLE = "ensemble_5"
#: a method's count in its name (anchors, draws, members): `relation_anchors_test_n200`
COUNT = re.compile(r"_n(\d+)$")


def expert_share(score: np.ndarray, dice: np.ndarray, target_dice: float) -> dict[str, float | None]:
    """The share of cases sent to an expert under each guarantee, by its column's name.

    `score` and `dice` are `(N,)` over the pooled out-of-fold cases; a case fails below
    `target_dice`. The oracle: the fewest cases a threshold on `score` could flag, chosen knowing
    every case's Dice. Then, per guarantee of `relunet predict --guarantee`, the mean share flagged
    on the test part of `SPLITS` seeded splits with `CAL_CASES` calibration cases (None where too
    few cases are left to test). A new guarantee is a new column.
    """
    enough = CAL_CASES in calibration_sizes(len(score))
    return {
        "checked (oracle)": oracle_flagged(score, dice, RISK, target_dice),
        **{
            f"checked ({CAL_CASES} cal., {guarantee})": (
                share_flagged(score, dice, CAL_CASES, guarantee, target_dice, RISK, DELTA, SPLITS)
                if enough
                else None
            )
            for guarantee in GUARANTEES
        },
    }


def failure_dice(crossval: str) -> float:
    """The Dice below which a case of `crossval` fails in the verdict: the review check's highest.

    `relunet.analysis.review_promise.TARGETS` raises it where almost no case fails at 0.8
    (Hippocampus), so that the expert columns tell the methods apart.
    """
    return max(TARGETS.get(crossval, (TARGET_DICE,)))


@dataclass(frozen=True)
class Row:
    """One method of a verdict table.

    Attributes:
        method: its table name, e.g. `ensemble_5`.
        crossval: the cross-validation it comes from.
        passes: forward passes per case (None where not recorded).
        dice: mean and std over the folds of the fold's mean Dice.
        target: the Dice below which a case fails (`failure_dice`).
        failures: the share of its pooled cases with Dice below `target`.
        spearman, eaurc: of its score against Dice, pooled over all folds' cases.
        folds: `{fold: {"spearman", "eaurc"}}` of each fold's own cases.
        experts: `expert_share` of its pooled cases.
        wins: per ranking metric, `(folds better than the self-pair's, folds compared)`; empty
            for the self-pair itself or where its table has none.
    """

    method: str
    crossval: str
    passes: float | None
    dice: tuple[float, float]
    target: float
    failures: float
    spearman: float
    eaurc: float
    folds: dict[int, dict] = field(repr=False)
    experts: dict[str, float | None]
    wins: dict[str, tuple[int, int]] = field(default_factory=dict)


#: (key, column, better): the compared columns; `better` picks the best of several values
COLUMNS: tuple[tuple[str, str, Callable], ...] = (
    ("passes", "forward passes", min),
    ("dice", "Dice", max),
    ("failures", "failing", min),
    ("spearman", "pooled Spearman", max),
    ("eaurc", "pooled e-AURC", min),
)


def verdict_rows(crossval_docs: Path, settings: dict[str, CrossvalSettings]) -> dict[str, list[Row]]:
    """Per verdict table, its rows: the self-pair first, then by name.

    A method found in two cross-validations of one table is an error: which would be its row?
    """
    tables: dict[str, dict[str, Row]] = {}
    for name, declared in sorted(settings.items()):
        if declared.verdict is None:
            continue
        folder = crossval_docs / name
        table = tables.setdefault(declared.verdict, {})
        for method in _defaults(_complete_methods(folder)):
            if method in table:
                raise InputError(
                    f"{folder / 'settings.yaml'}: {method} is already a row of the {declared.verdict} "
                    f"verdict, from {table[method].crossval}; name that table in one of them only"
                )
            table[method] = _row(folder, method)
    return {
        dataset: sorted(_with_wins(rows), key=lambda r: (r.method != RELATION, r.method))
        for dataset, rows in sorted(tables.items())
        if rows
    }


def _with_wins(rows: dict[str, Row]) -> list[Row]:
    """The rows with their fold wins against the self-pair's row (unchanged where there is none)."""
    mine = rows.get(RELATION)
    if mine is None:
        return list(rows.values())
    return [row if row is mine else replace(row, wins=_fold_wins(row, mine)) for row in rows.values()]


def _fold_wins(row: Row, mine: Row) -> dict[str, tuple[int, int]]:
    """On how many common folds `row` ranks better than `mine`: higher Spearman, lower e-AURC."""
    wins = {}
    for key, better in (("spearman", np.greater), ("eaurc", np.less)):
        pairs = [
            (row.folds[k][key], mine.folds[k][key])
            for k in sorted(set(row.folds) & set(mine.folds))
            if row.folds[k][key] is not None and mine.folds[k][key] is not None
        ]
        wins[key] = (sum(bool(better(a, b)) for a, b in pairs), len(pairs))
    return wins


def render_verdict(tables: dict[str, list[Row]], settings: dict[str, CrossvalSettings]) -> list[str]:
    """Markdown lines: one table per dataset, the verdict's sentences, how to read the tables.

    `settings` (by cross-validation) says what each source cross-validation is. Empty without tables.
    """
    if not tables:
        return []
    sources = sorted({row.crossval for rows in tables.values() for row in rows})
    lines = [
        "## Verdict",
        "",
        "Every method at its published default (a method run at several counts at its largest, the",
        "paper's); best of each column in bold. The rows come from "
        + "; ".join(f"{crossval_link(name)}: {settings[name].purpose}" for name in sources)
        + ".",
        "",
    ]
    for dataset, rows in tables.items():
        experts = list(rows[0].experts)
        cells = {key: [_cell(r, key) for r in rows] for key in [k for k, _, _ in COLUMNS] + experts}
        best = {key: _best(rows, key) for key in cells}
        lines += [
            f"### {dataset}",
            "",
            f"A case fails below Dice {rows[0].target:g}.",
            "",
            "| method | from | " + " | ".join([c for _, c, _ in COLUMNS] + experts) + " |",
            "| --- | --- | " + " | ".join("---:" for _ in cells) + " |",
        ]
        for i, row in enumerate(rows):
            marked = [_bold(cells[key][i], _value(row, key) == best[key]) for key in cells]
            lines.append(f"| `{row.method}` | {crossval_link(row.crossval)} | " + " | ".join(marked) + " |")
        lines.append("")
    return [*lines, *verdict_sentences(tables), "", *_how_to_read(), ""]


def _how_to_read() -> list[str]:
    """What each column of the verdict tables holds."""
    return [
        "*Forward passes*: network evaluations per case. *Dice*: of the method's segmentation, mean ±",
        "std over the folds. *Pooled Spearman* (higher is better) and *pooled e-AURC* (excess area",
        "under the risk–coverage curve, risk = 1 − Dice; lower is better): of the method's score `C`",
        "against Dice over all folds' out-of-fold cases together; in brackets, the folds on which the",
        "method's own fold value beats the self-pair's. *Failing*: the share of cases below the",
        f"table's Dice. *Checked*: the share of cases an expert must check so that at most α = {RISK:g}",
        "of the accepted ones fail (none where the failures are already that few): *oracle*, the",
        "fewest a threshold on the score could flag knowing every case's Dice; *"
        f"{CAL_CASES} cal., expected* and *high-probability*: the mean share flagged by",
        f"`relunet predict --guarantee` (δ = {DELTA:g}) calibrated on {CAL_CASES} cases, on the rest,",
        f"over {SPLITS} seeded random splits ([review.md](review.md) has both promises and the other",
        "calibration sizes).",
    ]


def verdict_sentences(tables: dict[str, list[Row]]) -> list[str]:
    """The verdict: a sentence per dataset and one on cost, generated from the tables.

    Per dataset: how the self-pair's score ranks cases (pooled e-AURC) and what its Dice is, each
    against the best method of the column, and the share an expert checks under the default
    guarantee. Then what the methods that beat it cost in forward passes.
    """
    sentences, rivals = [], {}
    for dataset, rows in tables.items():
        mine = next((r for r in rows if r.method == RELATION), None)
        if mine is None:
            continue
        parts = []
        for key, words in (("eaurc", "ranks cases"), ("dice", "segments")):
            best = _winner(rows, key)
            if best is None or _value(best, key) == _value(mine, key):
                parts.append(f"{words} best ({_COLUMN_WORDS[key]} {_cell(mine, key, wins=False)})")
            else:
                rivals[best.method] = best
                parts.append(
                    f"{words} below `{best.method}` ({_COLUMN_WORDS[key]} {_cell(mine, key, wins=False)} "
                    f"against {_cell(best, key, wins=False)})"
                )
        share = f"checked ({CAL_CASES} cal., {EXPECTED})"
        best = _winner(rows, share)
        if best is not None and _value(mine, share) is not None:
            against = "" if _value(best, share) == _value(mine, share) else f" against `{best.method}`'s "
            parts.append(
                f"an expert checks {_cell(mine, share)} of its cases with {CAL_CASES} calibration cases"
                + (f"{against}{_cell(best, share)}" if against else ", the fewest")
            )
        sentences.append(
            f"On {dataset}, the self-pair (one forward pass) " + ", ".join(parts[:-1]) + f" and {parts[-1]}."
        )
    if not sentences:
        return []
    costs = ", ".join(f"`{r.method}` {_cell(r, 'passes')}" for r in rivals.values() if r.passes)
    cost = f"Where it loses, the winner costs more forward passes per case: {costs}." if costs else ""
    return [" ".join([VERDICT_START, *sentences, cost]).strip()]


#: how a verdict sentence names a column's value
_COLUMN_WORDS = {"eaurc": "pooled e-AURC", "dice": "Dice"}


def _telling(rows: list[Row]) -> list[tuple[str, str]]:
    """The columns the verdict's sentences weigh, `(key, words)`: those that tell the methods apart.

    Left out: the failures (the Dice says it) and any column where every method has the same value.
    """
    keys = [(k, c) for k, c, _ in COLUMNS if k != "failures"] + [(k, f"share {k}") for k in rows[0].experts]
    return [(k, c) for k, c in keys if len({_value(r, k) for r in rows}) > 1]


def _complete_methods(folder: Path) -> list[str]:
    """The methods of `folder` whose every fold (`FOLDS`) has its per-case table."""
    found = [p.parent.parent.name for p in folder.glob("methods/*/fold_*/per_case.csv")]
    return sorted(m for m in set(found) if found.count(m) == FOLDS)


def _defaults(methods: list[str]) -> list[str]:
    """`methods` with each run at several counts kept at its largest (the paper's 200 anchors, draws)."""
    largest: dict[str, tuple[int, str]] = {}
    for method in methods:
        count = COUNT.search(method)
        family = COUNT.sub("", method)
        n = int(count.group(1)) if count else 0
        if family not in largest or n > largest[family][0]:
            largest[family] = (n, method)
    return sorted(method for _, method in largest.values())


def _row(folder: Path, method: str) -> Row:
    """The verdict row of `method` from the per-case tables of every fold of `folder`."""
    cases = sorted(read_per_case(folder, method), key=lambda case: case["case_id"])
    by_fold: dict[int, list[dict]] = {}
    for case in cases:
        by_fold.setdefault(int(case["fold"]), []).append(case)
    fold_dice = [np.mean([c["dice_seg_a"] for c in rows]) for rows in by_fold.values()]
    pooled = summarise(cases)
    summary = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").is_file() else {}
    return Row(
        method=method,
        crossval=folder.name,
        passes=summary.get(method, {}).get("forward_passes_mean"),
        dice=(float(np.mean(fold_dice)), float(np.std(fold_dice))),
        target=failure_dice(folder.name),
        failures=float(np.mean([c["dice_seg_a"] < failure_dice(folder.name) for c in cases])),
        spearman=pooled["spearman"],
        eaurc=pooled["eaurc"],
        folds={k: _ranking(rows) for k, rows in sorted(by_fold.items())},
        experts=expert_share(
            np.array([c["C"] for c in cases]),
            np.array([c["dice_seg_a"] for c in cases]),
            failure_dice(folder.name),
        ),
    )


def _ranking(cases: list[dict]) -> dict[str, float | None]:
    """Spearman and e-AURC of the score `C` against Dice over `cases`."""
    summary = summarise(cases)
    return {"spearman": summary["spearman"], "eaurc": summary["eaurc"]}


def _value(row: Row, key: str) -> float | None:
    """The compared value of a column, rounded as shown (a tie is a tie as the reader sees it)."""
    text = _cell(row, key, wins=False)
    return None if text == "—" else float(text.rstrip("%").split(" ")[0])


def _best(rows: list[Row], key: str) -> float | None:
    better = next((b for k, _, b in COLUMNS if k == key), min)
    values = [v for r in rows if (v := _value(r, key)) is not None]
    return better(values) if values else None


def _winner(rows: list[Row], key: str) -> Row | None:
    best = _best(rows, key)
    return next((r for r in rows if best is not None and _value(r, key) == best), None)


def _cell(row: Row, key: str, wins: bool = True) -> str:
    """A column's text: the value as shown, with the folds better than the self-pair's where ranked."""
    if key == "passes":
        return "—" if row.passes is None else f"{row.passes:g}"
    if key == "dice":
        return f"{row.dice[0]:.3f} ± {row.dice[1]:.3f}"
    if key in ("spearman", "eaurc"):
        text = f"{getattr(row, key):.3f}" if key == "spearman" else f"{row.eaurc:.4f}"
        return f"{text} ({'/'.join(map(str, row.wins[key]))})" if wins and key in row.wins else text
    share = row.failures if key == "failures" else row.experts.get(key)
    return "—" if share is None else f"{share:.1%}"


def _bold(text: str, best: bool) -> str:
    return f"**{text}**" if best else text
