"""Our cross-validated Dice beside the paper's published Tables 1 and 2."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from relunet.reporting.crossval_settings import crossval_link

#: the paper's Tables 1 and 2 as printed: Dice in %, `[mean, std]` per column and dataset
PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.json")
#: our dataset folder -> the paper's dataset, where they are the same data
SAME_DATA = {"Task04_Hippocampus": "Hippocampus"}
#: the paper's column holding each of our methods' Dice of `seg_a` (s1: the first input's head)
SEG_A_COLUMN = {
    "unet": "unet",
    "relation_self_pair": "s1",
    "mcdropout_n200": "mcdropout_n200",
    "relation_anchors_train_n200": "anchors_train_n200",
    "relation_anchors_test_n200": "anchors_test_n200",
}

#: the paper's column -> (its heading, our method, our per-case Dice column)
COLUMNS = {
    "unet": ("U-Net", "unet", "dice_seg_a"),
    "s1": ("s1", "relation_self_pair", "dice_seg_a"),
    "s2": ("s2", "relation_self_pair", "dice_seg_b"),
    "mean": ("(s1+s2)/2", "relation_self_pair", "dice_s1s2"),
    "union": ("union", "relation_self_pair", "dice_union"),
    "inter": ("intersection", "relation_self_pair", "dice_inter"),
    "mcdropout_n200": ("MC dropout n = 200", "mcdropout_n200", "dice_seg_a"),
    "anchors_train_n200": ("s1, 200 train anchors", "relation_anchors_train_n200", "dice_seg_a"),
    "anchors_test_n200": ("s1, 200 test anchors", "relation_anchors_test_n200", "dice_seg_a"),
}


@cache
def published() -> dict:
    """`paper_numbers.json`: source, note and the numbers per paper dataset."""
    return json.loads(PAPER_NUMBERS.read_text())


def paper_seg_a_dice(dataset_folder: str) -> dict[str, float]:
    """The paper's mean Dice (a fraction) per method of ours, for a dataset folder it also used.

    Empty for data the paper did not use (ISIC 2017 is not its ISIC 2018).
    """
    numbers = published()["datasets"].get(SAME_DATA.get(dataset_folder, ""), {})
    return {method: numbers[column][0] / 100 for method, column in SEG_A_COLUMN.items() if column in numbers}


def render_beside_paper(paper: Mapping, ours: Mapping[str, tuple[str, Mapping]]) -> str:
    """A markdown section: per paper dataset, the paper's row and a row per cross-validation of ours.

    `paper` is `published()` (Dice in %, `[mean, std]` per column);
    `ours` maps a cross-validation's name to (the paper dataset it stands beside, its
    `summary.json`). Our values are the mean ± std over folds of each fold's mean Dice, in %.
    """
    headings = [heading for heading, _, _ in COLUMNS.values()]
    lines = [
        "## Beside the paper",
        "",
        f"Dice in %, mean ± std over the folds. Paper: {paper['source']}. {paper['note']} Ours: the "
        "cross-validations above; — where that method was not run. Our data differ from the paper's "
        "(ISIC 2017 at 128 px against its ISIC 2018, MSD Task04 Hippocampus with both labels as one "
        "class); its split, preprocessing and network width are not published.",
        "",
        "| dataset | source | " + " | ".join(headings) + " |",
        "| --- | --- |" + " ---: |" * len(headings),
    ]
    for dataset, published in paper["datasets"].items():
        lines.append(f"| {dataset} | paper | " + " | ".join(_pm(*published[k]) for k in COLUMNS) + " |")
        mine = [(name, summary) for name, (beside, summary) in ours.items() if beside == dataset]
        for name, summary in mine:
            cells = [_ours(summary, method, column) for _, method, column in COLUMNS.values()]
            lines.append(f"| {dataset} | ours: {crossval_link(name)} | " + " | ".join(cells) + " |")
        if not mine:
            lines.append(f"| {dataset} | ours: not run | " + " | ".join("—" for _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def _ours(summary: Mapping, method: str, column: str) -> str:
    values = summary.get(method, {})
    mean, std = values.get(f"{column}_mean_mean"), values.get(f"{column}_mean_std")
    return "—" if mean is None else _pm(100 * mean, 100 * (std or 0.0))


def _pm(mean: float, std: float) -> str:
    return f"{mean:.2f} ± {std:.2f}"
