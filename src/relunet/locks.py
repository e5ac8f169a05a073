"""Advisory file locks that let several processes share one output folder without repeating work."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def try_lock(path: str | Path) -> Iterator[bool]:
    """Hold an exclusive lock on `path` if no other process does; yield whether it is held.

    The lock goes with the process: one that is killed frees it, so the work it guarded is taken
    up by the next process that asks. The (empty) lock file stays.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
