"""How many cases must an expert look at, for which promise? Measured on the published cross-validations.

    python benchmarks/review_check.py [--splits 500] [--out docs] [--crossval docs/crossval]

Reads the out-of-fold cases of the published 5-fold cross-validations
(`<crossval>/<dataset>/methods/<method>/fold_K/per_case.csv`; a method missing a fold is skipped)
and pools each method's folds. For `--splits` seeded calibration/test splits per calibration size
(the same splits for every method of a dataset), it fits the review flag on the calibration part
with both guarantees (expected: conformal selection; high-probability: Learn-then-Test) and judges
it on the test part: the share flagged beside the oracle, and whether the promise held. Also: the
high-probability procedure from several starts, own-fold against pooled calibration, and the Dice
interval and estimate. Writes `<out>/review.md`, `<out>/review/review_check.json` and the figures
`<out>/review/*.png`. The analysis: `relunet.analysis.review_promise`; the page:
`relunet.analysis.review_promise_page`; this script parses the arguments and writes the files.
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
    MIN_TEST,
    RISKS,
    TARGET_DICE,
    TARGETS,
    check_dataset,
    estimate_split,
    fold_mix_check,
    ltt_procedures,
    read_scores,
)
from relunet.analysis.review_promise_page import HEADLINE, TARGET_CHECK, render  # noqa: E402
from relunet.atomic import write_json, write_text  # noqa: E402
from relunet.errors import InputError, guarded  # noqa: E402
from relunet.evaluation.decision import GUARANTEES  # noqa: E402
from relunet.reporting.figures import save_figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("hippocampus", "isic", "isic_100_epochs", "hippocampus_2class")
#: the risk and calibration size of the figures
FIGURE_RISK, FIGURE_SIZE = 0.1, 100
#: the most test cases the figure of estimated against true Dice shows
FIGURE_CASES = 300
#: the scores whose own-fold and pooled calibrations are compared: the ways `relunet predict` scores
FOLD_MIX_SCORES = ("relation_self_pair", "unet")
#: the numbers of starts of the high-probability procedures compared, and their calibration sizes
STARTS, PROCEDURE_SIZES = (1, 2, 3, 5), (50, 100, 200)


def estimate_figure(row: dict, dataset: str, path: Path) -> Path:
    """Estimated against true Dice, with intervals, of one split's test cases; flagged cases in red.

    The cases and numbers of `estimate_split`: at most `FIGURE_CASES` test cases, a seeded sample;
    the coverage in the title is over all test cases of the split.
    """
    shown = estimate_split(row, FIGURE_SIZE, FIGURE_CASES)
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
        f"interval coverage {shown['coverage']:.3f}; flagged at α = {FIGURE_RISK:g}, guarantee expected",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper left")
    return save_figure(fig, path)


def flagged_figure(settings: list[dict], dataset: str, target: float, path: Path) -> Path:
    """Bar chart: mean share of test cases flagged per headline score and guarantee, at `FIGURE_RISK`.

    Calibration size `FIGURE_SIZE` (the largest below it where the data allow none), target Dice
    `target`; a black tick marks the oracle: the fewest cases a threshold on that score could flag.
    """
    sizes = sorted({s["n_cal"] for s in settings})
    n_cal = max([n for n in sizes if n <= FIGURE_SIZE] or sizes[:1])
    shown = {}
    for label, names in HEADLINE:
        found = [s for s in settings if s["score"] in names and s["n_cal"] == n_cal]
        if found:
            shown[label] = min(found, key=lambda s: names.index(s["score"]))
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(shown) + 1.5))
    height = 0.8 / len(GUARANTEES)
    labels = list(shown)
    for k, guarantee in enumerate(GUARANTEES):
        values = [_at(shown[name], target, guarantee)["flagged"] for name in labels]
        ax.barh(np.arange(len(labels)) + k * height, values, height, label=guarantee)
    middle = np.arange(len(labels)) + 0.4 - height / 2
    oracle = [_at(shown[name], target, GUARANTEES[0])["oracle_flagged"] for name in labels]
    ax.plot(oracle, middle, "|", color="black", ms=14, mew=2, label="oracle")
    ax.set_yticks(middle, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="share of test cases sent to an expert (lower is better)")
    ax.set_title(
        f"{dataset}: at most {FIGURE_RISK:g} of accepted cases with Dice < {target:g}, n_cal = {n_cal}",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper right")
    return save_figure(fig, path)


def _at(setting: dict, target: float, guarantee: str) -> dict:
    """The decision at `target`, `FIGURE_RISK` and `guarantee` of one setting of `check_dataset`."""
    return next(
        d
        for d in setting["decisions"]
        if d["target_dice"] == target and d["risk"] == FIGURE_RISK and d["guarantee"] == guarantee
    )


def run(crossval: Path, out: Path, splits: int, command: str) -> dict:
    """Check every dataset found under `crossval`; write the page, the JSON and the figures under `out`."""
    found = [d for d in DATASETS if (crossval / d / "methods").is_dir()]
    if not found:
        raise InputError(f"{crossval}: none of {', '.join(DATASETS)} has a methods/ folder; see --crossval")
    if splits < 1:
        raise InputError(f"--splits {splits}: give at least 1")
    start, cpu_start = time.perf_counter(), time.process_time()
    datasets = {}
    procedures = []
    for dataset in found:
        rows, skipped = read_scores(crossval / dataset)
        targets = TARGETS.get(dataset, (TARGET_DICE,))
        settings = check_dataset(rows, splits, targets)
        figures = _figures(rows, settings, dataset, max(targets), out / "review")
        mix = {n: fold_mix_check(rows[n], FIGURE_SIZE, splits) for n in FOLD_MIX_SCORES if n in rows}
        datasets[dataset] = {
            "skipped": skipped,
            "targets": list(targets),
            "figures": figures,
            "settings": settings,
            "fold_mix": {name: entry for name, entry in mix.items() if entry is not None},
        }
        if dataset == TARGET_CHECK["dataset"] and TARGET_CHECK["score"] in rows:
            row = rows[TARGET_CHECK["score"]]
            procedures = [
                ltt_procedures(row, n_cal, splits, STARTS, risk)
                for n_cal in PROCEDURE_SIZES
                if len(row["score"]) - n_cal >= MIN_TEST
                for risk in RISKS
            ]
    results = {
        "command": command,
        "splits": splits,
        "risks": list(RISKS),
        "delta": DELTA,
        "coverage": COVERAGE,
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
        "procedures": procedures,
        "datasets": datasets,
    }
    write_json(out / "review" / "review_check.json", results)
    write_text(out / "review.md", render(results))
    return results


def _figures(
    rows: dict[str, dict], settings: list[dict], dataset: str, target: float, figures: Path
) -> list[str]:
    """Draw the dataset's figures (the share flagged at the target Dice `target`); their file names."""
    names = [flagged_figure(settings, dataset, target, figures / f"flagged_{dataset}.png").name]
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
