"""The settings of a published cross-validation, declared once in a file beside its results.

`docs/crossval/<name>/settings.yaml` says what `benchmarks/crossval_results.py <name>` trains
with, every setting that differs from relunet's defaults pinned:

    purpose: one line: the question this cross-validation answers
    data_folder: Task04_Hippocampus        # the dataset's folder under ../shared/data
    paper_dataset: Hippocampus             # optional: the paper's dataset it stands beside
    verdict: Hippocampus                   # optional: the verdict table its methods are rows of
    data: {dims: 2}                        # `DataConfig` fields unlike the defaults
    train: {epochs: 40, augment: false}    # `TrainConfig` fields unlike the defaults
    features: [32, 32, 64, 128, 256, 32]   # optional: the backbone's widths, if not its default

A new cross-validation is a new folder holding such a file. Beside it, `calls.json` records each
call that made its results (command, wall time, hardware, the settings it ran with) and
`README.md` is its generated page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from relunet.config import DataConfig, RunConfig, TrainConfig, check_ranges
from relunet.errors import InputError

SETTINGS_NAME = "settings.yaml"
#: the log of the calls that made the results: each one's command, time, hardware and settings
CALLS_NAME = "calls.json"
#: the generated page of a published cross-validation
PAGE_NAME = "README.md"
REQUIRED = ("purpose", "data_folder")
OPTIONAL = ("paper_dataset", "verdict", "data", "train", "features")
#: data settings a settings file may pin (`path` is the data folder's, `folds` the call's)
DATA_KEYS = frozenset(f.name for f in fields(DataConfig)) - {"path", "folds"}
TRAIN_KEYS = frozenset(f.name for f in fields(TrainConfig))


@dataclass(frozen=True)
class CrossvalSettings:
    """One published cross-validation's declaration.

    Attributes:
        name: its folder's name under docs/crossval.
        purpose: the question it answers, one line.
        data_folder: the dataset's folder under ../shared/data.
        data: `DataConfig` fields that differ from the defaults (lists as YAML gives them).
        train: `TrainConfig` fields that differ from the defaults.
        features: the backbone's widths, None for its default.
        paper_dataset: the paper's dataset it stands beside, if any.
        verdict: the verdict table (a dataset's) its methods are rows of, if any.
    """

    name: str
    purpose: str
    data_folder: str
    data: dict[str, Any]
    train: dict[str, Any]
    features: tuple[int, ...] | None = None
    paper_dataset: str | None = None
    verdict: str | None = None

    def data_config(self) -> DataConfig:
        """The data settings as `relunet.crossval.crossval` takes them."""
        return DataConfig(**{k: _tuples(v) for k, v in self.data.items()})

    def train_config(self, **overrides: Any) -> TrainConfig:
        """The training settings, with `overrides` (those not None) on top."""
        return TrainConfig(**{**self.train, **{k: v for k, v in overrides.items() if v is not None}})

    def recorded(self) -> dict[str, Any]:
        """The settings as a call of calls.json records them: data, train, and widths if pinned."""
        widths = {} if self.features is None else {"features": list(self.features)}
        return {**self.data, **self.train, **widths}

    @property
    def classes(self) -> int:
        """Foreground classes of its data."""
        return len(self.data.get("label_sets") or ()) or 1

    @property
    def data_label(self) -> str:
        """The data it ran on, in words: its folder, and its classes where several."""
        return self.data_folder + (f", {self.classes} classes" if self.classes > 1 else "")


def read_settings(folder: Path) -> CrossvalSettings:
    """The settings file of the published cross-validation `folder`, checked."""
    path = Path(folder) / SETTINGS_NAME
    if not path.is_file():
        raise InputError(f"{path}: no settings file; declare the cross-validation there ({__name__})")
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(f"{path}: not readable YAML ({type(err).__name__}); fix or restore it") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: not a mapping of settings; see {__name__} for its fields")
    unknown = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL))
    missing = [key for key in REQUIRED if not isinstance(raw.get(key), str) or not raw[key]]
    data, train = raw.get("data") or {}, raw.get("train") or {}
    if not isinstance(data, dict) or not isinstance(train, dict):
        raise InputError(f"{path}: `data` and `train` must be mappings of settings")
    unknown += [f"data.{k}" for k in sorted(set(data) - DATA_KEYS)]
    unknown += [f"train.{k}" for k in sorted(set(train) - TRAIN_KEYS)]
    if unknown or missing:
        what = [
            f"{word} {', '.join(keys)}" for word, keys in (("unknown", unknown), ("missing", missing)) if keys
        ]
        raise InputError(f"{path}: {'; '.join(what)}; see {__name__} for its fields")
    features = raw.get("features")
    settings = CrossvalSettings(
        name=Path(folder).name,
        purpose=raw["purpose"],
        data_folder=raw["data_folder"],
        data=data,
        train=train,
        features=None if features is None else tuple(features),
        paper_dataset=raw.get("paper_dataset"),
        verdict=raw.get("verdict"),
    )
    try:
        check_ranges(RunConfig(data=settings.data_config(), train=settings.train_config()))
    except (InputError, TypeError) as err:
        raise InputError(f"{path}: {err}") from None
    return settings


def published_settings(crossval_docs: Path) -> dict[str, CrossvalSettings]:
    """The settings of every folder of `crossval_docs` that has a settings file, by name."""
    files = sorted(Path(crossval_docs).glob(f"*/{SETTINGS_NAME}"))
    return {path.parent.name: read_settings(path.parent) for path in files}


def _tuples(value: Any) -> Any:
    """Lists (as YAML writes them) as tuples, nested ones too, as the frozen configs hold them."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def read_calls(folder: Path) -> list[dict]:
    """The calls recorded in a published cross-validation's calls.json (none if it has none)."""
    log = Path(folder) / CALLS_NAME
    return json.loads(log.read_text()) if log.is_file() else []


def crossval_link(name: str) -> str:
    """A markdown link from docs/ to the page of the cross-validation `name`."""
    return f"[{name}](crossval/{name}/{PAGE_NAME})"
