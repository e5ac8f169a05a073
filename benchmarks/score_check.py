"""Which one-pass score ranks the cases of a cross-validation best, against the baselines' scores.

    python benchmarks/score_check.py hippocampus [--rival hippocampus:ensemble_5 ...] [--splits 200]

Reads the published per-case tables of docs/crossval/<name>/ (every method with all 5 folds) and,
with `--rival OTHER:METHOD`, a method of another published cross-validation on the same cases
(the same seeded split). For each method, every score column and the learned estimate
(`relunet.analysis.one_pass_scores`: a ridge regression from the method's own per-case scores to
Dice, fitted on the other four folds' cases and applied to the fifth) is scored against the Dice of
`seg_a`, pooled and per fold, with the share of cases the review flag sends to an expert; and the
Relation U-Net's default score against the Dice of each of its maps. Writes `scores.md` and
`scores.json` beside the tables (docs/crossval/<name>/).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from relunet.analysis.one_pass_scores import LEARNED, by_map, compare, fold_wins, render, render_maps
from relunet.atomic import write_json, write_text
from relunet.errors import InputError, guarded
from relunet.evaluation.summary import read_per_case
from relunet.inference.methods import method
from relunet.reporting.tables import RELATION, RELATION_S1S2
from relunet.rundir import CrossvalFolder

ROOT = Path(__file__).resolve().parents[1]
FOLDS = 5
#: the score the fold wins are counted for: the self-pair's default (`InferenceMethod.score_column`)
DEFAULT_SCORE = method("self_pair").score_column
#: the scores each Relation U-Net score is held against fold by fold (beside any --rival)
RIVALS = (("ensemble_5", "C"), ("unet", "C"), ("unet", "learned"), ("unet_flip_tta", "C"))


def read_methods(folder: Path, names: list[str] | None = None) -> dict[str, list[dict]]:
    """Per-case rows (sorted by case) of every method of `folder` with all folds, or of `names`."""
    crossval = CrossvalFolder(folder)
    found = {}
    for method_dir in sorted(crossval.methods.glob("*/")):
        method = method_dir.name
        if names is not None and method not in names:
            continue
        if all(crossval.method_fold(method, k).per_case.is_file() for k in range(FOLDS)):
            found[method] = sorted(read_per_case(folder, method), key=lambda row: row["case_id"])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="a published cross-validation, docs/crossval/<name>")
    parser.add_argument("--rival", action="append", default=[], help="OTHER:METHOD of another one")
    parser.add_argument("--splits", type=int, default=200, help="calibration/test splits of the review check")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    folder = args.docs / "crossval" / args.name
    methods = read_methods(folder)
    if RELATION not in methods:
        raise InputError(f"{folder}: no {RELATION} with all {FOLDS} folds; run the cross-validation first")
    cases = [row["case_id"] for row in methods[RELATION]]
    for rival in args.rival:
        other, _, method = rival.partition(":")
        rows = read_methods(args.docs / "crossval" / other, [method]).get(method)
        if rows is None or [row["case_id"] for row in rows] != cases:
            raise InputError(f"--rival {rival}: no {method} over the same cases in docs/crossval/{other}")
        methods[f"{method} ({other})"] = rows
    dice = {}
    if all("dice_s1s2" in row for row in methods[RELATION]):
        methods[RELATION_S1S2], dice[RELATION_S1S2] = methods[RELATION], "dice_s1s2"
    folds = {m: [row["fold"] for row in rows] for m, rows in methods.items()}
    entries = compare(methods, folds, args.splits, dice)
    rivals = [(m, score) for m, score in RIVALS if m in methods]
    others = [(o, m) for o, _, m in (r.partition(":") for r in args.rival)]
    rivals += [(f"{m} ({o})", score) for o, m in others for score in ("C", LEARNED)]
    mine = [(m, DEFAULT_SCORE) for m in (RELATION, RELATION_S1S2) if m in methods]
    wins = {f"{a[0]} {a[1]} vs {b[0]} {b[1]}": fold_wins(entries, a, b) for a in mine for b in rivals}
    maps = by_map(methods[RELATION], folds[RELATION], DEFAULT_SCORE)
    record = {
        "splits": args.splits,
        "default_score": DEFAULT_SCORE,
        "entries": entries,
        "fold_wins": wins,
        "maps": maps,
    }
    write_json(folder / "scores.json", record)
    command = "python benchmarks/score_check.py " + " ".join(sys.argv[1:])
    write_text(folder / "scores.md", _page(args.name, entries, wins, maps, args.splits, command))
    print(f"written: {folder / 'scores.md'}")


def _page(
    name: str, entries: list[dict], wins: dict[str, dict], maps: list[dict], splits: int, command: str
) -> str:
    lines = [
        f"# One-pass scores of {name}",
        "",
        f"Generated by `{command}`. Every score column of each method's per-case "
        "tables and `learned` (a ridge regression from the method's own scores and predicted "
        "foreground fraction to Dice, fitted on the other four folds' cases and applied to the "
        "fifth), against the Dice of `seg_a` over all folds' test cases (for "
        f"`{RELATION_S1S2}`: the Relation U-Net's scores against the Dice of its (s1+s2)/2 "
        "segmentation, the mean of the `seg_a` and `seg_b` maps). e-AURC with risk = 1 − "
        f"Dice. Sent to review: mean share of test cases flagged over {splits} splits of 100 "
        "calibration cases, at risk 0.1 of Dice < 0.8 among the accepted (the review check's "
        "guarantee).",
        "",
        render(entries).rstrip("\n"),
        "",
        f"Folds (of those shared) on which the Relation U-Net's default score ({DEFAULT_SCORE}) beats a "
        "rival, by Spearman (higher) and e-AURC (lower):",
        "",
        "| score vs rival | Spearman | e-AURC |",
        "| --- | ---: | ---: |",
        *(f"| {k} | {w['spearman']}/{w['folds']} | {w['eaurc']}/{w['folds']} |" for k, w in wins.items()),
        "",
        f"The Relation U-Net's default score ({DEFAULT_SCORE}) against the Dice of each map of the same "
        "forward pass (Dice: mean ± std over the folds; Spearman and e-AURC pooled over all folds' "
        "test cases): which segmentation the score ranks best, and what that segmentation's Dice is.",
        "",
        render_maps(maps).rstrip("\n"),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    guarded(main)
