"""nnU-Net trainers that differ only by their seed: the members of a deep ensemble.

`seeded(nnUNetTrainer, 2)` is `nnUNetTrainer_seed2`: the same trainer with PyTorch, NumPy and
Python's generators seeded in its constructor, before nnU-Net builds and initialises the network.
Its own class name gives it its own model folder (`nnUNetTrainer_seed2__nnUNetPlans__3d_fullres`),
so nnU-Net's commands train and predict it as any trainer (`nnUNetTrainer_seed1` to `_seed4` are
found through `nnUNet_extTrainer`). Members train on the same fold's cases: unlike the five fold
models of a cross-validation, their disagreement is the model's alone.
"""

from __future__ import annotations

import random
import re

import numpy as np
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

#: `<trainer>_seed<S>`: the name of a seeded variant
SEEDED_NAME = re.compile(r"(?P<base>.+)_seed(?P<seed>\d+)")
_VARIANTS: dict[tuple[type, int], type] = {}


def seed_everything(seed: int) -> None:
    """Seed PyTorch, NumPy's global generator and Python's `random`."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def seeded(base: type[nnUNetTrainer], seed: int) -> type[nnUNetTrainer]:
    """`<base>_seed<seed>`: `base` with every generator seeded when it is constructed (one class per pair)."""
    key = (base, seed)
    if key not in _VARIANTS:

        def __init__(  # nnU-Net records these parameters by name to rebuild the trainer
            self,
            plans: dict,
            configuration: str,
            fold: int,
            dataset_json: dict,
            device: torch.device = torch.device("cuda"),  # noqa: B008 (nnU-Net's signature)
        ) -> None:
            seed_everything(seed)
            base.__init__(self, plans, configuration, fold, dataset_json, device)

        name = f"{base.__name__}_seed{seed}"
        doc = f"`{base.__name__}` with its generators seeded {seed}: a deep-ensemble member."
        _VARIANTS[key] = type(name, (base,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})
    return _VARIANTS[key]


# The plain trainer's members 2 to 5 (member 1 is `nnUNetTrainer` itself), for nnUNetv2_train -tr.
nnUNetTrainer_seed1 = seeded(nnUNetTrainer, 1)
nnUNetTrainer_seed2 = seeded(nnUNetTrainer, 2)
nnUNetTrainer_seed3 = seeded(nnUNetTrainer, 3)
nnUNetTrainer_seed4 = seeded(nnUNetTrainer, 4)
