"""An nnU-Net trained-model folder (`nnUNet_results/DatasetXXX/Trainer__Plans__Configuration`).

Recognised by its files alone (no nnunetv2 import): `plans.json` and `dataset.json` beside
`fold_K/` folders. relunet keeps a fold's `calibration.json` in that fold's folder, as for its runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from relunet.errors import InputError
from relunet.rundir import CONFIG_NAME, FoldFolder, fold_name

CHECKPOINT = "checkpoint_final.pth"
SPLITS = "splits_final.json"


def is_model_folder(path: Path) -> bool:
    """Whether `path` is an nnU-Net trained-model folder rather than a relunet run."""
    path = Path(path)
    return (
        (path / "plans.json").is_file()
        and (path / "dataset.json").is_file()
        and not (path / CONFIG_NAME).is_file()
    )


@dataclass(frozen=True)
class ModelFolder:
    """One fold of an nnU-Net model folder: its checkpoint, plans and dataset description."""

    path: Path
    fold: int

    @property
    def fold_folder(self) -> FoldFolder:
        """`fold_K/`, where the checkpoint and relunet's calibration live."""
        return FoldFolder(self.path / fold_name(self.fold))

    @property
    def checkpoint(self) -> Path:
        """nnU-Net's final checkpoint of the fold."""
        return self.fold_folder.path / CHECKPOINT

    def check(self) -> ModelFolder:
        """Refuse a fold without a final checkpoint; returns self."""
        if not self.checkpoint.is_file():
            trained = sorted(p.parent.name for p in self.path.glob(f"{fold_name('*')}/{CHECKPOINT}"))
            hint = f"trained: {', '.join(trained)}; choose one with --fold" if trained else "train it first"
            raise InputError(f"{self.checkpoint}: not found, fold {self.fold} is not trained ({hint})")
        return self

    def json(self, name: str) -> dict:
        """`plans.json` or `dataset.json` of the folder."""
        path = self.path / name
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise InputError(
                f"{path}: unreadable ({type(err).__name__}); copy the model folder again"
            ) from None

    @property
    def dataset_name(self) -> str:
        """`DatasetXXX_Name`, as in nnUNet_raw and nnUNet_preprocessed."""
        return self.json("plans.json")["dataset_name"]

    def validation_cases(self, preprocessed: Path) -> list[str]:
        """The fold's validation cases in nnU-Net's `splits_final.json` (never trained on)."""
        path = Path(preprocessed) / self.dataset_name / SPLITS
        try:
            splits = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise InputError(
                f"{path}: unreadable ({type(err).__name__}); nnU-Net writes it when a fold is trained"
            ) from None
        if not 0 <= self.fold < len(splits):
            raise InputError(f"{path}: no fold {self.fold} (it has {len(splits)}); choose another --fold")
        return list(splits[self.fold]["val"])
