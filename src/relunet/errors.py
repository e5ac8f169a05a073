"""The exception types for bad input and failed writes, and the guard that turns them into one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


class InputError(Exception):
    """Bad input from the user: a missing or unreadable file, a wrong shape, label or channel count.

    The message is one line that names the file and what to do; the CLI prints it and exits
    with code 2, without a traceback.
    """


class WriteError(InputError):
    """A file or folder could not be written (permission, disk full, file-size limit).

    Reported like bad input (one line, exit code 2); whatever was being written is left as it was.
    """

    @classmethod
    def of(cls, path: str | Path, err: OSError) -> WriteError:
        """The one line for `err` raised while writing `path`."""
        reason = err.strerror or (os.strerror(err.errno) if err.errno else None) or str(err) or "failed"
        return cls(
            f"{path}: cannot write ({reason}); free disk space, fix the folder's permissions "
            "or choose another --out"
        )


def first_line(err: BaseException, limit: int = 120) -> str:
    """The first line of an error's message, at most `limit` characters, for a one-line report."""
    return str(err).splitlines()[0][:limit] if str(err).strip() else "unreadable"


def guarded(call: Callable[[], Any]) -> Any:
    """Run `call` and return its result; bad input becomes one line on stderr and exit code 2.

    Used by the CLI's commands and by the scripts in `benchmarks/`. Any other `OSError` (a read
    or write the library did not anticipate) is one line naming its file, also exit code 2.
    An interrupt exits with 130.
    """
    try:
        return call()
    except InputError as err:
        _fail(str(err))
    except OSError as err:
        where = err.filename if err.filename is not None else "a file"
        _fail(f"{where}: {err.strerror or err}; check the path, its permissions and the free space")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def _fail(message: str) -> None:
    print(f"error: {message.splitlines()[0] if message else 'failed'}", file=sys.stderr)
    raise SystemExit(2) from None
