"""Checkpoints: weights, optimiser state, the history so far and the config that rebuilds the model.

Saved with `torch.save` as plain tensors and Python values, so `torch.load(weights_only=True)`
reads them; written atomically. The history travels inside the checkpoint, so a kill between
writing it and `history.csv` cannot make the two disagree.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from relunet.atomic import write_bytes
from relunet.config import RunConfig
from relunet.errors import InputError
from relunet.nets import build_model

REQUIRED = {"model": dict, "config": dict, "epoch": int}


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint dict (see `training.loop`) atomically.

    It is serialised in memory first, so a full disk or a file-size limit is one `WriteError`
    naming the file, and the previous checkpoint stays.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint safely (`weights_only=True`) onto the CPU and check its contents."""
    if not path.is_file():
        raise InputError(f"{path}: no checkpoint; train first (`relunet train`) or check the path")
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol warns before it fails
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or foreign files raise many types
        raise _damaged(path, f"unreadable, {type(err).__name__}") from err
    if not isinstance(state, dict):
        raise _damaged(path, "not a relunet checkpoint")
    for key, kind in REQUIRED.items():
        if not isinstance(state.get(key), kind):
            raise _damaged(path, f"no valid '{key}' entry")
    return state


def checkpoint_config(path: Path, state: dict[str, Any]) -> RunConfig:
    """The run config stored in a checkpoint read by `load_checkpoint`."""
    try:
        return RunConfig.from_dict(state["config"])
    except (TypeError, ValueError, AttributeError) as err:
        raise _damaged(path, f"its config does not fit this relunet ({err})") from err


def load_model(path: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, RunConfig]:
    """Rebuild the model from the checkpoint alone; returns it in eval mode with its config."""
    state = load_checkpoint(path)
    config = checkpoint_config(path, state)
    model = build_model(config.model)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as err:
        raise _damaged(path, "its weights do not fit the model its config describes") from err
    return model.to(device).eval(), config


def _damaged(path: Path, what: str) -> InputError:
    return InputError(
        f"{path}: damaged checkpoint ({what}); restore it from a copy, or retrain this fold with "
        "`relunet train ... --overwrite`"
    )
