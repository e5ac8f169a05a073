"""The `calibrate` workflow: (score, Dice) pairs of labelled cases a model never trained on.

With a run folder, the cases of DATA outside the fold's training split are predicted (the held-out
fold of the run's own dataset, or all of a separate labelled folder). With a cross-validation
folder, each fold's model gets the out-of-fold cases it predicted itself (its test fold, already
evaluated): the five models' scores sit on different scales, so pooling them would calibrate a
model on other models' scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.progress import Progress

from relunet.data.layouts import index_dataset
from relunet.data.preprocess import label_targets
from relunet.data.training_set import load_cases
from relunet.errors import InputError
from relunet.evaluation.batch_shift import image_statistics
from relunet.evaluation.calibration_store import Calibration, file_sha256, write_calibration
from relunet.evaluation.decision import Promise, check_enough_pairs
from relunet.evaluation.metrics import dice_per_class
from relunet.evaluation.summary import read_per_case
from relunet.inference.methods import InferenceMethod, method_for_run
from relunet.inference.methods import method as method_named
from relunet.inference.workflows import open_predictor
from relunet.locks import sole_writer
from relunet.nnunet.model_folder import is_model_folder
from relunet.rundir import CrossvalFolder, FoldFolder, RunFolder, trained_fold

#: the column of the per-case tables that holds each method's default score
SCORE = "score"
#: the cross-validated methods `relunet predict` runs (without --anchors), by name
PREDICTED_METHODS: dict[str, InferenceMethod] = {
    m.name: m for m in (method_named(how) for how in ("self_pair", "unet", "relation_tta", "tta"))
}


def calibrate(
    run: Path,
    data: Path,
    fold: int | None = None,
    method: str = "relation_self_pair",
    device: str = "auto",
    tta: str | None = None,
    mirroring: bool = True,
    members: Sequence[Path] = (),
) -> list[Path]:
    """Calibrate a run's fold (or every fold model of a cross-validation folder); files written.

    A run's fold is calibrated on the score `relunet predict` gives with the same `tta`; a
    cross-validation folder on the scores of `method`. `run` may also be an nnU-Net model folder:
    its fold's validation cases in nnU-Net's `splits_final.json` are predicted
    (`relunet.nnunet.workflows.calibration_of`), with or without `mirroring`, alone or as a deep
    ensemble with `members`.
    """
    run = Path(run)
    if is_model_folder(run):
        from relunet.nnunet.workflows import calibration_of

        return [_store(*calibration_of(run, Path(data), fold, device, mirroring, members))]
    if members:
        raise InputError(f"--member {members[0]}: ensemble members are for nnU-Net model folders, not {run}")
    if CrossvalFolder(run).is_crossval():
        if tta:
            raise InputError(
                f"--tta {tta}: calibrate a cross-validation folder with --method, e.g. *_flip_tta"
            )
        return _calibrate_crossval(CrossvalFolder(run), Path(data), method)
    return [_calibrate_fold(run, Path(data), fold, device, tta)]


def _calibrate_fold(run: Path, data: Path, fold: int | None, device: str, tta: str | None) -> Path:
    predictor, fold_number = open_predictor(run, fold, device)
    wrapper = method_for_run(predictor.config, tta)
    folder = trained_fold(run, fold_number)
    index = index_dataset(data)
    splits = RunFolder(run)
    trained_on = set(splits.fold_split(fold_number)["train"]) if splits.splits_path.is_file() else set()
    held_out = [c for c in index.case_ids if c not in trained_on]
    if not held_out:
        raise InputError(
            f"{data}: every case was used to train fold {fold_number}; give labelled cases it never saw"
        )
    check_enough_pairs(len(held_out), Promise(), str(data))
    cases = load_cases(index.subset(held_out))
    label_sets = predictor.config.data.label_sets
    pairs = []
    with Progress(transient=True) as progress:
        for case in progress.track(cases, description="calibrate"):
            prediction = wrapper.predict([predictor], case)
            dice = dice_per_class(prediction.mask, label_targets(case.label, label_sets).astype(bool))
            pairs.append(
                {
                    "case_id": case.case_id,
                    "score": prediction.score,
                    "dice": float(dice.mean()),
                    **image_statistics(case.image),
                }
            )
    return _store(folder, Calibration(file_sha256(folder.checkpoint), wrapper.score_id, str(data), pairs))


def _calibrate_crossval(folder: CrossvalFolder, data: Path, method: str) -> list[Path]:
    if method not in PREDICTED_METHODS:
        raise InputError(
            f"--method {method}: calibrate from {' or '.join(PREDICTED_METHODS)}, the ways `relunet predict` "
            "scores a case"
        )
    rows = read_per_case(folder.path, method)
    if not rows:
        raise InputError(f"{folder.method(method)}: no evaluated folds; run `relunet crossval` first")
    missing = {SCORE, "dice_seg_a"} - rows[0].keys()
    if missing:
        raise InputError(
            f"{folder.method(method)}: per-case tables lack {sorted(missing)}; rerun the evaluation"
        )
    index = index_dataset(data)
    cases = {c.case_id: c for c in load_cases(index.subset([r["case_id"] for r in rows]), with_label=False)}
    wrapper = PREDICTED_METHODS[method]
    run = folder.model_run(wrapper.model_folder(0))
    mine = run.trained_folds()
    if not mine:
        raise InputError(f"{run.path}: no trained models to calibrate; copy them back first")
    source = f"{folder.path} (out-of-fold, {method}, the fold's own test cases)"
    by_fold = [(f, [r for r in rows if int(r["fold"]) == f.number]) for f in mine]
    for f, own in by_fold:
        check_enough_pairs(len(own), Promise(), f"{folder.method_fold(method, f.number).per_case}")
    return [
        _store(f, Calibration(file_sha256(f.checkpoint), wrapper.score_id, source, _pairs(own, cases)))
        for f, own in by_fold
    ]


def _pairs(rows: list[dict], cases: dict) -> list[dict]:
    """The calibration pairs of per-case `rows`, with the image statistics of their `cases`."""
    return [
        {
            "case_id": r["case_id"],
            "score": float(r[SCORE]),
            "dice": float(r.get("dice", r["dice_seg_a"])),  # tables before `dice` delivered seg_a
            **image_statistics(cases[r["case_id"]].image),
        }
        for r in rows
    ]


def _store(folder: FoldFolder, calibration: Calibration) -> Path:
    path = folder.calibration
    with sole_writer(folder.calibration_lock, str(path)):
        write_calibration(path, calibration)
    return path
