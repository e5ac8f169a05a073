"""`relunet predict` and `calibrate` on an nnU-Net model folder, writing what they write for a relunet run.

Inputs are nnU-Net's layout: `CASE_0000.nii.gz, CASE_0001.nii.gz, ...` (one file per channel of
the plans) in a folder, or the `imagesTr/` (and `labelsTr/`) of a raw dataset folder.
"""

from __future__ import annotations

import re
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
from relunet.inference.methods import own_method
from relunet.inference.prediction_records import (
    ModelIdentity,
    add_decisions,
    load_calibration,
    shift_check,
    write_batch_record,
    write_case_files,
)
from relunet.nnunet.installed import env_folder, require_nnunet
from relunet.nnunet.model_folder import ModelFolder
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


def score_id(kind: str, mirroring: bool) -> str:
    """The score a prediction gives (a calibration holds only for the same, mirroring included)."""
    return own_method(kind).score_id + (" mirrored" if mirroring else "")


def _inputs(run: Path, fold: int | None, source: Path) -> dict[str, list[Path]]:
    """The cases of `source` for the model folder's fold, checked before the model is loaded."""
    require_nnunet()
    dataset = ModelFolder(Path(run), 0 if fold is None else fold).check().json("dataset.json")
    return image_lists(source, dataset["file_ending"], len(dataset["channel_names"]))


def _open(run: Path, fold: int | None, device: str, mirroring: bool):  # -> (ModelFolder, NnunetModel)
    require_nnunet()
    from relunet.device import resolve_device
    from relunet.nnunet.inference import NnunetModel

    folder = ModelFolder(Path(run), 0 if fold is None else fold).check()
    return folder, NnunetModel(folder, str(resolve_device(device)), mirroring)


def predict_model_folder(
    run: Path,
    source: Path,
    out: Path,
    fold: int | None = None,
    device: str = "auto",
    overwrite: bool = False,
    promise: Promise | None = None,
    mirroring: bool = True,
) -> list[dict]:
    """Segment the images of `source` with fold `fold` (default 0) of an nnU-Net model folder.

    Writes, as `relunet predict` on a run: `masks/` (nnU-Net's export, the input's geometry),
    `disagreement/` (relation models), `cases.csv` most doubtful first with `C` and `score`
    (and the decision fields when the fold is calibrated), `cases/<id>.json`, `prediction.json`.
    """
    promise = promise or Promise()
    promise.check()
    cases = _inputs(run, fold, source)
    folder, model = _open(run, fold, device, mirroring)
    checkpoint = folder.checkpoint
    identity = ModelIdentity(str(checkpoint.resolve()), file_sha256(checkpoint), folder.fold, model.kind)
    calibration = load_calibration(folder.fold_folder, identity, promise, score_id(model.kind, mirroring))
    protected = {"the input data": source, "the model folder": run}
    check_apart(out, protected)
    with results_folder(out, "prediction", overwrite, protected) as staging:
        rows, statistics = [], {}
        with Progress(transient=True) as progress:
            for case_id, files in progress.track(list(cases.items()), description="predict"):
                result = model.predict(files)
                name = f"{case_id}{model.file_ending}"
                mask = model.write(result.labels, staging / "masks" / name, result.properties)
                score = model.score(result.maps)
                row = {
                    "case_id": case_id,
                    "C": score,
                    "score": score,
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
    run: Path, data: Path, fold: int | None = None, device: str = "auto", mirroring: bool = True
) -> tuple[FoldFolder, Calibration]:
    """(score, Dice) pairs of the fold's validation cases in nnU-Net's `splits_final.json`.

    `data` is the raw dataset folder (`imagesTr/`, `labelsTr/`). Returns the fold folder the
    calibration belongs in and the calibration.
    """
    require_nnunet()
    preprocessed = env_folder("nnUNet_preprocessed", "calibrate reads the fold's splits_final.json there")
    folder = ModelFolder(Path(run), 0 if fold is None else fold).check()
    held_out = folder.validation_cases(preprocessed)
    images = _inputs(run, fold, data)
    folder, model = _open(run, fold, device, mirroring)
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
                    "score": model.score(result.maps),
                    "dice": float(dice.mean()),
                    **image_statistics(result.image),
                }
            )
    source = f"{data} (nnU-Net splits_final.json, fold {folder.fold} validation)"
    sha = file_sha256(folder.checkpoint)
    return folder.fold_folder, Calibration(sha, score_id(model.kind, mirroring), source, pairs)
