"""Choose the compute device."""

from __future__ import annotations

import torch

from relunet.errors import InputError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """Return the device to use: "auto" picks CUDA when available, else the CPU."""
    if name not in DEVICES:
        raise InputError(f"--device {name}: choose one of {', '.join(DEVICES)}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is visible; use --device cpu")
    return torch.device(name)
