"""The report of a cross-validation folder: tables.md, figures/*.png and one self-contained report.html.

Reads only files (summary.json, per-case tables, saved predictions, the dataset); no model.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import re
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from relunet.atomic import write_text
from relunet.config import load_config
from relunet.errors import InputError, first_line
from relunet.evaluation.crossval_cases import CrossvalCases
from relunet.evaluation.summary import COVERAGES, FAILURE_THRESHOLD
from relunet.reporting import figures
from relunet.results_folder import results_folder
from relunet.rundir import CrossvalFolder, fold_number

#: numbers the paper reports for the datasets shared here (Dice of seg_a), by dataset folder name
PAPER_DICE = {"Task04_Hippocampus": {"unet": 0.8276}}
RELATION = "relation_self_pair"
STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:auto}"
    "table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "th{cursor:pointer;background:#eee}img{max-width:100%}figure{margin:1em 0}details{margin:.5em 0}"
)
PANELS = 12
#: the figures a report draws, by file name under report/figures/ (the last two need a Relation U-Net)
FIGURES = ("pearson", "coverage", "risk_coverage", "scatter", "ranked_cases", "union_inter")
#: a method's name, which is also its folder under methods/
METHOD = re.compile(r"[A-Za-z0-9_]+")
#: a fold's number, as summary.json keys and fold_K folders give it
FOLD = re.compile(r"[0-9]{1,9}")
#: the summary values that are correlations, from -1 to 1
CORRELATION = re.compile("pearson|spearman")
#: the columns of a per_case.csv that the report reads
CASE_COLUMNS = ("case_id", "C", "dice_seg_a")


def build_report(folder: Path, data: Path | None = None, calls: Sequence[dict] = ()) -> Path:
    """Write `folder/report/` (tables.md, figures, report.html); returns the HTML path.

    The example figures read the images from `data`, by default the dataset the models trained on.
    `calls`: the calls that built the folder, as runs.json of `benchmarks/crossval_results.py` lists
    them (see `render_tables`).
    """
    folder = Path(folder)
    summary_path = CrossvalFolder(folder).summary
    if not summary_path.is_file():
        raise InputError(f"{summary_path}: not found; run `relunet crossval` into {folder} first")
    summary = read_summary(summary_path)
    rows = {name: read_rows(folder, name) for name in summary}
    dataset, classes = _dataset(folder)
    with results_folder(folder / "report", "report", owned=True) as out:
        n_folds = max(s["n_folds"] for s in summary.values())
        title = f"{dataset}{_classes_note(classes)}, {n_folds} fold{'s' if n_folds > 1 else ''}"
        labels = figures.fold_labels(summary)
        png = {name: out / "figures" / f"{name}.png" for name in FIGURES}
        figs = [
            figures.pearson_bars(summary, png["pearson"], f"Pearson per method — {title}", labels),
            figures.coverage_curves(rows, png["coverage"], f"Dice vs coverage — {title}", labels),
            figures.risk_coverage_curves(rows, png["risk_coverage"], f"Risk–coverage — {title}", labels),
            figures.scatter_grid(rows, png["scatter"], f"Confidence vs Dice — {title}", labels),
        ]
        if RELATION in rows:
            ranked, relations = _case_panels(folder, rows[RELATION], data)
            figs.append(
                figures.case_panels(
                    ranked, png["ranked_cases"], "Test cases ranked by C (least confident first)"
                )
            )
            figs.append(
                figures.case_panels(
                    relations, png["union_inter"], "Union (green) and intersection (red) heads"
                )
            )
        tables = render_tables(summary, dataset, classes, calls)
        write_text(out / "tables.md", tables)
        write_text(out / "report.html", _html(title, tables, figs, rows))
    return folder / "report" / "report.html"


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
    `calls` (runs.json): if they all ran on one kind of hardware, the folds evaluated before the
    hardware was recorded per fold ran there.
    """
    paper = PAPER_DICE.get(dataset, {}) if classes == 1 else {}
    lines = [f"# Cross-validation on {dataset}{_classes_note(classes)}", ""]
    if RELATION in summary:
        r = summary[RELATION]
        lines += [
            "## Table 1 — Dice of every output of the Relation U-Net (self-pair)",
            "",
            "| seg_a | seg_b | mean | union | inter | U-Net |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
            "| "
            + " | ".join(_pm(r, f"dice_{k}_mean") for k in ("seg_a", "seg_b", "mean", "union", "inter"))
            + f" | {_pm(summary.get('unet', {}), 'dice_seg_a_mean')} |",
            "",
        ]
    lines += [
        "## Table 2 — Dice of `seg_a` per method (mean ± std over folds)",
        "",
        "| method | folds | Dice | paper |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['n_folds']} | {_pm(s, 'dice_seg_a_mean')} | {_num(paper.get(name))} |")
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
            f"| {_pm(s, 'auroc_failure')} | {_num(s.get('forward_passes_mean'), 0)} "
            f"| {_num(s.get('seconds_per_case_mean'), 3)} | {_num(train_minutes, 1)} |"
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
        cases = _num((s.get("n_cases_mean") or 0) * s["n_folds"], 0)
        lines.append(
            f"| {name} | "
            + " | ".join(_num(s.get(f"pooled_{k}")) for k in ("pearson", "spearman", "aurc", "eaurc"))
            + f" | {_num(s.get('pooled_auroc_failure'))} | {s.get('pooled_failures', '—')} / {cases} |"
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
        lines.append(f"| {name} | " + " | ".join(_num(value(s)) for value in columns.values()) + " |")
    return lines


def _case_panels(folder: Path, cases: list[dict], data: Path | None) -> tuple[list[dict], list[dict]]:
    """Panels for the ranked-cases figure and the union/intersection figure."""
    dataset = CrossvalCases(folder, data)
    ranked, relations = [], []
    for row in panel_cases(cases):
        case, truth = dataset.load(row["case_id"])
        truth = truth.any(axis=0)
        maps = _masks(prediction_path(folder, row))
        image, cut = _display(case.image, truth, dataset.config.data.slice_axis)
        caption = f"{row['case_id']}\nDice {row['dice_seg_a']:.2f}  C {row['C']:.2f}"
        ranked.append(
            {
                "image": image,
                "caption": caption,
                "contours": [
                    (cut(truth), "yellow", "ground truth"),
                    (cut(maps["seg_a"].any(axis=0)), "cyan", "prediction"),
                ],
            }
        )
        relations.append(
            {
                "image": image,
                "caption": caption,
                "contours": [
                    (cut(maps["union"].any(axis=0)), "lime", "union"),
                    (cut(maps["inter"].any(axis=0)), "red", "intersection"),
                ],
            }
        )
    return ranked, relations


def panel_cases(cases: list[dict]) -> list[dict]:
    """The per-case rows the case figures show: `PANELS` cases spread evenly over the ranking by C."""
    ordered = sorted(cases, key=lambda c: c["C"])
    if not ordered:
        return []
    return [ordered[i] for i in np.unique(np.linspace(0, len(ordered) - 1, PANELS).round().astype(int))]


def _masks(saved: Path) -> dict[str, np.ndarray]:
    """The saved masks of one case (seg_a, union, inter), or an `InputError` naming the file."""
    fix = f"copy the fold's predictions/ back or delete {saved.parents[1]} and run the cross-validation again"
    if not saved.is_file():
        raise InputError(f"{saved}: the saved masks of this case are missing; {fix}")
    try:
        with np.load(saved) as arrays:
            return {head: arrays[head] for head in ("seg_a", "union", "inter")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(f"{saved}: not the saved masks of a case ({first_line(err, 200)}); {fix}") from None


def prediction_path(folder: Path, row: dict) -> Path:
    """The saved Relation U-Net masks of one per-case row of the cross-validation in `folder`."""
    return CrossvalFolder(folder).method_fold(RELATION, row["fold"]).prediction(row["case_id"])


def _display(image: np.ndarray, truth: np.ndarray, axis: int):
    """A 2D view in [0, 1] of a `(C, *S)` image, and a function cutting masks the same way."""
    if image.ndim == 4:  # a volume: the slice with the most ground truth
        index = int(np.argmax(truth.sum(axis=tuple(a for a in range(3) if a != axis))))
        cut = lambda m: np.take(m, index, axis=axis)  # noqa: E731
        image = np.take(image, index, axis=1 + axis)
    else:
        cut = lambda m: m  # noqa: E731
    view = np.moveaxis(image, 0, -1).astype(np.float32)
    view = (view - view.min()) / max(float(np.ptp(view)), 1e-8)
    return (view[..., 0] if view.shape[-1] != 3 else view), cut


def _html(title: str, tables: str, figs: list[Path], rows: dict[str, list[dict]]) -> str:
    images = "".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        f"<figcaption>{html.escape(p.stem)}</figcaption></figure>"
        for p in figs
    )
    table_html = "".join(_md_table_to_html(block) for block in tables.split("\n\n"))
    per_case = "".join(_case_table(name, cases) for name, cases in rows.items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>relunet — {html.escape(title)}</title>
<style>{STYLE}</style>
<script>function sortTable(t,c){{const b=t.tBodies[0],r=[...b.rows],d=t.dataset.dir==c?-1:1;
r.sort((x,y)=>d*((parseFloat(x.cells[c].textContent)||0)-(parseFloat(y.cells[c].textContent)||0)));
r.forEach(e=>b.appendChild(e));t.dataset.dir=d==1?c:"";}}</script></head><body>
<h1>relunet report — {html.escape(title)}</h1>{table_html}<h2>Figures</h2>{images}
<h2>Per case (click a header to sort)</h2>{per_case}</body></html>"""


def _md_table_to_html(block: str) -> str:
    lines = [line for line in block.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].startswith("#"):
        level = len(lines[0]) - len(lines[0].lstrip("#"))
        return f"<h{level + 1}>{html.escape(lines[0].lstrip('# '))}</h{level + 1}>" + _md_table_to_html(
            "\n".join(lines[1:])
        )
    if not lines[0].startswith("|"):
        return f"<p>{html.escape(' '.join(lines))}</p>"
    cells = [
        [c.strip() for c in line.strip("|").split("|")] for line in lines if not set(line) <= set("|-: ")
    ]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cells[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _case_table(name: str, cases: list[dict]) -> str:
    if not cases:
        return ""
    columns = list(cases[0])
    head = "".join(
        f"<th onclick=\"sortTable(this.closest('table'),{i})\">{html.escape(c)}</th>"
        for i, c in enumerate(columns)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td>{_num(r.get(c)) if c != 'case_id' else html.escape(r[c])}</td>" for c in columns)
        + "</tr>"
        for r in sorted(cases, key=lambda r: r["C"])
    )
    return (
        f"<details><summary>{html.escape(name)} ({len(cases)} cases)</summary><table><thead><tr>{head}</tr>"
        f"</thead><tbody>{body}</tbody></table></details>"
    )


def _dataset(folder: Path) -> tuple[str, int]:
    """The folder name of the dataset the models trained on, and the number of classes they segment."""
    config = CrossvalFolder(folder).any_model_config()
    if config is None:
        return folder.name, 1
    run = load_config(config)
    return Path(run.data.path).name, run.model.num_classes


def _classes_note(classes: int) -> str:
    return f" ({classes} classes)" if classes > 1 else ""


def _places(hardware_by_fold: dict[str, str | None], calls: Sequence[dict]) -> str:
    """Where each fold of a method was evaluated, as text.

    E.g. `x86_64 CPU, from runs.json (fold 0); NVIDIA H200 (folds 1, 2)`: a fold evaluated before
    the hardware was recorded per fold takes the hardware of `calls` (runs.json) if they all ran on one.
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
    """The hardware every call ran on (`x86_64 CPU, from runs.json`), if they all ran on the same."""
    places = {call["hardware"].split(",")[0] for call in calls}
    return f"{places.pop()}, from runs.json" if len(places) == 1 else None


def _places_note(summary: dict, calls: Sequence[dict]) -> list[str]:
    """The lines under the hardware table that say what `from runs.json` means, where a row says it."""
    unrecorded = any(None in s.get("hardware_by_fold", {}).values() for s in summary.values())
    if not (unrecorded and _sole_hardware(calls)):
        return []
    return [
        "From runs.json: evaluated before the hardware was recorded per fold, on the hardware that every"
        " call listed in runs.json ran on.",
        "",
    ]


def _pm(summary: dict, key: str) -> str:
    """`mean ± std` over folds of a per-fold summary value; the value alone from a single fold."""
    mean, std = summary.get(f"{key}_mean"), summary.get(f"{key}_std")
    if mean is None:
        return "—"
    return f"{mean:.3f}" if summary.get("n_folds", 0) < 2 else f"{mean:.3f} ± {std or 0:.3f}"


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"
