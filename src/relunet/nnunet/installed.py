"""Whether nnU-Net v2 is installed, its environment variables, and the `nnUNet_extTrainer` line."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from relunet.errors import InputError

EXTRA = "pip install -e '.[nnunet]'"
#: the folder `nnUNet_extTrainer` points at: nnU-Net searches it for trainer classes by name
TRAINERS_FOLDER = Path(__file__).parent / "ext_trainers"


def require_nnunet() -> None:
    """Raise `InputError` unless nnunetv2 can be imported."""
    if importlib.util.find_spec("nnunetv2") is None:
        raise InputError(f"nnU-Net v2 is not installed: install relunet's nnunet extra ({EXTRA})")


def env_folder(name: str, why: str) -> Path:
    """The folder in the environment variable `name` (nnUNet_results, nnUNet_preprocessed, ...)."""
    value = os.environ.get(name)
    if not value:
        raise InputError(f"{name} is not set: export {name}=<folder> ({why})")
    return Path(value)


def ext_trainer_line() -> str:
    """The shell line that lets nnU-Net's own commands find relunet's trainers."""
    return f"export nnUNet_extTrainer={TRAINERS_FOLDER.resolve()}"
