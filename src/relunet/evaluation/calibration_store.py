"""`calibration.json`: the (score, Dice) pairs of held-out cases, bound to one model.

Stored beside the checkpoint it was made for (`fold_K/calibration.json`). The pairs themselves
are kept, not one threshold, so the promise (target Dice, risk, confidence) is chosen at
prediction time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from relunet.atomic import write_json
from relunet.errors import InputError


@dataclass(frozen=True)
class Calibration:
    """Calibration pairs of one model.

    Attributes:
        model_sha256: checksum of the checkpoint the pairs were predicted with.
        score: which score the pairs hold (`methods.InferenceMethod.score_id`, e.g. "self_pair C").
        source: where the labelled cases came from (a dataset or a cross-validation folder).
        pairs: one dict per case: case_id, score, dice and the image statistics of
            `relunet.evaluation.batch_shift.image_statistics`.
    """

    model_sha256: str
    score: str
    source: str
    pairs: list[dict]

    def column(self, name: str) -> np.ndarray:
        """`(N,)` values of one field of the pairs."""
        return np.array([float(p[name]) for p in self.pairs])


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_calibration(path: Path, calibration: Calibration) -> None:
    """Write `calibration.json` atomically."""
    write_json(path, asdict(calibration))


def read_calibration(path: Path, model_sha256: str) -> Calibration:
    """Read `calibration.json`; refuse it if damaged or made for another model."""
    try:
        raw = json.loads(Path(path).read_text())
        calibration = Calibration(**raw)
        if not calibration.pairs or not all({"score", "dice"} <= set(p) for p in calibration.pairs):
            raise ValueError("no (score, dice) pairs")
        calibration.column("score"), calibration.column("dice")
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise InputError(
            f"{path}: damaged calibration ({type(err).__name__}); run `relunet calibrate` again"
        ) from err
    if calibration.model_sha256 != model_sha256:
        raise InputError(
            f"{path}: this calibration was made for a different model (checkpoint changed since); "
            "run `relunet calibrate RUN DATA` again for this model"
        )
    return calibration
