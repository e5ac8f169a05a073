"""Checkpoints: weights, optimiser state and the config that rebuilds the model.

Saved with `torch.save` as plain tensors and Python values, so `torch.load(weights_only=True)`
reads them; written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from relunet.atomic import atomic_path
from relunet.config import RunConfig
from relunet.errors import InputError
from relunet.nets import build_model

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint dict (see `training.loop`) atomically."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint safely (`weights_only=True`) onto the CPU."""
    if not path.is_file():
        raise InputError(f"{path}: no checkpoint; train first (`relunet train`) or check the path")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or foreign files raise many types
        raise InputError(f"{path}: unreadable checkpoint ({type(err).__name__}); retrain") from err


def load_model(path: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, RunConfig]:
    """Rebuild the model from the checkpoint alone; returns it in eval mode with its config."""
    state = load_checkpoint(path)
    config = RunConfig.from_dict(state["config"])
    model = build_model(config.model)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config
