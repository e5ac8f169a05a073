"""The memory a setting needs, against what the machine has: refuse in one line before work starts.

The network's share is measured, not guessed: one forward pass of the model on a small probe input
records the bytes of every layer's output per input voxel (`activation_bytes_per_voxel`). Measured
on the CPU against peak resident memory (basicunet, 2D batches of 8 x 256^2 and 3D volumes of
96^3), training holds 0.87-0.92 of that sum (every output is kept for the backward pass) and
inference 0.35-0.37 of it (outputs are freed as the pass goes); `TRAIN_SHARE` and `INFER_SHARE`
round these up.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np
import torch

from relunet.config import ModelConfig
from relunet.errors import InputError

TRAIN_SHARE = 1.0
INFER_SHARE = 0.5
#: activations one inference pass may hold before its batch of samples is split
PASS_BUDGET = 1e9
#: resident memory of the Python process with torch, MONAI and the model loaded
PROCESS_BYTES = 0.6e9
#: bytes per voxel of one raw case while it is preprocessed: the stored image (up to 8 bytes a
#: channel), three float32 working copies, the int64 label map and the uint8 targets
PREPROCESS_BYTES_PER_VOXEL = 8 + 3 * 4 + 8 + 2


def available_bytes() -> int:
    """Memory the machine can give now: `MemAvailable` of /proc/meminfo, else all physical memory."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@functools.lru_cache(maxsize=16)
def activation_bytes_per_voxel(model: ModelConfig) -> float:
    """Bytes of all layer outputs of one forward pass per input voxel (per pair for a Relation U-Net).

    Measured on the smallest input the model takes: twice its size multiple per side.
    """
    from relunet.nets import build_model, size_multiple

    network = build_model(model).eval()
    side = 2 * size_multiple(model)
    shape = (1, model.in_channels, *[side] * model.spatial_dims)
    total = [0]

    def count(_module, _inputs, output) -> None:
        outputs = output if isinstance(output, tuple | list) else (output,)
        total[0] += sum(t.numel() * t.element_size() for t in outputs if torch.is_tensor(t))

    leaves = [m for m in network.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        probe = torch.zeros(shape)
        with torch.inference_mode():
            network(probe, probe) if model.kind == "relation" else network(probe)
    finally:
        for hook in hooks:
            hook.remove()
    return total[0] / side**model.spatial_dims


def training_step_bytes(model: ModelConfig, sample_shape: tuple[int, ...], batch_size: int) -> float:
    """Peak bytes of one training step on `batch_size` samples (pairs) of `sample_shape`."""
    voxels = math.prod(sample_shape) * batch_size
    return TRAIN_SHARE * activation_bytes_per_voxel(model) * voxels


def forward_bytes(model: ModelConfig, input_shape: tuple[int, ...], batch_size: int = 1) -> float:
    """Peak bytes of one inference pass on `batch_size` inputs of spatial shape `input_shape`."""
    return INFER_SHARE * activation_bytes_per_voxel(model) * math.prod(input_shape) * batch_size


def inference_batch(model: ModelConfig, sample_shape: tuple[int, ...], wanted: int, name: str) -> int:
    """Samples per inference pass: `wanted`, or fewer where their activations pass `PASS_BUDGET`.

    The budget is fixed, not the machine's, so a case is predicted the same way everywhere.
    Refuses a sample that alone needs more than is available, naming sliding windows.
    """
    one = forward_bytes(model, sample_shape)
    if model.spatial_dims == 3:
        check_fits(
            one,
            f"{name}: predicting a whole {shape_text(sample_shape)} volume in one pass",
            "predict by sliding windows with --patch-size 128,128,128",
        )
    return max(1, min(wanted, int(PASS_BUDGET // one)))


def in_memory_set_bytes(
    case_shapes: list[tuple[int, ...]], sample_counts: list[int], padded: tuple[int, ...], classes: int
) -> float:
    """Bytes of the in-memory training set while it is built.

    The raw cases (`case_shapes`, each `(C, *S)`; about 4 bytes an image voxel, 8 a label voxel)
    stay loaded; their `sample_counts` samples, padded to `padded` (float32 images, uint8
    targets), exist twice while the set is concatenated.
    """
    raw = sum(math.prod(s) * 4 + math.prod(s[1:]) * 8 for s in case_shapes)
    per_sample = math.prod(padded) * (case_shapes[0][0] * 4 + classes)
    return raw + 2 * sum(sample_counts) * per_sample


def preprocess_bytes(case_shapes: list[tuple[int, ...]]) -> float:
    """Peak bytes of preprocessing the largest case alone (the disk cache builds one case at a time)."""
    return max(math.prod(s[1:]) * (s[0] * PREPROCESS_BYTES_PER_VOXEL) for s in case_shapes)


def check_fits(needed: float, what: str, remedy: str) -> None:
    """Refuse, in one line naming how much and `remedy`, a setting that needs more than is available.

    Args:
        needed: estimated peak bytes, the process itself not included.
        what: what needs it, e.g. "training on whole 3D volumes of 512x512x304".
        remedy: the options that lower it, e.g. "use --patch-size 128,128,128".
    """
    total = needed + PROCESS_BYTES
    available = available_bytes()
    if total > available:
        raise InputError(
            f"{what} needs about {gigabytes(total)} of memory and {gigabytes(available)} is available; "
            f"{remedy}"
        )


def gigabytes(n: float) -> str:
    """`n` bytes as e.g. "3.2 GB"."""
    return f"{n / 1e9:.1f} GB"


def shape_text(shape: tuple[int, ...] | np.ndarray) -> str:
    """A spatial shape as e.g. "512x512x304"."""
    return "x".join(str(int(s)) for s in shape)
