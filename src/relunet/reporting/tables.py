"""The tables of a cross-validation: its summary.json and per-case rows, read and checked, as markdown.

Reads only files (summary.json, per_case.csv); no model.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from relunet.errors import InputError, first_line
from relunet.evaluation.summary import COVERAGES, FAILURE_THRESHOLD
from relunet.reporting.paper import paper_seg_a_dice
from relunet.rundir import CrossvalFolder, fold_number

RELATION = "relation_self_pair"
#: the Relation U-Net's scores held against the Dice of its (s1+s2)/2 segmentation (a score check's method)
RELATION_S1S2 = f"{RELATION} (s1+s2)/2"
#: a method's name, which is also its folder under methods/
METHOD = re.compile(r"[A-Za-z0-9_]+")
#: a fold's number, as summary.json keys and fold_K folders give it
FOLD = re.compile(r"[0-9]{1,9}")
#: the summary values that are correlations, from -1 to 1
CORRELATION = re.compile("pearson|spearman")
#: the columns of a per_case.csv that the report reads
CASE_COLUMNS = ("case_id", "C", "dice_seg_a")


def read_summary(path: Path) -> dict[str, dict]:
    """A cross-validation's summary.json, checked to be what `relunet crossval` writes.

    Per method a JSON object: `n_folds` a whole number from 1, `pearson_by_fold` and
    `hardware_by_fold` objects by fold, every other value a finite number (a correlation from -1
    to 1) or null.
    """
    fix = f"rerun `relunet crossval` into {path.parent} with the same methods to rebuild it"
    try:
        summary = json.loads(path.read_bytes(), parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:
        raise InputError(f"{path}: not valid JSON ({first_line(err, 200)}); {fix}") from None
    problem = _summary_problem(summary)
    if problem:
        raise InputError(f"{path}: {problem}; {fix}")
    return summary


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _summary_problem(summary: object) -> str | None:
    """What keeps `summary` from being a summary.json of `relunet crossval`; None if nothing."""
    if not isinstance(summary, dict) or not summary:
        return "not a JSON object with an entry per method"
    for name, entry in summary.items():
        if not METHOD.fullmatch(name):
            return f"{_quoted(name)} is not a method name"
        problem = _entry_problem(entry)
        if problem:
            return f"method {name}: {problem}"
    return None


def _entry_problem(entry: object) -> str | None:
    """What is wrong with one method's entry of summary.json; None if nothing."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    n_folds = entry.get("n_folds")
    if not (_is_number(n_folds) and isinstance(n_folds, int) and n_folds >= 1):
        return "n_folds is missing or not a whole number from 1"
    for key, value in entry.items():
        by_fold = key in ("pearson_by_fold", "hardware_by_fold")
        problem = _by_fold_problem(key, value) if by_fold else _value_problem(key, value)
        if problem:
            return problem
    return None


def _by_fold_problem(key: str, values: object) -> str | None:
    """What is wrong with a JSON object of one value (or null) per fold; None if nothing."""
    if not isinstance(values, dict):
        return f"{key} is not a JSON object of folds"
    for fold, value in values.items():
        if not FOLD.fullmatch(fold):
            return f"{key} has {_quoted(fold)}, not a fold number"
        wrong = not isinstance(value, str) if key == "hardware_by_fold" else _value_problem(key, value)
        if value is not None and wrong:
            return f"{key} has a wrong value for fold {fold}"
    return None


def _value_problem(key: str, value: object) -> str | None:
    """What is wrong with one value of a method's entry (a number, null, a correlation in [-1, 1])."""
    if value is None:
        return None
    if not _is_number(value):
        return f"{_quoted(key)} is not a number"
    if CORRELATION.search(key) and not -1 <= value <= 1:
        return f"{_quoted(key)} is not a correlation from -1 to 1"
    return None


def _is_number(value: object) -> bool:
    """A finite int or float that a float holds (JSON true and false are not numbers)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) <= sys.float_info.max


def read_rows(folder: Path, method: str) -> list[dict]:
    """All folds' per-case rows of a cross-validated method (numbers as floats), with their fold.

    Reads `folder/methods/<method>/fold_K/per_case.csv`; a missing or damaged one is an `InputError`.
    """
    crossval = CrossvalFolder(folder)
    paths = [f.per_case for f in crossval.method_folds(method) if FOLD.fullmatch(str(f.number))]
    if not paths:
        raise InputError(
            f"{crossval.method(method)}: no per_case.csv of a fold, though summary.json lists {method};"
            f" rerun `relunet crossval` into {folder} with the same methods"
        )
    return [row for path in paths for row in _per_case(path)]


def _per_case(path: Path) -> list[dict]:
    """The rows of one fold's per_case.csv, numbers as floats, with the fold."""
    fix = f"delete {path.parent} and rerun `relunet crossval` with the same methods to evaluate it again"
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns, rows = reader.fieldnames or [], list(reader)
    except (ValueError, csv.Error) as err:
        raise InputError(f"{path}: not a readable CSV table ({first_line(err, 200)}); {fix}") from None
    missing = [column for column in CASE_COLUMNS if column not in columns]
    if missing:
        raise InputError(f"{path}: no column {', '.join(missing)}; {fix}")
    if not rows:
        raise InputError(f"{path}: no test case in it; {fix}")
    fold = fold_number(path.parent.name)
    cases = []
    for line, row in enumerate(rows, start=2):
        try:
            cases.append(_case(row, fold))
        except ValueError as err:
            raise InputError(f"{path}: line {line}: {err}; {fix}") from None
    return cases


def _case(row: dict, fold: int) -> dict:
    """One per-case row with its fold, numbers as floats; ValueError if a cell is missing or not a number."""
    if None in row or None in row.values():
        raise ValueError("not one cell per column")
    return {
        "fold": fold,
        **{key: value if key == "case_id" else _float(key, value) for key, value in row.items()},
    }


def _float(column: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{_quoted(column)} is {_quoted(text)}, not a number") from None


def _quoted(text: str) -> str:
    """`text` quoted on one line, shortened to 40 characters."""
    return repr(text if len(text) <= 40 else text[:40] + "…")


def render_tables(summary: dict, dataset: str, classes: int = 1, calls: Sequence[dict] = ()) -> str:
    """Tables 1 and 2 of the paper, confidence quality, coverage and cost, as markdown.

    With `classes` > 1 (label groups segmented as separate classes) Dice is the mean over the
    classes, a table gives each class's, and the paper's numbers (one class) are left out.
    `calls` (calls.json): if they all ran on one kind of hardware, the folds evaluated before the
    hardware was recorded per fold ran there.
    """
    paper = paper_seg_a_dice(dataset) if classes == 1 else {}
    lines = [f"# Cross-validation on {dataset}{classes_note(classes)}", ""]
    if RELATION in summary:
        r = summary[RELATION]
        lines += [
            "## Table 1 — Dice of every output of the Relation U-Net (self-pair)",
            "",
            "| seg_a | seg_b | (s1+s2)/2 | union | inter | U-Net |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
            "| "
            + " | ".join(_pm(r, f"dice_{k}_mean") for k in ("seg_a", "seg_b", "s1s2", "union", "inter"))
            + f" | {_pm(summary.get('unet', {}), 'dice_seg_a_mean')} |",
            "",
            "(s1+s2)/2 is the Dice of the mean of the `seg_a` and `seg_b` maps, the paper's; — for "
            "folds evaluated before it was recorded.",
            "",
        ]
    lines += [
        "## Table 2 — Dice of `seg_a` per method (mean ± std over folds)",
        "",
        "| method | folds | Dice | paper |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, s in summary.items():
        lines.append(
            f"| {name} | {s['n_folds']} | {_pm(s, 'dice_seg_a_mean')} | {number_text(paper.get(name))} |"
        )
    lines += [
        "",
        "## Confidence quality (mean ± std over folds)",
        "",
        "| method | folds | Pearson | Spearman | AURC | e-AURC | AUROC failure | passes | s/case "
        "| train min |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, s in summary.items():
        train_minutes = (s.get("train_seconds_mean") or 0) / 60
        lines.append(
            f"| {name} | {s['n_folds']} | {_pm(s, 'pearson')} | {_pm(s, 'spearman')} | {_pm(s, 'aurc')} "
            f"| {_pm(s, 'eaurc')} "
            f"| {_pm(s, 'auroc_failure')} | {number_text(s.get('forward_passes_mean'), 0)} "
            f"| {number_text(s.get('seconds_per_case_mean'), 3)} | {number_text(train_minutes, 1)} |"
        )
    lines += [
        "",
        "passes: forward passes per input sample (anchors: one per anchor; ensemble: one per member;"
        " flip TTA: the image and its flips; MC dropout: one pass, then its last layer drawn n times)."
        " s/case: inference only. train min: all models the method needs, per fold.",
        "",
        "## Where each method's test folds were evaluated (s/case depends on it)",
        "",
        "| method | hardware (folds) |",
        "| --- | --- |",
        *(f"| {name} | {_places(s.get('hardware_by_fold', {}), calls)} |" for name, s in summary.items()),
        "",
        *_places_note(summary, calls),
        "## Confidence quality, all folds' test cases pooled",
        "",
        "| method | Pearson | Spearman | AURC | e-AURC | AUROC failure | failures / cases |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, s in summary.items():
        cases = number_text((s.get("n_cases_mean") or 0) * s["n_folds"], 0)
        lines.append(
            f"| {name} | "
            + " | ".join(number_text(s.get(f"pooled_{k}")) for k in ("pearson", "spearman", "aurc", "eaurc"))
            + f" | {number_text(s.get('pooled_auroc_failure'))} | {s.get('pooled_failures', '—')} / {cases} |"
        )
    threshold = next(iter(summary.values())).get("failure_threshold_mean")
    threshold = FAILURE_THRESHOLD if threshold is None else threshold
    lines += [
        "",
        f"A failure is a test case with Dice below {threshold:g}; AUROC of finding the failures by low"
        " confidence (— where no case failed, or every case did).",
    ]
    folds = sorted({int(k) for s in summary.values() for k in s.get("pearson_by_fold", {})})
    lines += _per_method_table(
        "Pearson of confidence with Dice, per fold",
        summary,
        {f"fold {k}": lambda s, k=k: s.get("pearson_by_fold", {}).get(str(k)) for k in folds},
    )
    lines += _per_method_table(
        "Mean Dice of the d % most confident cases",
        summary,
        {f"{d}%": lambda s, d=d: s.get(f"dice_at_coverage_{d}_mean") for d in COVERAGES},
    )
    if classes > 1:
        lines += _per_method_table(
            "Dice of `seg_a` and mean confidence per class (mean over folds)",
            summary,
            {
                f"{label} class {k}": lambda s, key=f"{column}_class{k}_mean_mean": s.get(key)
                for label, column in (("Dice", "dice_seg_a"), ("C", "C"))
                for k in range(1, classes + 1)
            },
        )
    return "\n".join(lines) + "\n"


def _per_method_table(
    title: str, summary: dict, columns: dict[str, Callable[[dict], float | None]]
) -> list[str]:
    """Markdown lines of a table with a row per method and a number per column (`column(entry)`)."""
    lines = [
        "",
        f"## {title}",
        "",
        "| method | " + " | ".join(columns) + " |",
        "| --- |" + " ---: |" * len(columns),
    ]
    for name, s in summary.items():
        lines.append(f"| {name} | " + " | ".join(number_text(value(s)) for value in columns.values()) + " |")
    return lines


def classes_note(classes: int) -> str:
    """` (K classes)`, said after the dataset's name where the models segment K > 1 classes."""
    return f" ({classes} classes)" if classes > 1 else ""


def _places(hardware_by_fold: dict[str, str | None], calls: Sequence[dict]) -> str:
    """Where each fold of a method was evaluated, as text.

    E.g. `x86_64 CPU, from calls.json (fold 0); NVIDIA H200 (folds 1, 2)`: a fold evaluated before
    the hardware was recorded per fold takes the hardware of `calls` (calls.json) if they all ran on one.
    """
    folds_of: dict[str, list[str]] = {}
    for fold, hardware in sorted(hardware_by_fold.items(), key=lambda item: int(item[0])):
        place = hardware or _sole_hardware(calls) or "evaluated before hardware was recorded"
        folds_of.setdefault(place, []).append(fold)
    return (
        "; ".join(
            f"{place} (fold{'s' if len(folds) > 1 else ''} {', '.join(folds)})"
            for place, folds in folds_of.items()
        )
        or "—"
    )


def _sole_hardware(calls: Sequence[dict]) -> str | None:
    """The hardware every call ran on (`x86_64 CPU, from calls.json`), if they all ran on the same."""
    places = {call["hardware"].split(",")[0] for call in calls}
    return f"{places.pop()}, from calls.json" if len(places) == 1 else None


def _places_note(summary: dict, calls: Sequence[dict]) -> list[str]:
    """The lines under the hardware table that say what `from calls.json` means, where a row says it."""
    unrecorded = any(None in s.get("hardware_by_fold", {}).values() for s in summary.values())
    if not (unrecorded and _sole_hardware(calls)):
        return []
    return [
        "From calls.json: evaluated before the hardware was recorded per fold, on the hardware that every"
        " call listed in calls.json ran on.",
        "",
    ]


def _pm(summary: dict, key: str) -> str:
    """`mean ± std` over folds of a per-fold summary value; the value alone from a single fold."""
    mean, std = summary.get(f"{key}_mean"), summary.get(f"{key}_std")
    if mean is None:
        return "—"
    return f"{mean:.3f}" if summary.get("n_folds", 0) < 2 else f"{mean:.3f} ± {std or 0:.3f}"


def number_text(value: float | None, digits: int = 3) -> str:
    """A number as a table cell: `digits` decimals, `—` for none."""
    return "—" if value is None else f"{value:.{digits}f}"
