"""Choose the compute device."""

from __future__ import annotations

import contextlib
import platform

import torch
from torch import nn

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


def describe(device: torch.device) -> str:
    """What runs on `device`, for the record: the GPU's name, or the CPU and its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"{platform.processor() or platform.machine()} CPU, {threads} thread{'s' if threads > 1 else ''}"


def autocast(device: torch.device, enabled: bool | None = None) -> contextlib.AbstractContextManager:
    """bf16 mixed precision; `None` turns it on for CUDA and off for the CPU."""
    on = device.type == "cuda" if enabled is None else enabled
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=on)


def inference_amp(trained_with: bool | None, device: torch.device) -> bool:
    """Whether a model trained with `amp = trained_with` predicts under bf16 autocast on `device`.

    On a GPU as it was trained (`None`: on); on the CPU never, bf16 there being slower than float32.
    """
    return device.type == "cuda" and trained_with is not False


def prepare_model(model: nn.Module, device: torch.device, channels_last: bool | None = None) -> nn.Module:
    """Move `model` to `device`; 2D models get the channels-last layout (`None`: on CUDA only)."""
    model = model.to(device)
    on = device.type == "cuda" if channels_last is None else channels_last
    if on and getattr(model, "spatial_dims", 2) == 2:
        model = model.to(memory_format=torch.channels_last)
    return model
