"""The cases of an evaluation done so far, kept on disk so that a killed evaluation resumes."""

from __future__ import annotations

import json
from pathlib import Path


class CaseProgress:
    """Per-case rows and inference seconds, one JSON line appended as each case finishes.

    A line torn by a kill mid-write does not parse and is ignored: that case is done again.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows: dict[str, dict] = {}
        self.seconds: dict[str, float] = {}
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    row, seconds = entry["row"], float(entry["seconds"])
                except (ValueError, KeyError, TypeError):
                    continue
                self.rows[row["case_id"]] = row
                self.seconds[row["case_id"]] = seconds

    def add(self, row: dict, seconds: float) -> None:
        """Record one finished case (its `case_id` in `row`)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps({"row": row, "seconds": seconds}) + "\n")
        self.rows[row["case_id"]] = row
        self.seconds[row["case_id"]] = seconds

    def discard(self) -> None:
        """Remove the file once the evaluation's tables are written."""
        self.path.unlink(missing_ok=True)
