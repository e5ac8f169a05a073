"""The self-pair's default score against the strongest baselines, from the published score checks.

Reads each cross-validation's `scores.json` (`benchmarks/score_check.py`) and `summary.json`
under docs/crossval/: pooled Spearman and e-AURC of the Relation U-Net's default score against
the ensemble of 5's pairwise Dice and the U-Net's learned estimate (from the same folder or a
`--rival` one), the folds on which it is better, and its Dice against the rival's fold spread.
Each is given for the self-pair's `seg_a` and, where the check recorded it, for its (s1+s2)/2
segmentation (the score against that segmentation's Dice).
"""

from __future__ import annotations

import json
from pathlib import Path

from relunet.reporting.crossval_settings import crossval_link
from relunet.reporting.tables import RELATION, RELATION_S1S2

#: the self-pair's segmentations: (its method in a score check, its Dice in summary.json, its name)
SEGMENTATIONS = ((RELATION, "dice_seg_a", ""), (RELATION_S1S2, "dice_s1s2", "(s1+s2)/2"))
#: (baseline method, its score, how the table names it)
TARGETS = (
    ("ensemble_5", "C", "ensemble of 5, pairwise Dice"),
    ("unet", "learned", "U-Net, learned estimate"),
)


def render_score_targets(crossval_docs: Path) -> list[str]:
    """Markdown lines: one row per published score check and rival; empty if none was published."""
    rows = [row for folder in sorted(crossval_docs.glob("*/scores.json")) for row in _rows(folder.parent)]
    if not rows:
        return []
    return [
        "## The one-pass score against the strongest baselines",
        "",
        "From each cross-validation's one-pass score check (its page): the self-pair's "
        "default score pooled over all folds' test cases, against the ensemble of 5's pairwise Dice "
        "and the U-Net's learned estimate (a rival in parentheses comes from that other "
        "cross-validation, on the same test cases), the folds on which the self-pair's score is "
        "better, and the self-pair's Dice against the rival's (mean ± std over folds). Rows marked "
        "(s1+s2)/2 hold the self-pair's score against the Dice of its (s1+s2)/2 segmentation, the "
        "mean of the `seg_a` and `seg_b` maps of the same forward pass.",
        "",
        "| results | rival | Spearman: self-pair / rival | e-AURC: self-pair / rival "
        "| folds better (Spearman, e-AURC) | Dice: self-pair / rival | Dice in the rival's spread |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
        *rows,
        "",
    ]


def _rows(folder: Path) -> list[str]:
    check = json.loads((folder / "scores.json").read_text())
    entries = {(e["method"], e["score"]): e for e in check["entries"]}
    default = check["default_score"]  # the score its fold wins were counted for
    lines = []
    for mine, dice_key, segmentation in SEGMENTATIONS:
        score_of_mine = entries.get((mine, default))
        if score_of_mine is None:
            continue
        own = _dice(folder, RELATION, dice_key)
        results = crossval_link(folder.name) + (f" {segmentation}" if segmentation else "")
        for base, score, what in TARGETS:
            for (method, rival_score), rival in entries.items():
                if rival_score != score or not (method == base or method.startswith(f"{base} (")):
                    continue
                source = method.partition(" (")[2].rstrip(")") or folder.name
                wins = check["fold_wins"].get(f"{mine} {default} vs {method} {score}")
                theirs = _dice(folder.parent / source, base)
                lines.append(
                    f"| {results} | {what}"
                    + (f" ({source})" if source != folder.name else "")
                    + f" | {score_of_mine['spearman']:.3f} / {rival['spearman']:.3f} | "
                    f"{score_of_mine['eaurc']:.4f} / {rival['eaurc']:.4f} | "
                    + f"{_wins(wins)} | {_pm(own)} / {_pm(theirs)} | {_spread(own, theirs)} |"
                )
    return lines


def _dice(folder: Path, method: str, dice_key: str = "dice_seg_a") -> tuple[float, float] | None:
    """Mean and std over folds of a method's Dice (`dice_key`, default of `seg_a`), from a summary.json."""
    path = folder / "summary.json"
    entry = json.loads(path.read_text()).get(method) if path.is_file() else None
    if entry is None or f"{dice_key}_mean_mean" not in entry:
        return None
    return entry[f"{dice_key}_mean_mean"], entry[f"{dice_key}_mean_std"]


def _wins(wins: dict | None) -> str:
    return "—" if wins is None else f"{wins['spearman']}/{wins['folds']}, {wins['eaurc']}/{wins['folds']}"


def _pm(dice: tuple[float, float] | None) -> str:
    return "—" if dice is None else f"{dice[0]:.3f} ± {dice[1]:.3f}"


def _spread(own: tuple[float, float] | None, theirs: tuple[float, float] | None) -> str:
    if own is None or theirs is None:
        return "—"
    if own[0] >= theirs[0]:
        return "above"
    short = theirs[0] - theirs[1] - own[0]
    return "within" if short <= 0 else f"no, short by {short:.4f}"
