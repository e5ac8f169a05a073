"""Fuzz the readers: damaged, truncated and random files give a result or one InputError, never more.

    python benchmarks/fuzz_readers.py [--examples 2500] [--only "png mask"]

Feeds Hypothesis-generated input to each reader: truncations and byte flips of valid files, pure
random bytes and, for dataset.json, random JSON structures read through `index_dataset` and
`load_cases`. Any other exception, a warning, or no answer within HANG_SECONDS is an escape.
Prints per reader the inputs run, the seconds and the escapes; exits 1 if anything escaped.
tests/test_fuzz_readers.py runs the same properties with a small count.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import signal
import sys
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import nibabel as nib
import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

from relunet.data.layouts import CaseFiles, index_dataset, load_case
from relunet.data.readers import read_image2d, read_mask2d
from relunet.data.training_set import load_cases
from relunet.errors import InputError, first_line, guarded

HANG_SECONDS = 20
NIFTI_HEADER = 352  # byte flips favour the header, where the shape, type and offset live


class Hang(BaseException):
    """No answer in time; a BaseException, so that no reader's `except Exception` hides it."""


class StrayWarning(Exception):
    """A reader warned: its message would reach the user as an extra line on stderr."""


class Reader(NamedTuple):
    """One reader under fuzz: its inputs and how to feed one input to it inside a work folder."""

    name: str
    inputs: st.SearchStrategy
    feed: Callable[[Path, object], object]


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise `Hang` in the block once `seconds` have passed (main thread only)."""

    def alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def nifti_seeds() -> list[bytes]:
    """Valid `.nii` files: float, label and 4D int volumes, NIfTI-1 and NIfTI-2."""
    rng = np.random.default_rng(0)
    volumes = [
        rng.normal(100, 10, size=(4, 5, 3)).astype(np.float32),
        rng.integers(0, 3, size=(4, 5, 3)).astype(np.uint8),
        rng.integers(-50, 50, size=(3, 4, 2, 2)).astype(np.int16),
    ]
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    seeds = [nib.Nifti1Image(v, affine).to_bytes() for v in volumes]
    return seeds + [nib.Nifti2Image(volumes[0], affine).to_bytes()]


def picture_seeds(fmt: str) -> list[bytes]:
    """Valid small PNG (all common modes) or JPEG (gray, colour, CMYK, progressive) files."""
    rng = np.random.default_rng(1)
    gray = Image.fromarray(rng.integers(0, 256, size=(5, 6)).astype(np.uint8))
    rgb = Image.fromarray(rng.integers(0, 256, size=(5, 6, 3)).astype(np.uint8))
    if fmt == "JPEG":
        pictures = [(gray, {}), (rgb, {}), (rgb.convert("CMYK"), {}), (rgb, {"progressive": True})]
    else:
        sixteen = Image.fromarray(rng.integers(0, 65536, size=(5, 6)).astype(np.uint16))
        modes = [gray, rgb, rgb.convert("RGBA"), gray.convert("LA"), gray.convert("1"), sixteen]
        pictures = [(p, {}) for p in modes + [rgb.convert("P")]] + [(gray.convert("P"), {"transparency": 0})]
    return [_encoded(picture, fmt, options) for picture, options in pictures]


def _encoded(picture: Image.Image, fmt: str, options: dict) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def mutated(seeds: list[bytes], favoured: int | None = None) -> st.SearchStrategy[bytes]:
    """Truncations and 1-8 byte flips of `seeds`; flips fall in the first `favoured` bytes half the time."""
    seed = st.sampled_from(seeds)
    truncated = seed.flatmap(lambda data: st.integers(0, len(data) - 1).map(lambda n: data[:n]))
    return truncated | seed.flatmap(lambda data: _flips(data, favoured or len(data)))


def _flips(data: bytes, favoured: int) -> st.SearchStrategy[bytes]:
    where = st.integers(0, min(favoured, len(data)) - 1) | st.integers(0, len(data) - 1)
    changes = st.lists(st.tuples(where, st.integers(0, 255)), min_size=1, max_size=8)
    return changes.map(lambda flips: _flipped(data, flips))


def _flipped(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    buffer = bytearray(data)
    for where, value in flips:
        buffer[where] = value
    return bytes(buffer)


def with_png_crcs(data: bytes) -> bytes:
    """`data` with the checksum of each PNG chunk recomputed, so that flips reach the decoder."""
    buffer, at = bytearray(data), 8
    while at + 12 <= len(buffer):
        length = int.from_bytes(buffer[at : at + 4], "big")
        end = at + 8 + length
        if end + 4 > len(buffer):
            break
        buffer[end : end + 4] = zlib.crc32(buffer[at + 4 : end]).to_bytes(4, "big")
        at = end + 4
    return bytes(buffer)


def random_bytes() -> st.SearchStrategy[bytes]:
    return st.binary(max_size=1024)


def json_like() -> st.SearchStrategy:
    """Random JSON values mixed with the keys, paths and label maps a dataset.json holds."""
    paths = st.sampled_from(
        [
            "./imagesTr/case_000.nii.gz",
            "imagesTr/case_001.nii.gz",
            "./labelsTr/case_000.nii.gz",
            "./imagesTr/case_002.nii.gz",
            "./imagesTr/case_002_0000.nii.gz",
            "./imagesTr/pic.png",
            "./labelsTr/pic.png",
            "./imagesTr/missing.nii.gz",
            "../outside.nii.gz",
            "imagesTr/../../x.png",
            "/dev/null",
            "./imagesTr",
            "dataset.json",
            "",
            ".",
        ]
    )
    leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | paths
    keys = st.sampled_from(["image", "label", "channels", "training", "labels"]) | st.text(max_size=6)
    values = st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=12,
    )
    entry = (
        st.fixed_dictionaries(
            {"image": paths},
            optional={"label": paths | values, "channels": st.lists(paths, max_size=3) | values},
        )
        | values
    )
    label_keys = st.sampled_from(["0", "1", "2", "-1", "x"]) | st.text(max_size=4)
    labels = (
        st.dictionaries(label_keys, st.text(max_size=6) | st.integers(-3, 5) | values, max_size=4) | values
    )
    meta = st.fixed_dictionaries(
        {"training": st.lists(entry, min_size=1, max_size=4)}, optional={"labels": labels}
    )
    return meta | st.dictionaries(keys, values, max_size=3) | values


def write_tiny_msd(root: Path) -> Path:
    """A tiny valid MSD folder: two volumes, one case as channel files, one picture case."""
    rng = np.random.default_rng(2)
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for name in ("case_000", "case_001", "case_002"):
        label = rng.integers(0, 3, size=(4, 5, 3)).astype(np.uint8)
        image = nib.Nifti1Image(
            (label * 40 + rng.normal(100, 5, size=label.shape)).astype(np.float32), np.eye(4)
        )
        nib.save(
            image, root / "imagesTr" / (f"{name}_0000.nii.gz" if name == "case_002" else f"{name}.nii.gz")
        )
        nib.save(nib.Nifti1Image(label, np.eye(4)), root / "labelsTr" / f"{name}.nii.gz")
    Image.fromarray(rng.integers(0, 256, size=(6, 7)).astype(np.uint8)).save(root / "imagesTr" / "pic.png")
    Image.fromarray(rng.integers(0, 2, size=(6, 7)).astype(np.uint8) * 255).save(
        root / "labelsTr" / "pic.png"
    )
    entries = [
        {"image": f"./imagesTr/{n}.nii.gz", "label": f"./labelsTr/{n}.nii.gz"}
        for n in ("case_000", "case_001")
    ]
    meta = {"name": "fuzz", "labels": {"0": "background", "1": "a", "2": "b"}, "training": entries}
    (root / "dataset.json").write_text(json.dumps(meta))
    (root.parent / "outside.nii.gz").write_bytes((root / "imagesTr" / "case_000.nii.gz").read_bytes())
    return root


def _feed_file(name: str, read: Callable[[Path], object]) -> Callable[[Path, bytes], object]:
    """A feed that writes the input to a fresh file `name` and reads it with `read`."""

    def feed(work: Path, data: bytes) -> object:
        path = work / name
        path.write_bytes(data)
        try:
            return read(path)
        finally:
            path.unlink()

    return feed


def _load_volume(path: Path) -> object:
    """The file as a case's image and as its mask."""
    return load_case(CaseFiles("x", (path,), path), None)


def _feed_meta(work: Path, meta: object) -> object:
    return _feed_meta_bytes(work, json.dumps(meta).encode())


def _feed_meta_bytes(work: Path, data: bytes) -> object:
    (work / "msd" / "dataset.json").write_bytes(data)
    return load_cases(index_dataset(work / "msd"))


def readers() -> dict[str, Reader]:
    """Every reader under fuzz, by name."""
    nii = nifti_seeds()
    png, jpg = picture_seeds("PNG"), picture_seeds("JPEG")
    png_inputs = mutated(png) | mutated(png).map(with_png_crcs) | random_bytes()
    meta = json.dumps(
        {"labels": {"0": "bg", "1": "a"}, "training": [{"image": "./imagesTr/case_000.nii.gz"}]}
    )
    meta_bytes = mutated([meta.encode()]) | random_bytes() | st.integers(1, 100_000).map(lambda n: b"[" * n)
    listed = [
        Reader("nifti .nii", mutated(nii, NIFTI_HEADER) | random_bytes(), _feed_file("x.nii", _load_volume)),
        Reader(
            "nifti .nii.gz",
            mutated([gzip.compress(s) for s in nii])
            | mutated(nii, NIFTI_HEADER).map(gzip.compress)
            | random_bytes(),
            _feed_file("x.nii.gz", _load_volume),
        ),
        Reader("png image", png_inputs, _feed_file("x.png", read_image2d)),
        Reader("png mask", png_inputs, _feed_file("x.png", read_mask2d)),
        Reader("jpg image", mutated(jpg) | random_bytes(), _feed_file("x.jpg", read_image2d)),
        Reader("jpg mask", mutated(jpg) | random_bytes(), _feed_file("x.jpg", read_mask2d)),
        Reader("dataset.json structure", json_like(), _feed_meta),
        Reader("dataset.json bytes", meta_bytes, _feed_meta_bytes),
    ]
    return {reader.name: reader for reader in listed}


def prepare(work: Path) -> Path:
    """The work folder the feeds write into, with its MSD folder for the dataset.json readers."""
    write_tiny_msd(work / "msd")
    return work


def fuzz(reader: Reader, work: Path, examples: int, escapes: dict[str, list[str]] | None = None) -> int:
    """Feed up to `examples` inputs to `reader`; return how many ran.

    An escape fails the run (Hypothesis shrinks it and reports it, with a per-input deadline), or,
    given an `escapes` dict, is recorded there (what escaped -> the inputs it escaped on) and the
    run goes on.
    """
    count = 0

    @settings(
        max_examples=examples,
        deadline=None if escapes is not None else timedelta(seconds=5),
        database=None,
        phases=[Phase.generate] if escapes is not None else list(Phase),
        suppress_health_check=list(HealthCheck),
    )
    @given(reader.inputs)
    def property_(data: object) -> None:
        nonlocal count
        count += 1
        try:
            feed_one(reader, work, data)
        except (Exception, Hang) as err:
            if escapes is None:
                raise
            escapes.setdefault(f"{type(err).__name__}: {first_line(err)}", []).append(repr(data)[:200])

    property_()
    return count


def feed_one(reader: Reader, work: Path, data: object) -> None:
    """Feed one input; an InputError is an answer, a warning (a stray stderr line) raises `StrayWarning`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with time_limit(HANG_SECONDS):
                reader.feed(work, data)
        except InputError:
            pass
    if caught:
        raise StrayWarning(f"{caught[0].category.__name__}: {caught[0].message}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2500, help="inputs per reader")
    parser.add_argument("--only", action="append", help="fuzz only this reader (repeatable)")
    args = parser.parse_args()
    chosen = readers()
    unknown = set(args.only or []) - set(chosen)
    if unknown:
        raise InputError(f"--only {sorted(unknown)}: choose among {sorted(chosen)}")
    escaped = 0
    with tempfile.TemporaryDirectory() as folder:
        work = prepare(Path(folder))
        for name in args.only or chosen:
            escapes: dict[str, list[str]] = {}
            start = time.perf_counter()
            count = fuzz(chosen[name], work, args.examples, escapes)
            seconds = time.perf_counter() - start
            total = sum(len(inputs) for inputs in escapes.values())
            print(f"{name:24} {count:7d} inputs {seconds:8.1f} s {total:5d} escapes")
            for what, inputs in escapes.items():
                print(f"    {len(inputs)} x {what}\n        first on {inputs[0]}")
            escaped += total
    sys.exit(1 if escaped else 0)


if __name__ == "__main__":
    guarded(main)
