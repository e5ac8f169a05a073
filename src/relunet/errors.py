"""The one exception type for bad user input, and the guard that turns it into one line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class InputError(Exception):
    """Bad input from the user: a missing or unreadable file, a wrong shape, label or channel count.

    The message is one line that names the file and what to do; the CLI prints it and exits
    with code 2, without a traceback.
    """


def guarded(call: Callable[[], Any]) -> Any:
    """Run `call` and return its result; bad input becomes one line on stderr and exit code 2.

    Used by the CLI's commands and by the scripts in `benchmarks/`. An interrupt exits with 130.
    """
    try:
        return call()
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
