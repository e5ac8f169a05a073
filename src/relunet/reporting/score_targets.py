"""The self-pair's default score against the strongest baselines, from the published score checks.

Reads each cross-validation's `scores.json` (`benchmarks/score_check.py`) and `summary.json`
under docs/crossval/: pooled Spearman and e-AURC of the Relation U-Net's default score against
the ensemble of 5's pairwise Dice and the U-Net's learned estimate (from the same folder or a
`--rival` one), the folds on which it is better, and its Dice against the rival's fold spread.
"""

from __future__ import annotations

import json
from pathlib import Path

from relunet.reporting.tables import RELATION

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
        "From each cross-validation's one-pass score check (its section below): the self-pair's "
        "default score pooled over all folds' test cases, against the ensemble of 5's pairwise Dice "
        "and the U-Net's learned estimate (a rival in parentheses comes from that other "
        "cross-validation, on the same test cases), the folds on which the self-pair's score is "
        "better, and the self-pair's Dice against the rival's (mean ± std over folds).",
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
    mine = entries[RELATION, default]
    own = _dice(folder, RELATION)
    lines = []
    for base, score, what in TARGETS:
        for (method, rival_score), rival in entries.items():
            if rival_score != score or not (method == base or method.startswith(f"{base} (")):
                continue
            source = method.partition(" (")[2].rstrip(")") or folder.name
            wins = check["fold_wins"].get(f"{RELATION} {default} vs {method} {score}")
            theirs = _dice(folder.parent / source, base)
            lines.append(
                f"| [{folder.name}](#{folder.name}) | {what}"
                + (f" ({source})" if source != folder.name else "")
                + f" | {mine['spearman']:.3f} / {rival['spearman']:.3f} | {mine['eaurc']:.4f} / "
                f"{rival['eaurc']:.4f} | "
                + (f"{wins['spearman']}/{wins['folds']}, {wins['eaurc']}/{wins['folds']}" if wins else "—")
                + f" | {_pm(own)} / {_pm(theirs)} | {_spread(own, theirs)} |"
            )
    return lines


def _dice(folder: Path, method: str) -> tuple[float, float] | None:
    """Mean and std over folds of a method's Dice of `seg_a`, from a published summary.json."""
    path = folder / "summary.json"
    entry = json.loads(path.read_text()).get(method) if path.is_file() else None
    return None if entry is None else (entry["dice_seg_a_mean_mean"], entry["dice_seg_a_mean_std"])


def _pm(dice: tuple[float, float] | None) -> str:
    return "—" if dice is None else f"{dice[0]:.3f} ± {dice[1]:.3f}"


def _spread(own: tuple[float, float] | None, theirs: tuple[float, float] | None) -> str:
    if own is None or theirs is None:
        return "—"
    if own[0] >= theirs[0]:
        return "above"
    short = theirs[0] - theirs[1] - own[0]
    return "within" if short <= 0 else f"no, short by {short:.4f}"
