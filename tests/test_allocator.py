"""The CPU training's malloc setting: freed buffers are reused instead of faulted in again."""

import ctypes
import os
import subprocess
import sys

import pytest

from relunet.allocator import OPT_OUT, reuse_freed_memory

try:
    GLIBC = sys.platform.startswith("linux") and hasattr(ctypes.CDLL("libc.so.6"), "mallopt")
except OSError:
    GLIBC = False

pytestmark = pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")

MB64 = 64 << 20
#: malloc a 64 MB buffer, fill it and free it, as a training step does with its activations;
#: prints whether the setting took and the page faults of the steps after the first
STEPS = f"""
import ctypes, resource
from relunet.allocator import reuse_freed_memory
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
tuned = reuse_freed_memory()
def step():
    buffer = libc.malloc({MB64})
    ctypes.memset(buffer, 1, {MB64})
    libc.free(buffer)
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(**env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if k != OPT_OUT and not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", STEPS], env={**clean, **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


def test_freed_buffers_are_reused_without_page_faults_and_the_user_can_opt_out():
    tuned, faults = _faults()
    kept, default_faults = _faults(**{OPT_OUT: "1"})
    assert (tuned, kept) == ("True", "False")
    assert default_faults >= 5 * MB64 // (2 << 20)  # glibc maps each buffer anew (2 MB pages at most)
    assert faults < default_faults // 10  # set: the freed heap serves the next buffer


def test_glibc_variables_set_by_the_user_are_kept(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert reuse_freed_memory() is False
