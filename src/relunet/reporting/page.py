"""The report of a cross-validation folder: tables.md, figures/*.png and one self-contained report.html.

Reads only files (summary.json, per-case tables, saved predictions, the dataset); no model.
"""

from __future__ import annotations

import base64
import html
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from relunet.atomic import write_text
from relunet.config import load_config
from relunet.errors import InputError, first_line
from relunet.evaluation.crossval_cases import CrossvalCases
from relunet.reporting import figures
from relunet.reporting.tables import (
    RELATION,
    classes_note,
    number_text,
    read_rows,
    read_summary,
    render_tables,
)
from relunet.results_folder import results_folder
from relunet.rundir import CrossvalFolder

STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:auto}"
    "table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "th{cursor:pointer;background:#eee}img{max-width:100%}figure{margin:1em 0}details{margin:.5em 0}"
)
PANELS = 12
#: the figures a report draws, by file name under report/figures/ (the last two need a Relation U-Net)
FIGURES = ("pearson", "coverage", "risk_coverage", "scatter", "ranked_cases", "union_inter")


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
        title = f"{dataset}{classes_note(classes)}, {n_folds} fold{'s' if n_folds > 1 else ''}"
        labels = figures.fold_labels(summary)
        png = {name: out / "figures" / f"{name}.png" for name in FIGURES}
        figs = [
            figures.pearson_bars(summary, png["pearson"], f"Pearson per method — {title}", labels),
            figures.coverage_curves(rows, png["coverage"], f"Dice vs coverage — {title}", labels),
            figures.risk_coverage_curves(rows, png["risk_coverage"], f"Risk–coverage — {title}", labels),
            figures.scatter_grid(rows, png["scatter"], f"Confidence vs Dice — {title}", labels),
        ]
        ranked, relations = _case_panels(folder, rows.get(RELATION, []), data)
        if ranked:
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


def _case_panels(folder: Path, cases: list[dict], data: Path | None) -> tuple[list[dict], list[dict]]:
    """Panels for the ranked-cases figure and the union/intersection figure.

    Drawn from the cases whose saved masks are on this machine: a fold restored from the published
    tables has none (masks are not published), and a report of such folds alone has no case figures.
    """
    saved = [row for row in cases if prediction_path(folder, row).exists()]
    if not saved:
        return [], []
    dataset = CrossvalCases(folder, data)
    ranked, relations = [], []
    for row in panel_cases(saved):
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
        + "".join(
            f"<td>{number_text(r.get(c)) if c != 'case_id' else html.escape(r[c])}</td>" for c in columns
        )
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
