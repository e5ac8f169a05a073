"""Atomic file writes: write to a temporary file beside the target, then rename over it.

Files appear with the permissions the user's umask gives (not the 0600 of a temporary file),
and a failed write (permission, disk full, file-size limit) becomes one `WriteError` line that
names the target, leaving the old file, if any, untouched.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from relunet.errors import WriteError

TEMP_MARK = ".tmp"


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _read_umask()
FILE_MODE = 0o666 & ~UMASK
DIR_MODE = 0o777 & ~UMASK


@contextlib.contextmanager
def writing(target: str | Path) -> Iterator[None]:
    """Turn an `OSError` raised while writing `target` into one `WriteError` line naming it."""
    try:
        yield
    except WriteError:
        raise
    except OSError as err:
        raise WriteError.of(target, err) from err


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to `target` if the block succeeds.

    The suffix of the target is kept (writers such as nibabel choose the format from it). The
    temporary name starts with `.` and holds `.tmp`, so `remove_temporaries` can clear what a
    killed process left.
    """
    target = Path(target)
    with writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        suffix = "".join(target.suffixes)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=f"{TEMP_MARK}{suffix}", dir=target.parent
        )
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, FILE_MODE)
        os.replace(tmp_path, target)
    except WriteError:
        raise
    except OSError as err:
        raise WriteError.of(target, err) from err
    finally:
        tmp_path.unlink(missing_ok=True)


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files `atomic_path` left in `folder` when a process was killed.

    Call it only while holding the folder's lock (no other writer is mid-write). Returns them.
    """
    found = [p for p in Path(folder).glob(f".*{TEMP_MARK}*") if p.is_file()]
    for path in found:
        path.unlink(missing_ok=True)
    return found


def write_bytes(target: str | Path, data: bytes) -> None:
    """Write bytes atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: str | Path, obj: object) -> None:
    """Write JSON (indented, keys in insertion order) atomically."""
    write_text(target, json.dumps(obj, indent=2) + "\n")


def write_csv(target: str | Path, rows: list[dict]) -> None:
    """Write dict rows as CSV (columns from the first row) atomically."""
    with atomic_path(target) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
