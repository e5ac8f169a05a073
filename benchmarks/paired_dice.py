"""Where one method of a cross-validation gains or loses Dice against another, case by case.

    python benchmarks/paired_dice.py runs/crossval/isic relation_self_pair unet [--data PATH]

Pairs the test cases of every fold both methods have evaluated (their per_case.csv), reads both
methods' saved masks (methods/<m>/fold_K/predictions/) and each case's ground truth, and writes
`paired_<a>_vs_<b>.md` and `.json` beside the cross-validation's published tables
(docs/crossval/<name>/, or --docs): the mean paired Dice difference, the share of cases each
method wins, the difference by fifth of the second method's Dice, and where the errors are
(predicted over true foreground, false-positive and false-negative voxels per case).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from relunet.atomic import write_json, write_text
from relunet.config import load_config
from relunet.data.layouts import index_dataset, load_case
from relunet.data.preprocess import label_targets
from relunet.errors import InputError, guarded

ROOT = Path(__file__).resolve().parents[1]
#: per-case counts read from the masks, per method
COUNTS = ("true", "predicted", "tp", "fp", "fn")


def paired_cases(folder: Path, first: str, second: str, data: Path | None = None) -> list[dict]:
    """One row per test case both methods evaluated: fold, case id, each method's Dice and mask counts.

    Counts are voxels summed over classes: `true` and `predicted` foreground, `tp`, `fp`, `fn`.
    """
    folds = sorted(
        set(_folds(folder, first)) & set(_folds(folder, second)), key=lambda name: int(name.split("_")[1])
    )
    if not folds:
        raise InputError(
            f"{folder}/methods: {first} and {second} share no evaluated fold; evaluate both first"
        )
    config = load_config(next((folder / "models").glob("*/config.yaml")))
    source = Path(data or config.data.path)
    if not source.exists():
        raise InputError(
            f"{source}: the dataset the models trained on is not there; give its place with --data"
        )
    index = index_dataset(source)
    files = {c.case_id: c for c in index.cases}
    rows = []
    for fold in folds:
        dice = {m: _dice_by_case(folder / "methods" / m / fold / "per_case.csv") for m in (first, second)}
        for case_id in dice[first]:
            if case_id not in dice[second]:
                continue
            case = load_case(files[case_id], index.labels)
            truth = label_targets(case.label, config.data.label_sets).astype(bool)
            row = {"fold": int(fold.split("_")[1]), "case_id": case_id}
            for m in (first, second):
                predicted = _saved_mask(folder / "methods" / m / fold / "predictions" / f"{case_id}.npz")
                row[m] = {"dice": dice[m][case_id], **_counts(predicted, truth)}
            rows.append(row)
    return rows


def compare(rows: list[dict], first: str, second: str) -> dict:
    """Paired statistics of `first` minus `second` over `rows` from `paired_cases`."""
    a = np.array([r[first]["dice"] for r in rows])
    b = np.array([r[second]["dice"] for r in rows])
    diff = a - b
    folds = np.array([r["fold"] for r in rows])
    edges = np.quantile(b, np.linspace(0, 1, 6))
    fifth = np.clip(np.searchsorted(edges, b, side="right") - 1, 0, 4)
    return {
        "first": first,
        "second": second,
        "cases": len(rows),
        "mean_difference": float(diff.mean()),
        "ci95": float(1.96 * diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None,
        "median_difference": float(np.median(diff)),
        "first_better": float(np.mean(diff > 0)),
        "second_better": float(np.mean(diff < 0)),
        "by_fold": {int(k): float(diff[folds == k].mean()) for k in np.unique(folds)},
        "by_fifth": [
            {
                "second_dice": [float(edges[k]), float(edges[k + 1])],
                "cases": int(np.sum(fifth == k)),
                "mean_difference": float(diff[fifth == k].mean()),
                **{
                    m: _errors([r[m] for r, f in zip(rows, fifth, strict=True) if f == k])
                    for m in (first, second)
                },
            }
            for k in range(5)
            if np.any(fifth == k)
        ],
        **{m: _errors([r[m] for r in rows]) for m in (first, second)},
    }


def render(stats: dict) -> str:
    """Markdown of `compare`'s result."""
    a, b = stats["first"], stats["second"]
    ci = f" ± {stats['ci95']:.4f} (95 % CI)" if stats["ci95"] is not None else ""
    lines = [
        f"# Paired Dice: {a} vs {b}",
        "",
        f"{stats['cases']} test cases evaluated by both. Dice of `{a}` minus Dice of `{b}`: mean "
        f"{stats['mean_difference']:+.4f}{ci}, median {stats['median_difference']:+.4f}; `{a}` is better "
        f"on {stats['first_better']:.0%} of the cases, `{b}` on {stats['second_better']:.0%}.",
        "",
        "By fold: " + ", ".join(f"fold {k} {v:+.4f}" for k, v in stats["by_fold"].items()) + ".",
        "",
        "Errors in voxels per case, all classes together; area = predicted over true foreground (median "
        "over the cases with foreground).",
        "",
        f"| cases by Dice of `{b}` | cases | Dice difference | `{a}` area | `{a}` FP | `{a}` FN "
        f"| `{b}` area | `{b}` FP | `{b}` FN |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for part in [*stats["by_fifth"], {**stats, "second_dice": None}]:
        low_high = part["second_dice"]
        label = "all" if low_high is None else f"{low_high[0]:.3f} – {low_high[1]:.3f}"
        cells = [label, str(part["cases"]), f"{part['mean_difference']:+.4f}"]
        for m in (a, b):
            e = part[m]
            cells += [_ratio(e["median_area_ratio"]), f"{e['mean_fp']:.0f}", f"{e['mean_fn']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _folds(folder: Path, method: str) -> list[str]:
    return [p.parent.name for p in (folder / "methods" / method).glob("fold_*/per_case.csv")]


def _dice_by_case(path: Path) -> dict[str, float]:
    with path.open() as handle:
        return {row["case_id"]: float(row["dice_seg_a"]) for row in csv.DictReader(handle)}


def _saved_mask(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(
            f"{path}: the saved masks of this case are missing; copy the fold's predictions/ back"
        )
    return np.load(path)["seg_a"]


def _counts(predicted: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    """Voxel counts of `(K, *S)` boolean masks against `(K, *S)` truth."""
    if predicted.shape != truth.shape:
        raise InputError(
            f"saved mask {predicted.shape} and ground truth {truth.shape} differ; re-run the evaluation"
        )
    values = (
        truth.sum(),
        predicted.sum(),
        (predicted & truth).sum(),
        (predicted & ~truth).sum(),
        (~predicted & truth).sum(),
    )
    return {name: int(v) for name, v in zip(COUNTS, values, strict=True)}


def _errors(cases: list[dict]) -> dict[str, float | None]:
    ratios = [c["predicted"] / c["true"] for c in cases if c["true"] > 0]
    return {
        "median_area_ratio": float(np.median(ratios)) if ratios else None,
        "mean_fp": float(np.mean([c["fp"] for c in cases])),
        "mean_fn": float(np.mean([c["fn"] for c in cases])),
    }


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a cross-validation folder (runs/crossval/<name>)")
    parser.add_argument("first", help="method whose Dice is compared, e.g. relation_self_pair")
    parser.add_argument("second", help="the method it is compared with, e.g. unet")
    parser.add_argument("--data", type=Path, default=None, help="the dataset, where it moved since training")
    parser.add_argument("--docs", type=Path, default=None, help="default docs/crossval/<folder name>")
    args = parser.parse_args()
    if not (args.folder / "models").is_dir():
        raise InputError(
            f"{args.folder}: not a cross-validation folder (no models/); give runs/crossval/<name>"
        )
    rows = paired_cases(args.folder, args.first, args.second, args.data)
    stats = compare(rows, args.first, args.second)
    docs = args.docs or ROOT / "docs" / "crossval" / args.folder.name
    stem = docs / f"paired_{args.first}_vs_{args.second}"
    write_json(stem.with_suffix(".json"), stats)
    write_text(stem.with_suffix(".md"), render(stats))
    print(render(stats))


if __name__ == "__main__":
    guarded(main)
