"""Fuzz the readers (benchmarks/fuzz_readers.py, small count): any input gives a result or one InputError.

`RELUNET_FUZZ_EXAMPLES` sets the inputs per reader (default 200).
"""

import os
import warnings

import pytest
from conftest import load_benchmark, run_benchmark

fuzz_readers = load_benchmark("fuzz_readers")
READERS = fuzz_readers.readers()
EXAMPLES = int(os.environ.get("RELUNET_FUZZ_EXAMPLES", "200"))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return fuzz_readers.prepare(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("name", READERS)
def test_reader_gives_a_result_or_one_input_error(work, name):
    assert fuzz_readers.fuzz(READERS[name], work, EXAMPLES) == EXAMPLES


def test_escapes_and_warnings_are_reported(work):
    def feed(work, data):
        if len(data) > 3:
            raise KeyError("escaped")
        if len(data) > 1:
            warnings.warn("stray", stacklevel=1)

    reader = fuzz_readers.Reader("escaping", fuzz_readers.random_bytes(), feed)
    escapes = {}
    fuzz_readers.fuzz(reader, work, 100, escapes)
    assert sorted(escapes) == ["KeyError: 'escaped'", "StrayWarning: UserWarning: stray"]
    with pytest.raises((KeyError, fuzz_readers.StrayWarning, ExceptionGroup)):
        fuzz_readers.fuzz(reader, work, 100)


def test_script_prints_counts_and_exits_zero():
    result = run_benchmark(
        "fuzz_readers", "--examples", 5, "--only", "png mask", "--only", "dataset.json bytes"
    )
    assert result.returncode == 0, result.stderr
    assert "png mask" in result.stdout and "5 inputs" in result.stdout and "0 escapes" in result.stdout
    assert run_benchmark("fuzz_readers", "--only", "gif").returncode == 2
