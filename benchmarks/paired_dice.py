"""Where one method of a cross-validation gains or loses Dice against another, case by case.

    python benchmarks/paired_dice.py runs/crossval/isic relation_self_pair unet [--data PATH]

Pairs the test cases of every fold both methods have evaluated (their per_case.csv), reads both
methods' saved masks (methods/<m>/fold_K/predictions/) and each case's ground truth, and writes
`paired_<a>_vs_<b>.md` and `.json` beside the cross-validation's published tables
(docs/crossval/<name>/, or --docs): the mean paired Dice difference, the share of cases each
method wins, the difference by fifth of the cases ranked by the two methods' mean Dice, and where
the errors are (predicted over true foreground, false-positive and false-negative voxels per case).
The analysis: `relunet.analysis.paired_dice`; this script parses the arguments and writes the files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from relunet.analysis.paired_dice import compare, paired_cases, render
from relunet.atomic import write_json, write_text
from relunet.errors import InputError, guarded

ROOT = Path(__file__).resolve().parents[1]


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
    stats = compare(rows, args.first, args.second, args.folder.name)
    docs = args.docs or ROOT / "docs" / "crossval" / args.folder.name
    stem = docs / f"paired_{args.first}_vs_{args.second}"
    write_json(stem.with_suffix(".json"), stats)
    write_text(stem.with_suffix(".md"), render(stats))
    print(render(stats))


if __name__ == "__main__":
    guarded(main)
