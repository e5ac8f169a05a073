"""The dataset behind a cross-validation folder: its cases by id, with their ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from relunet.config import RunConfig, load_config
from relunet.data.layouts import index_dataset, load_case
from relunet.data.preprocess import label_targets
from relunet.errors import InputError
from relunet.rundir import CrossvalFolder
from relunet.types import Case


class CrossvalCases:
    """Reads the test cases of a cross-validation from the dataset its models trained on.

    `data` gives the dataset's place where it moved since training; else the config's is used.
    """

    def __init__(self, folder: Path, data: Path | None = None) -> None:
        config_path = CrossvalFolder(folder).any_model_config()
        if config_path is None:
            raise InputError(
                f"{CrossvalFolder(folder).models}: no trained model here; give a cross-validation folder"
            )
        self.config: RunConfig = load_config(config_path)
        source = Path(data or self.config.data.path)
        if not source.exists():
            raise InputError(
                f"{source}: the dataset the models trained on is not there; give its place with --data"
            )
        self.index = index_dataset(source)
        self.files = {c.case_id: c for c in self.index.cases}

    def load(self, case_id: str) -> tuple[Case, np.ndarray]:
        """The case and its `(K, *S)` boolean ground truth, one channel per class."""
        if case_id not in self.files:
            raise InputError(
                f"{self.index.root}: has no case {case_id} of this cross-validation; "
                "give its dataset (--data)"
            )
        case = load_case(self.files[case_id], self.index.labels)
        return case, label_targets(case.label, self.config.data.label_sets).astype(bool)
