"""Is a model's segmentation too large or too small at the 0.5 cut-off? A threshold fitted on training cases.

    python benchmarks/threshold_check.py runs/crossval/isic [--runs relation_seed0,unet_seed0] \
        [--folds 0,1,2,3,4] [--train-cases 300] [--data PATH] [--device cpu]

For each fold and trained model (the Relation U-Net in self-pair mode, a U-Net alone), predicts
`--train-cases` cases drawn from that fold's training set, picks the probability cut-off of
`seg_a` with the best mean Dice there, and scores the fold's test cases at 0.5 and at that cut-off
(mean Dice, median predicted over true foreground). The test cases never choose the cut-off.
Writes `threshold_check.md` and `.json` beside the cross-validation's published tables
(docs/crossval/<name>/, or --docs).
The analysis: `relunet.analysis.threshold`; this script parses the arguments and writes the files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from relunet.analysis.threshold import check_fold, render
from relunet.atomic import write_json, write_text
from relunet.errors import InputError, guarded
from relunet.evaluation.crossval_cases import CrossvalCases
from relunet.rundir import CrossvalFolder

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a cross-validation folder (runs/crossval/<name>)")
    parser.add_argument("--runs", default="relation_seed0,unet_seed0", help="models under models/")
    parser.add_argument("--folds", default="0,1,2,3,4")
    parser.add_argument("--train-cases", type=int, default=300)
    parser.add_argument("--data", type=Path, default=None, help="the dataset, where it moved since training")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--docs", type=Path, default=None, help="default docs/crossval/<folder name>")
    args = parser.parse_args()
    runs = [r for r in args.runs.split(",") if r]
    folds = [int(k) for k in args.folds.split(",") if k.strip()]
    for run in runs:
        model = CrossvalFolder(args.folder).model_run(run)
        if not model.splits_path.is_file():
            raise InputError(f"{model.path}: no trained model here; see --runs")
    dataset = CrossvalCases(args.folder, args.data)
    rows = [
        check_fold(dataset, args.folder, run, fold, args.train_cases, args.device)
        for run in runs
        for fold in folds
    ]
    command = (
        f"python benchmarks/threshold_check.py runs/crossval/{args.folder.name} --runs {args.runs} "
        f"--folds {args.folds} --train-cases {args.train_cases}"
    )
    docs = args.docs or ROOT / "docs" / "crossval" / args.folder.name
    write_json(docs / "threshold_check.json", {"command": command, "rows": rows})
    write_text(docs / "threshold_check.md", render(args.folder.name, rows, command))
    print(render(args.folder.name, rows, command))


if __name__ == "__main__":
    guarded(main)
