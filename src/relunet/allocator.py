"""glibc's malloc set for PyTorch training on the CPU: freed tensor memory reused, not mapped anew.

Each training step frees and allocates the same large buffers (activations, gradients). By
default glibc serves every block above its mmap threshold (128 kB, rising to at most 32 MB) with
a fresh mapping and unmaps it on free, so each page of each such buffer is faulted in and zeroed
again at every step: the kernel's share of a CPU epoch can reach half of it. `reuse_freed_memory`
has glibc serve every block from its heap and keep up to `TRIM_BYTES` of freed heap for the next
step. `benchmarks/allocator.py` measures the gain and what it costs in peak memory.

Left as it is where the user set glibc's own variables (`MALLOC_*`, `GLIBC_TUNABLES`) or
`RELUNET_SYSTEM_MALLOC`, and off glibc.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
#: freed memory at the top of the heap kept for the next step, beyond which it goes back
TRIM_BYTES = 1 << 30
#: extra heap asked for at each growth, so that a step's buffers do not grow it piece by piece
TOP_PAD_BYTES = 256 << 20
#: set (to anything) to keep glibc's defaults
OPT_OUT = "RELUNET_SYSTEM_MALLOC"


def reuse_freed_memory() -> bool:
    """Set this process's glibc malloc as the module says; True where it was set."""
    if not sys.platform.startswith("linux") or _user_chose():
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False  # not glibc
    settings = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_BYTES), (M_TOP_PAD, TOP_PAD_BYTES))
    return all(mallopt(option, value) == 1 for option, value in settings)


def _user_chose() -> bool:
    """The user set glibc's malloc variables, or asked for its defaults."""
    return (
        OPT_OUT in os.environ
        or "GLIBC_TUNABLES" in os.environ
        or any(k.startswith("MALLOC_") for k in os.environ)
    )
