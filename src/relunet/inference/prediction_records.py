"""What `predict` adds to its results: a decision per case when the run is calibrated, and records.

Estimated Dice, interval and review flag per case; a JSON file per case; `prediction.json` with
the promise and the batch-shift check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from relunet.atomic import write_json
from relunet.errors import InputError
from relunet.evaluation.batch_shift import STATISTICS, batch_shift
from relunet.evaluation.calibration_store import Calibration, file_sha256, read_calibration
from relunet.evaluation.decision import Promise, check_enough_pairs, decide
from relunet.rundir import FoldFolder

PREDICTION_NAME = "prediction.json"
CASE_FOLDER = "cases"
#: what a user is told when every case of a batch has the same score
ONE_SCORE_WARNING = (
    "every case has the same score, so the order says nothing; this model's confidence cannot "
    "rank cases (for a Relation U-Net: its intersection head may segment nothing; check with "
    "`relunet evaluate` on labelled cases, or train longer or wider)"
)


@dataclass(frozen=True)
class ModelIdentity:
    """The model a prediction came from, and what ran it.

    Its checkpoint, the checkpoint's checksum, fold and kind; the engine, "torch" or
    "onnxruntime", with the ONNX file's path and checksum when one was given (else the
    checkpoint was exported in memory).
    """

    checkpoint: str
    sha256: str
    fold: int
    kind: str
    engine: str = "torch"
    onnx: str | None = None
    onnx_sha256: str | None = None

    @classmethod
    def of(
        cls, fold: FoldFolder, kind: str, engine: str = "torch", onnx: Path | None = None
    ) -> ModelIdentity:
        """Identity of the fold's checkpoint, run by `engine` (from the file `onnx` if given)."""
        checkpoint = fold.checkpoint
        exported = (str(Path(onnx).resolve()), file_sha256(Path(onnx))) if onnx else (None, None)
        return cls(str(checkpoint.resolve()), file_sha256(checkpoint), fold.number, kind, engine, *exported)


def load_calibration(
    fold: FoldFolder, model: ModelIdentity, promise: Promise, score_id: str
) -> Calibration | None:
    """The fold's calibration if it has one, else None.

    Checked against the model, the promise and the score the prediction gives (`score_id`, see
    `methods.InferenceMethod.score_id`): pairs of another score would estimate nonsense.
    """
    path = fold.calibration
    if not path.is_file():
        return None
    calibration = read_calibration(path, model.sha256)
    if calibration.score != score_id:
        raise InputError(
            f"{path}: calibrated on the score '{calibration.score}', but this prediction gives "
            f"'{score_id}'; predict as it was calibrated (the same --tta, no --anchors) or run "
            "`relunet calibrate` again with this prediction's --tta"
        )
    check_enough_pairs(len(calibration.pairs), promise, str(path))
    return calibration


def add_decisions(rows: list[dict], calibration: Calibration, promise: Promise) -> float | None:
    """Add estimated_dice, dice_low, dice_high and review to each row (in place); the threshold.

    With the expected guarantee each row also gets its `conformal_pvalue` (see `conformal_selection`).
    """
    scores = np.array([r["score"] for r in rows])
    decided = decide(calibration.column("score"), calibration.column("dice"), scores, promise)
    for i, row in enumerate(rows):
        row["estimated_dice"] = float(decided["estimated_dice"][i])
        row["dice_low"] = float(decided["dice_low"][i])
        row["dice_high"] = float(decided["dice_high"][i])
        row["review"] = bool(decided["review"][i])
        if "conformal_pvalue" in decided:
            row["conformal_pvalue"] = float(decided["conformal_pvalue"][i])
    return decided["threshold"]


def shift_check(rows: list[dict], statistics: dict[str, dict[str, float]], calibration: Calibration) -> dict:
    """Compare the batch's scores and image statistics with the calibration cases'."""
    reference = {"score": calibration.column("score")}
    reference |= {n: calibration.column(n) for n in STATISTICS if all(n in p for p in calibration.pairs)}
    batch = {"score": np.array([r["score"] for r in rows])}
    batch |= {n: np.array([statistics[r["case_id"]][n] for r in rows]) for n in STATISTICS}
    return batch_shift(reference, batch)


def write_case_files(
    out: Path, rows: list[dict], inputs: dict[str, list[Path]], model: ModelIdentity
) -> None:
    """`cases/<case_id>.json` per case: its row, the input files with their checksums, the model."""
    for row in rows:
        files = inputs[row["case_id"]]
        write_json(
            out / CASE_FOLDER / f"{row['case_id']}.json",
            {
                **row,
                "image": [str(p.resolve()) for p in files],
                "image_sha256": [file_sha256(p) for p in files],
                "model": vars(model),
            },
        )


def write_batch_record(
    out: Path,
    rows: list[dict],
    model: ModelIdentity,
    promise: Promise | None,
    threshold: float | None,
    shift: dict | None,
    scoring: dict | None = None,
) -> dict:
    """`prediction.json`: whether the run was calibrated, the promise and threshold, the shift check.

    The promise records its `guarantee`; with "expected" the threshold is the lowest score this
    batch accepted (Benjamini–Hochberg decides per batch), with "high-probability" the calibrated λ.
    `scoring` says which method gave the scores: its `score_id` and `forward_passes` per sample.

    `distinct_scores` counts the different scores of the batch: one over several cases means
    the score cannot rank them (e.g. an intersection head that segments nothing gives C = 0 everywhere).
    """
    record = {
        "calibrated": promise is not None,
        "model": vars(model),
        "n_cases": len(rows),
        "distinct_scores": len({float(r["score"]) for r in rows}),
        "n_flagged": sum(bool(r.get("review")) for r in rows),
        "promise": None
        if promise is None
        else {**vars(promise), "threshold": threshold, "words": promise.words()},
        "shift": shift,
        **(scoring or {}),
    }
    write_json(out / PREDICTION_NAME, record)
    return record


def scores_cannot_rank(record: dict) -> bool:
    """Whether a `prediction.json` of several cases holds one score only (older records: False)."""
    return record["n_cases"] > 1 and record.get("distinct_scores") == 1
