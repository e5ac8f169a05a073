"""`relunet predict` and `calibrate` on an nnU-Net model folder, writing what they write for a relunet run.

Inputs are nnU-Net's layout: `CASE_0000.nii.gz, CASE_0001.nii.gz, ...` (one file per channel of
the plans) in a folder, or the `imagesTr/` (and `labelsTr/`) of a raw dataset folder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.progress import Progress

from relunet.atomic import write_csv
from relunet.confidence import disagreement
from relunet.errors import InputError
from relunet.evaluation.batch_shift import image_statistics
from relunet.evaluation.calibration_store import Calibration, file_sha256
from relunet.evaluation.decision import Promise, check_enough_pairs
from relunet.evaluation.metrics import dice_per_class
from relunet.inference.prediction_records import (
    ModelIdentity,
    add_decisions,
    load_calibration,
    shift_check,
    write_batch_record,
    write_case_files,
)
from relunet.nnunet.installed import env_folder, require_nnunet
from relunet.nnunet.model_folder import ModelFolder, is_model_folder
from relunet.results_folder import check_apart, results_folder
from relunet.rundir import FoldFolder

CASES_NAME = "cases.csv"


def image_lists(source: Path, file_ending: str, channels: int) -> dict[str, list[Path]]:
    """Each case's channel files in `source` (or its `imagesTr/`), checked against the plans' channels."""
    source = Path(source)
    folder = source / "imagesTr" if (source / "imagesTr").is_dir() else source
    if not folder.is_dir():
        raise InputError(f"{source}: not a folder; give a folder of images in nnU-Net's layout")
    pattern = re.compile(rf"(.+)_(\d{{4}}){re.escape(file_ending)}")
    found: dict[str, dict[int, Path]] = {}
    for path in sorted(folder.iterdir()):
        match = pattern.fullmatch(path.name)
        if match:
            found.setdefault(match[1], {})[int(match[2])] = path
    if not found:
        raise InputError(
            f"{folder}: no images named CASE_0000{file_ending}; give a folder in nnU-Net's layout"
        )
    for case, files in found.items():
        if sorted(files) != list(range(channels)):
            raise InputError(
                f"{folder}: case {case} has channels {sorted(files)}, but the model's plans have {channels} "
                f"({case}_0000{file_ending} to {case}_{channels - 1:04d}{file_ending}); give those channels"
            )
    return {case: [files[i] for i in range(channels)] for case, files in found.items()}


def score_id(model, mirroring: bool) -> str:  # model: NnunetModel | NnunetEnsemble
    """The score a prediction gives (a calibration holds only for the same, mirroring included)."""
    return model.score_id + (" mirrored" if mirroring else "")


def _folders(run: Path, fold: int | None, members: Sequence[Path]) -> list[ModelFolder]:
    """The fold of the model folder and of each ensemble member, each checked to be trained."""
    require_nnunet()
    for member in members:
        if not is_model_folder(member):
            raise InputError(
                f"--member {member}: not an nnU-Net model folder (plans.json, dataset.json, fold_K/); "
                "give a folder trained with relunet nnunet train ... --seed S"
            )
    return [ModelFolder(Path(path), 0 if fold is None else fold).check() for path in (run, *members)]


def _inputs(run: Path, fold: int | None, source: Path, members: Sequence[Path] = ()) -> dict[str, list[Path]]:
    """The cases of `source` for the model folder's fold, checked before the model is loaded."""
    dataset = _folders(run, fold, members)[0].json("dataset.json")
    return image_lists(source, dataset["file_ending"], len(dataset["channel_names"]))


def _open(run: Path, fold: int | None, device: str, mirroring: bool, members: Sequence[Path] = ()):
    """The model folder's fold and its model, or the ensemble of it and `members` (same fold)."""
    from relunet.device import resolve_device
    from relunet.nnunet.inference import NnunetModel

    folders = _folders(run, fold, members)
    models = [NnunetModel(folder, str(resolve_device(device)), mirroring) for folder in folders]
    if not members:
        return folders[0], models[0]
    from relunet.nnunet.ensemble import NnunetEnsemble

    checksums = [file_sha256(folder.checkpoint) for folder in folders]
    return folders[0], NnunetEnsemble(models, [folder.path for folder in folders], checksums)


def predict_model_folder(
    run: Path,
    source: Path,
    out: Path,
    fold: int | None = None,
    device: str = "auto",
    overwrite: bool = False,
    promise: Promise | None = None,
    mirroring: bool = True,
    members: Sequence[Path] = (),
) -> list[dict]:
    """Segment the images of `source` with fold `fold` (default 0) of an nnU-Net model folder.

    With `members` (other plain model folders, the same fold), the folder and its members run as a
    deep ensemble (`relunet.nnunet.ensemble`).

    Writes, as `relunet predict` on a run: `masks/` (nnU-Net's export, the input's geometry),
    `disagreement/` (relation models), `cases.csv` most doubtful first with `C` and `score`
    (and the decision fields when the fold is calibrated), `cases/<id>.json`, `prediction.json`.
    """
    promise = promise or Promise()
    promise.check()
    cases = _inputs(run, fold, source, members)
    folder, model = _open(run, fold, device, mirroring, members)
    checkpoint = folder.checkpoint
    identity = ModelIdentity(str(checkpoint.resolve()), file_sha256(checkpoint), folder.fold, model.kind)
    calibration = load_calibration(folder.fold_folder, identity, promise, score_id(model, mirroring))
    protected = {"the input data": source, "the model folder": run}
    protected.update({f"the member {m}": m for m in members})
    check_apart(out, protected)
    with results_folder(out, "prediction", overwrite, protected) as staging:
        rows, statistics = [], {}
        with Progress(transient=True) as progress:
            for case_id, files in progress.track(list(cases.items()), description="predict"):
                result = model.predict(files)
                name = f"{case_id}{model.file_ending}"
                mask = model.write(result.labels, staging / "masks" / name, result.properties)
                row = {
                    "case_id": case_id,
                    "C": result.score,
                    "score": result.score,
                    "foreground_voxels": int((result.labels > 0).sum()),
                    "mask": str(mask.relative_to(staging)),
                }
                if model.kind == "relation":
                    where = model.label_map(disagreement(result.maps["union"], result.maps["inter"]))
                    path = model.write(where, staging / "disagreement" / name, result.properties)
                    row["disagreement"] = str(path.relative_to(staging))
                rows.append(row)
                statistics[case_id] = image_statistics(result.image)
        rows.sort(key=lambda r: (r["score"], r["case_id"]))
        threshold, shift = None, None
        if calibration is not None:
            threshold = add_decisions(rows, calibration, promise)
            shift = shift_check(rows, statistics, calibration)
        write_csv(staging / CASES_NAME, rows)
        write_case_files(staging, rows, cases, identity)
        write_batch_record(staging, rows, identity, promise if calibration else None, threshold, shift)
    return rows


def calibration_of(
    run: Path,
    data: Path,
    fold: int | None = None,
    device: str = "auto",
    mirroring: bool = True,
    members: Sequence[Path] = (),
) -> tuple[FoldFolder, Calibration]:
    """(score, Dice) pairs of the fold's validation cases in nnU-Net's `splits_final.json`.

    `data` is the raw dataset folder (`imagesTr/`, `labelsTr/`); `members` make it the deep
    ensemble's calibration, kept in the model folder's fold. Returns the fold folder the
    calibration belongs in and the calibration.
    """
    require_nnunet()
    preprocessed = env_folder("nnUNet_preprocessed", "calibrate reads the fold's splits_final.json there")
    folder = _folders(run, fold, members)[0]
    held_out = folder.validation_cases(preprocessed)
    images = _inputs(run, fold, data, members)
    folder, model = _open(run, fold, device, mirroring, members)
    labels = Path(data) / "labelsTr"
    missing = [c for c in held_out if c not in images or not (labels / f"{c}{model.file_ending}").is_file()]
    if missing:
        raise InputError(
            f"{data}: {len(missing)} validation cases of fold {folder.fold} lack an image or a label in "
            f"labelsTr/ (e.g. {missing[0]}); give the raw dataset the model was trained on"
        )
    check_enough_pairs(len(held_out), Promise(), str(data))
    reader = model.plans_manager.image_reader_writer_class()
    pairs = []
    with Progress(transient=True) as progress:
        for case_id in progress.track(held_out, description="calibrate"):
            result = model.predict(images[case_id])
            truth = reader.read_seg(str(labels / f"{case_id}{model.file_ending}"))[0][0]
            classes = model.foreground_labels
            dice = dice_per_class(
                np.stack([result.labels == v for v in classes]), np.stack([truth == v for v in classes])
            )
            pairs.append(
                {
                    "case_id": case_id,
                    "score": result.score,
                    "dice": float(dice.mean()),
                    **image_statistics(result.image),
                }
            )
    source = f"{data} (nnU-Net splits_final.json, fold {folder.fold} validation)"
    sha = file_sha256(folder.checkpoint)
    return folder.fold_folder, Calibration(sha, score_id(model, mirroring), source, pairs)
