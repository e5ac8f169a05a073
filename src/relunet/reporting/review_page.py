"""The review worklist: one offline HTML page over a calibrated prediction folder, most doubtful first.

A reviewer walks through the cases with the keyboard, sees each image with the predicted contour
and the disagreement of the union and intersection heads ("where to look"), marks it accepted or
needing correction, and exports the marks as CSV. 2D cases are embedded pictures; 3D cases open
in NiiVue, inlined from `vendor/` (no network at view time). Reads files only; no model.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import math
import re
from importlib import resources
from pathlib import Path

from relunet.atomic import write_text
from relunet.data.readers import file_kind
from relunet.errors import InputError
from relunet.evaluation.calibration_store import file_sha256
from relunet.evaluation.decision import HIGH_PROBABILITY, Promise
from relunet.inference.prediction_records import ONE_SCORE_WARNING, scores_cannot_rank
from relunet.reporting.review_media import picture_layers, volume_layers

PAGE_NAME = "review.html"
ESTIMATE_COLUMNS = ("estimated_dice", "dice_low", "dice_high", "review")
REQUIRED_COLUMNS = ("case_id", "score", *ESTIMATE_COLUMNS, "mask")
PLACEHOLDER = re.compile(r"\{\{([A-Z]+)\}\}")
#: the p-values of the batch check shown beside a shift warning, by key of prediction.json's "shift"
SHIFT_PVALUES = {"score_pvalue": "scores", "image_pvalue": "images", "pvalue": "smallest (corrected)"}


def write_review_page(pred_dir: Path, out: Path | None = None) -> Path:
    """Write the worklist page of the prediction folder `pred_dir` (default `pred_dir/review.html`).

    Every input is checked before anything is written; an uncalibrated folder, a missing column or
    an unreadable image or mask is one `InputError` line naming the file and the fix. Returns the page.
    """
    pred_dir = Path(pred_dir)
    record = read_record(pred_dir)
    cases = [load_case(pred_dir, row) for row in read_rows(pred_dir)]
    target = Path(out) if out is not None else pred_dir / PAGE_NAME
    write_text(target, render_page(pred_dir, record, cases))
    return target


def read_record(pred_dir: Path) -> dict:
    """`prediction.json`, refused unless the prediction was calibrated."""
    path = pred_dir / "prediction.json"
    record = _read_json(path, f"{pred_dir} is not a folder written by `relunet predict`")
    if not record.get("calibrated") or not isinstance(record.get("promise"), dict):
        raise _uncalibrated(pred_dir)
    return record


def read_rows(pred_dir: Path) -> list[dict]:
    """The rows of `cases.csv`, in its order (most doubtful first)."""
    path = pred_dir / "cases.csv"
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            rows, columns = list(reader), reader.fieldnames or []
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or 'unreadable'}; run `relunet predict` again") from err
    if any(c not in columns for c in ESTIMATE_COLUMNS):
        raise _uncalibrated(pred_dir)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; run `relunet predict` again")
    if not rows:
        raise InputError(f"{path}: no cases to review; run `relunet predict` on a folder of images")
    ids = [r["case_id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: a case is listed twice; run `relunet merge` or `relunet predict` again")
    return rows


def load_case(pred_dir: Path, row: dict) -> dict:
    """One case for the page: its numbers, whether it is 2D or 3D, and what the viewer shows."""
    case_id = row["case_id"]
    record = _read_json(pred_dir / "cases" / f"{case_id}.json", "run `relunet predict` again")
    image = _image_path(pred_dir, case_id, record)
    mask = pred_dir / row["mask"]
    disagreement = pred_dir / row["disagreement"] if row.get("disagreement") else None
    kind = file_kind(image)
    if kind is None:
        raise InputError(f"{image}: not a NIfTI or picture file; the review page shows only those")
    layers = volume_layers if kind == "nifti" else picture_layers
    return {
        "id": case_id,
        "kind": "3d" if kind == "nifti" else "2d",
        "score": _number(row, "score", pred_dir),
        "estimated": _number(row, "estimated_dice", pred_dir),
        "low": _number(row, "dice_low", pred_dir),
        "high": _number(row, "dice_high", pred_dir),
        "flagged": str(row["review"]).strip().lower() in ("true", "1", "yes"),
        "sha256": record.get("image_sha256"),
        "media": layers(image, mask, disagreement),
    }


def render_page(pred_dir: Path, record: dict, cases: list[dict]) -> str:
    """The whole HTML page: header, worklist table, viewer, data, and NiiVue when a case is 3D."""
    data = {
        "key": page_key(record, cases),
        "name": pred_dir.resolve().name,
        "cases": [{k: v for k, v in c.items() if k not in ("media", "sha256")} for c in cases],
        "media": {c["id"]: c["media"] for c in cases},
    }
    niivue = _resource("vendor/niivue.umd.js") if any(c["kind"] == "3d" for c in cases) else ""
    fields = {
        "TITLE": html.escape(f"Review — {data['name']}"),
        "HEADER": render_header(pred_dir, record, cases),
        "ROWS": "\n".join(render_row(i, c) for i, c in enumerate(cases)),
        "DATA": _script_json(data),
        "NIIVUE": niivue,
    }
    return PLACEHOLDER.sub(lambda m: fields[m.group(1)], _resource("templates/review_page.html"))


def render_header(pred_dir: Path, record: dict, cases: list[dict]) -> str:
    """Counts, the promise in words, and the warnings: one score for every case, batch shift."""
    promise = record["promise"]
    words = recorded_promise(promise).words()
    flagged = sum(c["flagged"] for c in cases)
    threshold = promise.get("threshold")
    rule = (
        f"score below {threshold:.3f}"
        if threshold is not None
        else "no case can be accepted under this promise with these calibration cases: all are flagged"
    )
    lines = [
        f'<h1>Review worklist <span class="folder">{html.escape(str(pred_dir.resolve()))}</span></h1>',
        f"<p><strong>{len(cases)}</strong> case{'s' * (len(cases) != 1)}, "
        f'<strong class="flag-text" id="n-flagged">{flagged}</strong> flagged for an expert '
        f'({html.escape(rule)}); <span id="progress"></span></p>',
        f'<p class="promise"><strong>The flag’s promise:</strong> {html.escape(words)}. '
        f"Dice intervals hold the true Dice with probability {float(promise['coverage']):.0%}.</p>",
        '<p class="buys"><strong>What the flag buys:</strong> '
        f"{html.escape(_buys(promise, flagged, len(cases)))}</p>",
    ]
    if record.get("score_id"):  # records written before it was recorded say nothing
        passes = record.get("forward_passes")
        lines.append(
            f'<p class="score-by"><strong>Score:</strong> {html.escape(str(record["score_id"]))}'
            + (f" ({int(passes)} forward passes per image)" if passes else "")
            + "</p>"
        )
    if scores_cannot_rank(record):
        lines.append(_warning_box(f"Warning: {html.escape(ONE_SCORE_WARNING)}."))
    shift = record.get("shift") or {}
    if shift.get("warn"):
        lines.append(render_warning(shift))
    return "\n".join(lines)


def _buys(promise: dict, flagged: int, n_cases: int) -> str:
    """One sentence: what checking the flagged cases buys."""
    if flagged == n_cases:
        return "an expert checks every case; under this promise none can go through unchecked."
    return (
        f"an expert checks the {flagged} flagged case{'s' * (flagged != 1)} and the other "
        f"{n_cases - flagged} go through unchecked, with that promise on how many of them fall "
        f"below Dice {float(promise['target_dice']):g}."
    )


def recorded_promise(promise: dict) -> Promise:
    """The `Promise` of `prediction.json`'s "promise" (records before `guarantee`: high-probability)."""
    levels = (float(promise[k]) for k in ("target_dice", "risk", "delta", "coverage"))
    return Promise(*levels, guarantee=promise.get("guarantee", HIGH_PROBABILITY))


def render_warning(shift: dict) -> str:
    """The visible batch-shift warning with its p-values."""
    found = [(label, shift.get(key)) for key, label in SHIFT_PVALUES.items()]
    found += [(str(name).replace("_", " "), p) for name, p in (shift.get("pvalues") or {}).items()]
    found = [(label, p) for label, p in found if _is_number(p)]
    pvalues = " · ".join(f"{html.escape(label)}: p = {p:.2g}" for label, p in found)
    return _warning_box(
        "Warning: this batch differs from the calibration cases; the flag may not keep its promise.",
        f" P-values: {pvalues}." if pvalues else "",
    )


def _warning_box(headline: str, details: str = "") -> str:
    """A visible alert above the worklist: `headline` in bold, then `details` (both HTML)."""
    return f'<div class="warning" role="alert"><strong>{headline}</strong>{details}</div>'


def render_row(index: int, case: dict) -> str:
    """One table row: rank, case, score, estimated Dice and interval, flag, decision (set by the script)."""
    flag = '<span class="flag">⚑ flagged</span>' if case["flagged"] else '<span class="ok">–</span>'
    interval = f"{_fmt(case['low'], 2)}–{_fmt(case['high'], 2)}"
    dice = f"{_fmt(case['estimated'], 2)} <span class='interval'>({interval})</span>"
    classes = "flagged" if case["flagged"] else ""
    return (
        f'<tr data-case="{html.escape(case["id"])}" class="{classes}">'
        f'<td class="rank">{index + 1}</td><td class="case">{html.escape(case["id"])}</td>'
        f'<td class="num">{_fmt(case["score"], 3)}</td><td class="num">{dice}</td>'
        f'<td>{flag}</td><td class="decision"></td></tr>'
    )


def page_key(record: dict, cases: list[dict]) -> str:
    """The page's identity for the browser's saved marks: a hash of the cases, their scores and the model."""
    identity = [[c["id"], c["score"] if math.isfinite(c["score"]) else None, c["sha256"]] for c in cases]
    text = json.dumps([identity, record.get("model")], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _image_path(pred_dir: Path, case_id: str, record: dict) -> Path:
    """The case's first input image, checked against the checksum `predict` recorded."""
    json_path = pred_dir / "cases" / f"{case_id}.json"
    images = record.get("image")
    if not isinstance(images, list) or not images:
        raise InputError(f"{json_path}: no image list; run `relunet predict` again")
    image = Path(images[0])
    if not image.is_file():
        raise InputError(f"{image}: image of case {case_id} not found; restore it or predict again")
    expected = record.get("image_sha256")
    expected = expected[0] if isinstance(expected, list) and expected else expected
    if isinstance(expected, str) and file_sha256(image) != expected:
        raise InputError(f"{image}: changed since `relunet predict` (checksum differs); predict again")
    return image


def _read_json(path: Path, fix: str) -> dict:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise InputError(f"{path}: not found; {fix}") from err
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: unreadable ({type(err).__name__}); {fix}") from err
    if not isinstance(value, dict):
        raise InputError(f"{path}: not a JSON object; {fix}")
    return value


def _uncalibrated(pred_dir: Path) -> InputError:
    return InputError(
        f"{pred_dir}: predictions without estimated Dice or review flags; "
        "run `relunet calibrate RUN DATA`, then `relunet predict` again"
    )


def _number(row: dict, column: str, pred_dir: Path) -> float:
    try:
        return float(row[column]) if str(row[column]).strip() else math.nan
    except ValueError as err:
        raise InputError(
            f"{pred_dir / 'cases.csv'}: {column} of {row['case_id']} is {row[column]!r}, not a number; "
            "run `relunet predict` again"
        ) from err


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def _script_json(value: object) -> str:
    """JSON safe inside a `<script>` element (no `<`, so no `</script>`); NaN becomes null."""
    text = json.dumps(_finite(value), ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _resource(name: str) -> str:
    return resources.files("relunet.reporting").joinpath(name).read_text(encoding="utf-8")
