"""File locks: one writer per output folder, and shared folders whose work is divided between processes."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from relunet.atomic import writing
from relunet.errors import InputError


@contextlib.contextmanager
def try_lock(path: str | Path) -> Iterator[bool]:
    """Hold an exclusive lock on `path` if no other process does; yield whether it is held.

    The lock goes with the process: one that is killed frees it, so the work it guarded is taken
    up by the next process that asks. The (empty) lock file stays.
    """
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a")
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def sole_writer(path: str | Path, what: str, wait: bool = False) -> Iterator[None]:
    """Hold the lock file `path` for the block, or refuse with one line if another process holds it.

    `what` names the guarded thing in the refusal ("the output folder /x"). With `wait` the call
    blocks until the lock is free instead. The lock file is removed on release; a lock file whose
    name was removed or replaced while waiting is retried, so two processes never both hold it.
    A killed process frees its lock.
    """
    path = Path(path)
    while True:
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            raise InputError(
                f"{what}: another relunet process is writing there now; wait for it to finish "
                f"or choose another folder (lock: {path})"
            ) from None
        if _same_file(fd, path):
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False
