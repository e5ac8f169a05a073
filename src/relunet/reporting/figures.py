"""Figures of a cross-validation, drawn with matplotlib (the only module that imports it)."""

from __future__ import annotations

import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from relunet.atomic import atomic_path  # noqa: E402
from relunet.evaluation.metrics import risk_coverage  # noqa: E402
from relunet.evaluation.summary import COVERAGES  # noqa: E402

Rows = dict[str, list[dict]]
COLOURS = [matplotlib.colormaps["tab20"](i) for i in range(20)]
FIXED = {
    "unet": "tab:gray",
    "relation_self_pair": "tab:red",
    "ensemble_5": "tab:green",
    "unet_flip_tta": "tab:purple",
    "mcdropout_n20": "tab:blue",
    "mcdropout_n200": "tab:cyan",
    "relation_anchors_train_n200": "tab:orange",
    "relation_anchors_test_n200": "tab:brown",
    "relation_anchors_train_n10": "gold",
    "relation_anchors_test_n10": "tab:pink",
}


def fold_labels(summary: dict) -> dict[str, str]:
    """Each method's name in the figures; a method run on fewer folds than the others says how many."""
    most = max((s["n_folds"] for s in summary.values()), default=0)
    return {
        name: name if s["n_folds"] == most else f"{name} ({s['n_folds']}/{most} folds)"
        for name, s in summary.items()
    }


def pearson_bars(summary: dict, path: Path, title: str, labels: dict[str, str]) -> Path:
    """Fig. 4a: Pearson of confidence and Dice per method, mean ± std over folds.

    `labels`: each method's name in the figure (`fold_labels`). A method run on one fold has no
    error bar.
    """
    names = [m for m in summary if summary[m].get("pearson_mean") is not None]
    means = [summary[m]["pearson_mean"] for m in names]
    stds = [np.nan if summary[m]["n_folds"] == 1 else summary[m]["pearson_std"] or 0 for m in names]
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(names)), 3.6))
    ax.bar(range(len(names)), means, yerr=stds, color=[_colour(n) for n in names], capsize=3)
    ax.set_xticks(range(len(names)), [labels[m] for m in names], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("Pearson(confidence, Dice)")
    ax.set_ylim(min([0, *means]) - 0.05, 1)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_title(title)
    return save_figure(fig, path)


def coverage_curves(rows: Rows, path: Path, title: str, labels: dict[str, str]) -> Path:
    """Fig. 4b: mean Dice of the d % most confident cases, per method (cases of all its folds)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, cases in rows.items():
        conf, dice = _arrays(cases)
        order = np.argsort(-conf, kind="stable")
        kept = [dice[order[: max(1, int(np.ceil(d / 100 * len(dice))))]].mean() for d in COVERAGES]
        ax.plot(COVERAGES, kept, marker="o", markersize=3, label=labels[name], color=_colour(name))
    ax.set_xlabel("cases kept, most confident first (%)")
    ax.set_ylabel("mean Dice of kept cases")
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def risk_coverage_curves(rows: Rows, path: Path, title: str, labels: dict[str, str]) -> Path:
    """Risk (1 - Dice) of the kept cases against coverage, per method."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, cases in rows.items():
        conf, dice = _arrays(cases)
        coverage, risk = risk_coverage(conf, 1 - dice)
        ax.step(coverage, risk, where="post", label=labels[name], color=_colour(name))
    ax.set_xlabel("coverage")
    ax.set_ylabel("selective risk (1 − Dice)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def scatter_grid(rows: Rows, path: Path, title: str, labels: dict[str, str]) -> Path:
    """Confidence against Dice, one panel per method."""
    n = len(rows)
    cols = min(4, n)
    fig, axes = plt.subplots(-(-n // cols), cols, figsize=(3 * cols, 2.8 * -(-n // cols)), squeeze=False)
    for ax, (name, cases) in zip(axes.flat, rows.items(), strict=False):
        conf, dice = _arrays(cases)
        ax.scatter(conf, dice, s=8, alpha=0.6, color=_colour(name))
        ax.set_title(labels[name], fontsize=8)
        ax.set_xlabel("confidence", fontsize=8)
        ax.set_ylabel("Dice", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title)
    return save_figure(fig, path)


def case_panels(panels: list[dict], path: Path, title: str) -> Path:
    """Cases as images with contours and a caption each.

    Each panel: `image` `(H, W)` or `(H, W, 3)` in [0, 1], `contours` a list of
    `(mask (H, W) bool, colour, label)`, and `caption`.
    """
    cols = min(6, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.9 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        ax.imshow(panel["image"], cmap="gray", interpolation="nearest")
        for mask, colour, _ in panel["contours"]:
            if mask.any() and not mask.all():
                ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=1)
        ax.set_title(panel["caption"], fontsize=7)
        ax.axis("off")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if panels:
        handles = [plt.Line2D([], [], color=c, label=lab) for _, c, lab in panels[0]["contours"]]
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)


def _arrays(cases: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([c["C"] for c in cases]), np.array([c["dice_seg_a"] for c in cases])


def _colour(name: str) -> str:
    """A fixed colour per method name, the same in every figure."""
    return COLOURS[zlib.crc32(name.encode()) % len(COLOURS)] if name not in FIXED else FIXED[name]


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Write `fig` as a PNG atomically and close it (also when the write fails)."""
    try:
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path
