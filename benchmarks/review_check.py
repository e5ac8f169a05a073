"""Does the review promise hold on real out-of-fold cases, and how many cases does it send to an expert?

    python benchmarks/review_check.py [--splits 500] [--out docs] [--crossval docs/crossval]

Reads the out-of-fold cases of the published 5-fold cross-validations
(`<crossval>/<dataset>/methods/<method>/fold_K/per_case.csv`; a method missing a fold is skipped)
and pools each method's folds. The score is a method's `C` column, and `C_pairwise` as its own
row where present; the truth is `dice_seg_a`. For `--splits` seeded random calibration/test splits
per calibration size (the same splits for every method of a dataset), it calibrates with
`relunet.evaluation.calibration` on the calibration part and scores the test part: how often the
promise "among accepted cases at most α have Dice < τ" was broken, the interval's coverage, the
estimated Dice's error and the fraction of cases sent to an expert. Writes `<out>/review.md`,
`<out>/review/review_check.json` and the figures `<out>/review/*.png`.
The analysis: `relunet.analysis.review_promise`; this script parses the arguments and writes the files.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from relunet.analysis.review_promise import (  # noqa: E402
    COVERAGE,
    DELTA,
    FIGURE_RISK,
    FIGURE_SIZE,
    MIN_TEST,
    RISKS,
    TARGET_DICE,
    at_risk,
    check_dataset,
    estimate_split,
    noise_bound,
    read_scores,
    render,
)
from relunet.atomic import write_json, write_text  # noqa: E402
from relunet.errors import InputError, guarded  # noqa: E402
from relunet.reporting.figures import save_figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("hippocampus", "isic", "isic_100_epochs", "hippocampus_2class")


def estimate_figure(row: dict, dataset: str, path: Path) -> Path:
    """Estimated against true Dice, with intervals, of one split's test cases; flagged cases in red.

    The cases and numbers of `estimate_split`: at most `FIGURE_CASES` test cases, a seeded sample;
    the coverage in the title is over all test cases of the split.
    """
    shown = estimate_split(row)
    dice, estimate, low, high, flagged = (shown[k] for k in ("dice", "estimate", "low", "high", "flagged"))
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for mask, colour, label in (
        (~flagged, "tab:blue", "accepted"),
        (flagged, "tab:red", "sent to an expert"),
    ):
        ax.vlines(dice[mask], low[mask], high[mask], color=colour, lw=0.5, alpha=0.3)
        ax.plot(
            dice[mask],
            estimate[mask],
            "o",
            ms=3,
            alpha=0.7,
            color=colour,
            label=f"{label} ({mask.sum()})",
        )
    ax.plot([0, 1], [0, 1], color="gray", lw=0.8)
    ax.axvline(TARGET_DICE, color="gray", lw=0.6, ls="--")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="true Dice", ylabel=f"estimated Dice and {COVERAGE:.0%} interval")
    ax.set_title(
        f"{dataset}: relation_self_pair, n_cal = {FIGURE_SIZE}, one split, {len(dice)} test cases shown\n"
        f"interval coverage {shown['coverage']:.3f}; flagged at α = {FIGURE_RISK:g}, δ = {DELTA:g}",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper left")
    return save_figure(fig, path)


def flagged_figure(settings: list[dict], dataset: str, path: Path) -> Path:
    """Bar chart: mean fraction of test cases flagged per score at `FIGURE_RISK`, per calibration size.

    A black tick marks the oracle: the fewest cases a threshold on that score could flag.
    """
    scores = list(dict.fromkeys(s["score"] for s in settings))
    sizes = sorted({s["n_cal"] for s in settings})
    fig, ax = plt.subplots(figsize=(8, 0.2 * len(scores) * (len(sizes) + 1) + 1.5))
    height = 0.8 / len(sizes)
    for k, n_cal in enumerate(sizes):
        values = {s["score"]: at_risk(s, FIGURE_RISK)["flagged"] for s in settings if s["n_cal"] == n_cal}
        y = np.arange(len(scores)) + k * height
        ax.barh(y, [values.get(name, np.nan) for name in scores], height, label=f"n_cal = {n_cal}")
    oracle = {s["score"]: at_risk(s, FIGURE_RISK)["oracle_flagged"] for s in settings}
    middle = np.arange(len(scores)) + 0.4 - height / 2
    ax.plot([oracle[name] for name in scores], middle, "|", color="black", ms=12, mew=2, label="oracle")
    ax.set_yticks(middle, scores, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="fraction of test cases sent to an expert (lower is better)")
    ax.set_title(
        f"{dataset}: at most {FIGURE_RISK:g} of accepted cases with Dice < {TARGET_DICE:g}, "
        f"confidence {1 - DELTA:.0%}",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


def run(crossval: Path, out: Path, splits: int, command: str) -> dict:
    """Check every dataset found under `crossval`; write the page, the JSON and the figures under `out`."""
    found = [d for d in DATASETS if (crossval / d / "methods").is_dir()]
    if not found:
        raise InputError(f"{crossval}: none of {', '.join(DATASETS)} has a methods/ folder; see --crossval")
    if splits < 1:
        raise InputError(f"--splits {splits}: give at least 1")
    start, cpu_start = time.perf_counter(), time.process_time()
    datasets = {}
    for dataset in found:
        rows, skipped = read_scores(crossval / dataset)
        settings = check_dataset(rows, splits)
        figures = _figures(rows, settings, dataset, out / "review")
        datasets[dataset] = {"skipped": skipped, "figures": figures, "settings": settings}
    results = {
        "command": command,
        "splits": splits,
        "target_dice": TARGET_DICE,
        "risks": list(RISKS),
        "delta": DELTA,
        "coverage": COVERAGE,
        "noise_bound": noise_bound(splits),
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
        "datasets": datasets,
    }
    write_json(out / "review" / "review_check.json", results)
    write_text(out / "review.md", render(results))
    return results


def _figures(rows: dict[str, dict], settings: list[dict], dataset: str, figures: Path) -> list[str]:
    """Draw the dataset's figures; their file names."""
    names = [flagged_figure(settings, dataset, figures / f"flagged_{dataset}.png").name]
    if "relation_self_pair" in rows and len(rows["relation_self_pair"]["score"]) - FIGURE_SIZE >= MIN_TEST:
        path = figures / f"estimate_{dataset}.png"
        names.append(estimate_figure(rows["relation_self_pair"], dataset, path).name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=500, help="random calibration/test splits per setting")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="writes review.md and review/ here")
    parser.add_argument("--crossval", type=Path, default=ROOT / "docs" / "crossval")
    args = parser.parse_args()
    command = f"python benchmarks/review_check.py --splits {args.splits} --out {args.out}"
    if args.crossval != ROOT / "docs" / "crossval":
        command += f" --crossval {args.crossval}"
    results = run(args.crossval, args.out, args.splits, command)
    print(f"wrote {args.out / 'review.md'} in {results['seconds']} s ({results['cpu_seconds']} s of CPU)")


if __name__ == "__main__":
    guarded(main)
