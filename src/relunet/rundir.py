"""The one owner of the run folder's and the cross-validation folder's names and paths.

A run folder (`relunet train --out RUN`) holds one model per trained fold; a cross-validation
folder (`relunet crossval --out DIR`) holds a run folder per model under `models/` and the
results of each method under `methods/`. Every other module asks here for a path. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from relunet.config import RunConfig, load_config
from relunet.data.splits import fold_split
from relunet.errors import InputError

CONFIG_NAME = "config.yaml"
SPLITS_NAME = "splits.json"
CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.csv"
CALIBRATION_NAME = "calibration.json"
CONFIG_LOCK = ".config.lock"
CROSSVAL_CONFIG_NAME = "crossval.yaml"
SUMMARY_NAME = "summary.json"
PER_CASE_NAME = "per_case.csv"
PARTIAL_NAME = "per_case.partial.jsonl"
PREDICTIONS_DIR = "predictions"
MODELS_DIR = "models"
METHODS_DIR = "methods"
FOLD_PREFIX = "fold_"
SAMPLE_CACHE_DIR = "cache"


def fold_name(fold: int | str) -> str:
    """`fold_K`, the folder of fold `fold` (a number, or a placeholder such as "K")."""
    return f"{FOLD_PREFIX}{fold}"


def fold_number(name: str) -> int | None:
    """The K of a folder named `fold_K`; None for any other name."""
    digits = name.removeprefix(FOLD_PREFIX)
    return int(digits) if name.startswith(FOLD_PREFIX) and digits.isascii() and digits.isdigit() else None


def _fold_folders(folder: Path, holding: str | None) -> list[Path]:
    """The `fold_K` folders in `folder` (those holding the file `holding`, if given), by fold number."""
    found = [p for p in folder.glob(fold_name("*")) if fold_number(p.name) is not None and p.is_dir()]
    found = [p for p in found if holding is None or (p / holding).is_file()]
    return sorted(found, key=lambda p: fold_number(p.name))


@dataclass(frozen=True)
class FoldFolder:
    """`RUN/fold_K/`: one fold's model, its history and its calibration."""

    path: Path

    @property
    def number(self) -> int:
        """K, from the folder's name."""
        number = fold_number(self.path.name)
        if number is None:
            raise ValueError(f"{self.path}: not a fold folder")
        return number

    @property
    def checkpoint(self) -> Path:
        """Weights, optimiser state, config and history."""
        return self.path / CHECKPOINT_NAME

    @property
    def history(self) -> Path:
        """The history per epoch as a table."""
        return self.path / HISTORY_NAME

    @property
    def calibration(self) -> Path:
        """(score, Dice) pairs of held-out cases (`relunet calibrate`)."""
        return self.path / CALIBRATION_NAME

    @property
    def calibration_lock(self) -> Path:
        """Held while the calibration is written."""
        return self.path / f".{CALIBRATION_NAME}.lock"

    def is_trained(self) -> bool:
        """Whether the fold has a checkpoint."""
        return self.checkpoint.is_file()


@dataclass(frozen=True)
class RunFolder:
    """A `relunet train` run folder: config, splits and a `fold_K/` per trained fold."""

    path: Path

    @property
    def config_path(self) -> Path:
        """The settings the run was made with."""
        return self.path / CONFIG_NAME

    @property
    def splits_path(self) -> Path:
        """The seeded k-fold split by case."""
        return self.path / SPLITS_NAME

    @property
    def config_lock(self) -> Path:
        """Held while the run-wide files (config, splits) are checked and written."""
        return self.path / CONFIG_LOCK

    @property
    def sample_cache(self) -> Path:
        """Preprocessed training samples read from disk (`relunet.data.sample_cache`)."""
        return self.path / SAMPLE_CACHE_DIR

    def fold(self, fold: int) -> FoldFolder:
        """Fold `fold`'s folder (trained or not)."""
        return FoldFolder(self.path / fold_name(fold))

    def train_lock(self, fold: int) -> Path:
        """Held while fold `fold` trains."""
        return self.path / f".{fold_name(fold)}.train.lock"

    def train_locks(self) -> list[Path]:
        """The training locks present (held or left behind)."""
        return sorted(self.path.glob(f".{fold_name('*')}.train.lock"))

    def crossval_lock(self, fold: int) -> Path:
        """Held by the cross-validation process that trains this model's fold `fold`."""
        return self.path / f"{fold_name(fold)}.lock"

    def trained_folds(self) -> list[FoldFolder]:
        """The folds with a checkpoint, by fold number."""
        return [FoldFolder(p) for p in _fold_folders(self.path, CHECKPOINT_NAME)]

    def read_config(self) -> RunConfig:
        """The run's saved config; an `InputError` if it is missing or damaged."""
        return load_config(self.config_path)

    def fold_split(self, fold: int) -> dict[str, list[str]]:
        """Fold `fold`'s {"train": [...], "test": [...]} case names; an `InputError` if unreadable."""
        return fold_split(self.splits_path, fold)


def trained_fold(run: Path, fold: int | None) -> FoldFolder:
    """The requested fold, or the only trained fold when `fold` is None; it must have a checkpoint."""
    folder = RunFolder(Path(run))
    if fold is not None:
        chosen = folder.fold(fold)
        if not chosen.is_trained():
            raise InputError(f"{chosen.checkpoint}: not found; train fold {fold} first")
        return chosen
    trained = folder.trained_folds()
    if not trained:
        raise InputError(f"{run}: no trained checkpoint ({fold_name('K')}/{CHECKPOINT_NAME}); train first")
    if len(trained) > 1:
        found = ", ".join(f.path.name for f in trained)
        raise InputError(f"{run}: several trained folds ({found}); choose one with --fold")
    return trained[0]


@dataclass(frozen=True)
class MethodFold:
    """`DIR/methods/<method>/fold_K/`: one method's results on one test fold."""

    path: Path

    @property
    def number(self) -> int:
        """K, from the folder's name."""
        return FoldFolder(self.path).number

    @property
    def per_case(self) -> Path:
        """A row per test case."""
        return self.path / PER_CASE_NAME

    @property
    def partial(self) -> Path:
        """The rows of finished cases while the evaluation runs."""
        return self.path / PARTIAL_NAME

    @property
    def summary(self) -> Path:
        """The summary; its presence means done."""
        return self.path / SUMMARY_NAME

    @property
    def predictions(self) -> Path:
        """The saved maps of the test cases."""
        return self.path / PREDICTIONS_DIR

    @property
    def lock(self) -> Path:
        """Held by the process that evaluates this method on this fold."""
        return self.path.with_suffix(".lock")

    def prediction(self, case_id: str) -> Path:
        """The saved binary maps of one case."""
        return self.predictions / f"{case_id}.npz"


@dataclass(frozen=True)
class CrossvalFolder:
    """A `relunet crossval` folder: `models/<run>/` run folders, `methods/<method>/fold_K/`, summary.json."""

    path: Path

    @property
    def models(self) -> Path:
        """A run folder per trained model."""
        return self.path / MODELS_DIR

    @property
    def methods(self) -> Path:
        """A folder per evaluated method."""
        return self.path / METHODS_DIR

    @property
    def summary(self) -> Path:
        """The summary; its presence means done."""
        return self.path / SUMMARY_NAME

    @property
    def config_path(self) -> Path:
        """The settings every model of the cross-validation shares (backbone, data, training)."""
        return self.path / CROSSVAL_CONFIG_NAME

    @property
    def config_lock(self) -> Path:
        """Held while the cross-validation's settings are checked and written."""
        return self.path / CONFIG_LOCK

    def is_crossval(self) -> bool:
        """Whether the folder looks like a cross-validation folder (models/ and methods/)."""
        return self.models.is_dir() and self.methods.is_dir()

    def model_run(self, name: str) -> RunFolder:
        """The run folder of the model `name` (`<kind>[_flips]_seed<S>`)."""
        return RunFolder(self.models / name)

    def model_runs(self) -> list[RunFolder]:
        """The model run folders present, by name."""
        return [RunFolder(p) for p in sorted(self.models.glob("*/")) if p.is_dir()]

    def any_model_config(self) -> Path | None:
        """The config of any model (they share data settings), or None if no model has one."""
        return next((r.config_path for r in self.model_runs() if r.config_path.is_file()), None)

    def method(self, method: str) -> Path:
        """The folder of one method's results."""
        return self.methods / method

    def method_fold(self, method: str, fold: int) -> MethodFold:
        """One method's results on test fold `fold`."""
        return MethodFold(self.method(method) / fold_name(fold))

    def method_folds(self, method: str, holding: str | None = PER_CASE_NAME) -> list[MethodFold]:
        """The method's fold folders (those holding the file `holding`, if given), by fold number."""
        return [MethodFold(p) for p in _fold_folders(self.method(method), holding)]


#: the run folder's layout, for docs/architecture.md
RUN_LAYOUT = (
    (CONFIG_NAME, "model, data and training settings (frozen dataclasses)"),
    (SPLITS_NAME, "the seeded k-fold split by case, made once and reused"),
    (
        f"{fold_name('K')}/{CHECKPOINT_NAME}",
        "weights, optimiser state, config and history; atomic each epoch",
    ),
    (f"{fold_name('K')}/{HISTORY_NAME}", "loss per head, learning rate, samples/s per epoch"),
    (
        f"{fold_name('K')}/{CALIBRATION_NAME}",
        "(score, Dice) pairs of held-out cases, bound to the checkpoint",
    ),
    (f".{fold_name('K')}.train.lock", "held while fold K trains"),
    (CONFIG_LOCK, "held while config and splits are checked and written"),
)
#: the cross-validation folder's layout, for docs/architecture.md
CROSSVAL_LAYOUT = (
    (CROSSVAL_CONFIG_NAME, "the settings all its models share: backbone, data, training, seed"),
    (f"{MODELS_DIR}/<run>/", "a run folder per trained model (`<kind>[_flips]_seed<S>`)"),
    (f"{MODELS_DIR}/<run>/{fold_name('K')}.lock", "held by the process training that model's fold K"),
    (f"{METHODS_DIR}/<method>/{fold_name('K')}/{PER_CASE_NAME}", "a row per test case: Dice of each head, C"),
    (f"{METHODS_DIR}/<method>/{fold_name('K')}/{SUMMARY_NAME}", "the fold's summary; present = fold done"),
    (
        f"{METHODS_DIR}/<method>/{fold_name('K')}/{PREDICTIONS_DIR}/",
        "binary maps of every head per case (npz)",
    ),
    (f"{METHODS_DIR}/<method>/{fold_name('K')}/{PARTIAL_NAME}", "finished cases while the evaluation runs"),
    (f"{METHODS_DIR}/<method>/{fold_name('K')}.lock", "held by the process evaluating that fold"),
    (SUMMARY_NAME, "per method: mean and std over folds, pooled confidence metrics"),
)
