"""Is a batch unlike the calibration cases reported? The batch-shift warning of `predict`, measured.

    python benchmarks/shift_check.py RUN DATA --name hippocampus [--fold 0] [--batch 20] \
        [--repeats 200] [--device cpu]

Takes the held-out fold of a trained run, predicts every case as it is and in shifted versions
made here (another resolution, colour balance, noise, contrast), and then, `--repeats` times,
splits the held-out cases at random into a calibration half and a pool from which a batch of
`--batch` cases is drawn. Each batch is compared with the calibration half exactly as `predict`
does (`relunet.evaluation.batch_shift`), unshifted and in every shifted version. Reports how
often each is warned about (for the unshifted batches that is the false-alarm rate), the mean
Dice of each version, and how often the review flag broke its promise on the cases outside the
calibration half. Writes
`docs/shift/<name>.json` and regenerates `docs/shift.md` from every JSON there.
The analysis: `relunet.analysis.shift`; this script parses the arguments and writes the files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from relunet.analysis.shift import measure, predict_versions, render
from relunet.atomic import write_json, write_text
from relunet.errors import guarded

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--fold", type=int, default=None)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    versions = predict_versions(
        args.run, args.data, args.fold, args.device, log=lambda line: print(line, file=sys.stderr)
    )
    result = {
        "name": args.name,
        "command": "python benchmarks/shift_check.py " + " ".join(sys.argv[1:]),
        "cases": len(versions["unshifted"]["score"]),
        "batch": args.batch,
        "repeats": args.repeats,
        "versions": measure(versions, args.batch, args.repeats),
    }
    write_json(args.docs / "shift" / f"{args.name}.json", result)
    write_text(args.docs / "shift.md", render(args.docs / "shift"))
    print(render(args.docs / "shift"))


if __name__ == "__main__":
    guarded(main)
