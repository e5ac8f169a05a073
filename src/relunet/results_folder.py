"""Results folders: refused where they would touch input data, one writer each, appearing whole.

A command that writes results (predict, evaluate, report) builds them in a hidden sibling
staging folder and renames it into place at the end, so a failure or a kill leaves either the
old results or the new ones, never a mix. A folder that already holds results is replaced only
when the user says `--overwrite`; a folder holding anything relunet did not write is never
replaced. A lock beside the folder admits one writer at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from relunet.atomic import DIR_MODE, write_json, writing
from relunet.errors import InputError
from relunet.locks import sole_writer

MARKER = ".relunet-results.json"


def check_apart(out: Path, protected: Mapping[str, str | Path | None]) -> None:
    """Refuse an output folder that is, contains or lies inside a protected path.

    `protected` maps a description ("the input data") to its path; None entries are skipped.
    """
    where = _absolute(out)
    for what, path in protected.items():
        if not path:
            continue
        other = _absolute(Path(path))
        if where == other or other in where.parents or where in other.parents:
            relation = "is" if where == other else "lies inside" if other in where.parents else "contains"
            raise InputError(
                f"--out {out}: this folder {relation} {what} ({other}); choose an output folder outside it"
            )


@contextlib.contextmanager
def results_folder(
    out: Path,
    kind: str,
    overwrite: bool = False,
    protected: Mapping[str, str | Path | None] | None = None,
    owned: bool = False,
) -> Iterator[Path]:
    """Yield an empty staging folder; when the block succeeds it replaces `out` whole.

    `kind` is recorded in the folder's marker file ("prediction", "evaluation", ...). Every check
    happens before anything is written: `out` apart from `protected`, no other writer, and
    `out` new, empty, or holding results with `overwrite` given. `owned` says the folder's place
    is relunet's own (a cross-validation's `report/`): it is replaced even without a marker.
    """
    out = Path(out)
    check_apart(out, protected or {})
    if not owned:
        check_replaceable(out, overwrite)
    with sole_writer(_sibling(out, "lock"), f"{out}"):
        _recover(out)
        if not owned:
            check_replaceable(out, overwrite)
        with writing(out):
            staging = Path(tempfile.mkdtemp(prefix=_sibling(out, "staging-").name, dir=_parent(out)))
            os.chmod(staging, DIR_MODE)
        try:
            yield staging
            write_json(staging / MARKER, {"kind": kind})
            _swap_in(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def check_replaceable(out: Path, overwrite: bool) -> None:
    """Refuse `out` if it holds results (unless `overwrite`) or anything relunet did not write."""
    if not out.exists():
        if out.is_symlink():
            raise InputError(f"--out {out}: a broken link; remove it or choose another folder")
        return
    if not out.is_dir():
        raise InputError(f"--out {out}: a file, not a folder; choose a folder name")
    if not any(out.iterdir()):
        return
    if not (out / MARKER).is_file():
        raise InputError(
            f"--out {out}: holds files relunet did not write; choose a new or empty folder "
            "(relunet replaces only results folders it wrote)"
        )
    if not overwrite:
        raise InputError(
            f"--out {out}: already holds results ({_kind(out)}); add --overwrite to replace them "
            "or choose another folder"
        )


def _swap_in(staging: Path, out: Path) -> None:
    """Rename `staging` to `out`; existing results move aside first and are deleted after."""
    with writing(out):
        old = None
        if out.exists():
            old = _sibling(out, f"old-{os.getpid()}")
            os.rename(out, old)
        os.rename(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _recover(out: Path) -> None:
    """Clear what a killed writer left beside `out`: restore results moved aside, drop staging."""
    for leftover in _parent(out).glob(f".{out.name}.old-*"):
        if not out.exists():
            os.rename(leftover, out)
        else:
            shutil.rmtree(leftover, ignore_errors=True)
    for leftover in _parent(out).glob(f".{out.name}.staging-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _kind(out: Path) -> str:
    try:
        return str(json.loads((out / MARKER).read_text())["kind"])
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown kind"


def _sibling(out: Path, what: str) -> Path:
    return _parent(out) / f".{out.name}.{what}"


def _parent(out: Path) -> Path:
    return _absolute(out).parent


def _absolute(path: Path) -> Path:
    return Path(os.path.realpath(path))
