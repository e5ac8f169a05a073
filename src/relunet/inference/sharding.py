"""The parts of a sharded prediction (`relunet predict --num-parts P --part-id I`): folders and merge.

Only files: no model, so `relunet merge` needs no torch.
"""

from __future__ import annotations

import csv
from pathlib import Path

from relunet.atomic import write_csv
from relunet.errors import InputError
from relunet.locks import sole_writer

CASES_NAME = "cases.csv"


def part_folder_name(part_id: int, num_parts: int) -> str:
    """The results folder of one part of a sharded prediction, inside its `--out`."""
    return f"part{part_id}of{num_parts}"


def merge_parts(out: Path) -> list[dict]:
    """Join the tables of the `part{I}of{P}` folders of a sharded prediction into `out/cases.csv`.

    The mask paths of the joined table are relative to `out` (`part0of3/masks/case.png`).
    """
    out = Path(out)
    parts = sorted(p for p in out.glob("part*of*") if (p / CASES_NAME).is_file())
    totals = {int(p.name.rsplit("of", 1)[1]) for p in parts if p.name.rsplit("of", 1)[1].isdigit()}
    if len(totals) != 1:
        raise InputError(f"{out}: no part folders from one sharded prediction found; run predict --num-parts")
    (total,) = totals
    missing = sorted(set(range(total)) - {int(p.name[len("part") :].split("of")[0]) for p in parts})
    if missing:
        raise InputError(f"{out}: parts {missing} of {total} are missing; run predict --part-id for them")
    rows = []
    for part in parts:
        with (part / CASES_NAME).open(newline="") as handle:
            rows += [
                {**r, "C": float(r["C"]), "score": float(r["score"]), "mask": f"{part.name}/{r['mask']}"}
                for r in csv.DictReader(handle)
            ]
    rows.sort(key=lambda r: (r["score"], r["case_id"]))
    with sole_writer(out / f".{CASES_NAME}.lock", str(out / CASES_NAME)):
        write_csv(out / CASES_NAME, rows)
    return rows
