"""The `predict` and `evaluate` workflows over a trained run directory."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from relunet.atomic import write_csv, write_json
from relunet.confidence import disagreement
from relunet.config import RunConfig, check_ranges
from relunet.data.layouts import DatasetIndex, case_shape, index_dataset, index_input, load_case
from relunet.data.patches import check_patch_size
from relunet.data.preprocess import label_targets
from relunet.data.training_set import check_consistent
from relunet.device import resolve_device
from relunet.errors import InputError
from relunet.evaluation.batch_shift import image_statistics
from relunet.evaluation.calibration_store import file_sha256
from relunet.evaluation.decision import Promise
from relunet.evaluation.metrics import dice_per_class
from relunet.evaluation.summary import summarise
from relunet.inference.methods import InferenceMethod, method, method_for_run
from relunet.inference.onnx_engine import check_engine, open_engine
from relunet.inference.onnx_export import export_program, write_program
from relunet.inference.prediction_records import (
    ModelIdentity,
    add_decisions,
    load_calibration,
    shift_check,
    write_batch_record,
    write_case_files,
)
from relunet.inference.predictor import Prediction, Predictor, s1s2_map
from relunet.inference.sharding import CASES_NAME, part_folder_name
from relunet.inference.writers import write_mask
from relunet.nets import size_multiple
from relunet.nnunet.model_folder import is_model_folder
from relunet.results_folder import check_apart, results_folder
from relunet.rundir import RunFolder, trained_fold
from relunet.training.checkpoint import load_model
from relunet.types import Case

ANCHOR_SOURCES = ("train", "test")


def open_predictor(
    run: Path,
    fold: int | None,
    device: str,
    mc_samples: int = 20,
    engine: str = "torch",
    onnx: Path | None = None,
    windows: dict[str, object] | None = None,
) -> tuple[Predictor, int]:
    """Load a fold's model; returns the predictor and the fold number.

    `engine` "onnxruntime" runs the network in ONNX Runtime on the CPU (`onnx_engine.open_engine`):
    the file `onnx` if given, else the model exported in memory. `windows` ("patch_size",
    "overlap") replaces the run's sliding-window settings.
    """
    check_engine(engine, onnx, device)
    folder = trained_fold(run, fold)
    model, config = load_model(folder.checkpoint)
    if windows:
        config = config.with_overrides(data=windows)
        check_ranges(config)
        check_patch_size(config.data.patch_size, size_multiple(config.model))
    if engine == "onnxruntime":
        network = open_engine(model, config, file_sha256(folder.checkpoint), onnx)
        predictor = Predictor(network, config, torch.device("cpu"), mc_samples=mc_samples)
    else:
        predictor = Predictor(model, config, resolve_device(device), mc_samples=mc_samples)
    return predictor, folder.number


def export_run(run: Path, out: Path, fold: int | None = None, overwrite: bool = False) -> Path:
    """Write the fold's network to the ONNX file `out`, atomically (see `onnx_export`); returns `out`."""
    out = Path(out)
    if out.suffix != ".onnx" or out.is_dir():
        raise InputError(f"--out {out}: give a file name ending in .onnx")
    if out.exists() and not overwrite:
        raise InputError(f"{out}: already exists; choose another --out or add --overwrite")
    checkpoint = trained_fold(run, fold).checkpoint
    model, config = load_model(checkpoint)
    write_program(export_program(model, config, file_sha256(checkpoint)), out)
    return out


def predict_folder(
    run: Path,
    source: Path,
    out: Path,
    fold: int | None = None,
    anchors: int = 0,
    anchor_source: str = "train",
    mc_samples: int = 20,
    seed: int = 0,
    device: str = "auto",
    num_parts: int = 1,
    part_id: int = 0,
    overwrite: bool = False,
    promise: Promise | None = None,
    engine: str = "torch",
    onnx: Path | None = None,
    tta: str | None = None,
    mirroring: bool = True,
    windows: dict[str, object] | None = None,
    members: Sequence[Path] = (),
) -> list[dict]:
    """Segment the images of `source`; write masks and a table of cases, most doubtful first.

    The table has one row per case: its confidence `C` (the run's own score: C for a Relation
    U-Net, the agreement of draws or anchors, the mean foreground probability of a U-Net; with
    `tta` "flip" that of its flip TTA, `methods.method_for_run`), the `score` and which method
    gave it (`score_id`), the foreground voxel count and the mask file. `out` appears whole at the end (see
    `relunet.results_folder`); results already there are replaced only with `overwrite`.

    With `num_parts` > 1 only every `num_parts`-th case from `part_id` on is done (cases in
    name order), into the results folder `out/part{I}of{P}`; `merge_parts` joins the tables.
    Anchors are drawn per case from a generator seeded by (seed, case name), so a sharded
    prediction equals an unsharded one.

    When the fold has a `calibration.json` (`relunet calibrate`), each row also gets an
    estimated Dice, its interval and the review flag for `promise` (default `Promise()`), and
    the batch is compared with the calibration cases. Per case, `cases/<id>.json` holds the row,
    the input's checksum and the model's identity; `prediction.json` the promise and the batch
    check; `disagreement/` the voxels where the union and intersection heads differ. The network
    runs in PyTorch or, with `engine` "onnxruntime", in ONNX Runtime (see `open_predictor`), by
    sliding windows where the run or `windows` gives a 3D patch size. `run` may also be an nnU-Net
    model folder (`relunet.nnunet.workflows`; `mirroring`: nnU-Net's mirrored test-time averaging;
    `members`: other plain model folders, run with it as a deep ensemble). Returns the rows of the table.
    """
    if is_model_folder(run):
        if anchors or tta or num_parts != 1 or engine != "torch":
            raise InputError(
                f"{run}: an nnU-Net model folder takes no --anchors, --tta, --num-parts or --engine "
                "(its own mirroring is --mirroring)"
            )
        from relunet.nnunet.workflows import predict_model_folder

        return predict_model_folder(run, source, out, fold, device, overwrite, promise, mirroring, members)
    if members:
        raise InputError(
            f"--member {members[0]}: ensemble members are for nnU-Net model folders; {run} is a relunet run "
            "(its ensemble is a cross-validation's ensemble_5 method)"
        )
    promise = promise or Promise()
    promise.check()
    if num_parts < 1 or not 0 <= part_id < num_parts:
        raise InputError(f"--part-id {part_id}: choose 0 to {num_parts - 1} for --num-parts {num_parts}")
    if anchor_source not in ANCHOR_SOURCES:
        raise InputError(f"--anchor-source {anchor_source}: choose train or test")
    if anchors < 0 or mc_samples < 1:
        raise InputError(f"--anchors {anchors} --mc-samples {mc_samples}: give anchors >= 0, samples >= 1")
    if anchors and tta:
        raise InputError(f"--anchors {anchors} --tta {tta}: choose one of the two")
    predictor, fold_number = open_predictor(run, fold, device, mc_samples, engine, onnx, windows)
    folder = trained_fold(run, fold_number)
    model = ModelIdentity.of(folder, predictor.config.model.kind, engine, onnx)
    if anchors:
        wrapper = method(f"anchors_{anchor_source}", anchors)
    else:
        wrapper = method_for_run(predictor.config, tta, mc_samples)
    calibration = load_calibration(folder, model, promise, wrapper.score_id)
    protected = _protected(run, source, predictor.config)
    check_apart(out, protected)
    folder = Path(out) if num_parts == 1 else Path(out) / part_folder_name(part_id, num_parts)
    with results_folder(folder, "prediction", overwrite, protected) as staging:
        index = index_input(source)
        mine = index.subset(sorted(index.case_ids)[part_id::num_parts])
        cases = _read_checked(mine, predictor, with_label=False)
        pool: list[Case] = []
        if anchors and anchor_source == "train":
            pool = _training_cases(Path(run), predictor, fold_number)
        elif anchors and num_parts == 1:  # the other cases are the anchors: all of them are held
            pool = list(cases)
            cases = iter(pool)
        elif anchors:
            pool = list(_read_checked(index, predictor, with_label=False))
        rows, statistics = _predict_cases(predictor, wrapper, cases, len(mine.cases), pool, seed, staging)
        threshold, shift = None, None
        if calibration is not None:
            threshold = add_decisions(rows, calibration, promise)
            shift = shift_check(rows, statistics, calibration)
        write_csv(staging / CASES_NAME, rows)
        inputs = {c.case_id: list(c.images) for c in index.cases}
        write_case_files(staging, rows, inputs, model)
        scoring = {"score_id": wrapper.score_id, "forward_passes": wrapper.passes(predictor.config.data.dims)}
        write_batch_record(staging, rows, model, promise if calibration else None, threshold, shift, scoring)
    return rows


def _predict_cases(
    predictor: Predictor,
    wrapper: InferenceMethod,
    cases: Iterator[Case],
    total: int,
    pool: list[Case],
    seed: int,
    out: Path,
) -> tuple[list[dict], dict[str, dict[str, float]]]:
    """Segment each case with `wrapper`; the table rows (most doubtful first), the image statistics.

    Masks go to `out/masks`; where the model has both relation heads, the voxels they disagree
    on go to `out/disagreement`. Anchors are drawn from `pool` by a generator per case. `cases`
    (`total` of them) are read one at a time; the image statistics are taken before the maps exist.
    """
    label_sets = predictor.config.data.label_sets
    rows, statistics = [], {}
    with Progress(transient=True) as progress:
        for case in progress.track(cases, total=total, description="predict"):
            statistics[case.case_id] = image_statistics(case.image)
            prediction = wrapper.predict([predictor], case, pool, _case_rng(seed, case.case_id))
            path = write_mask(case, prediction.mask, label_sets, out / "masks")
            row = {
                "case_id": case.case_id,
                "C": prediction.confidence,
                "score": prediction.score,
                "score_id": wrapper.score_id,
                "foreground_voxels": int(prediction.mask.sum()),
                "mask": str(path.relative_to(out)),
            }
            if {"union", "inter"} <= prediction.maps.keys():
                where = disagreement(prediction.maps["union"], prediction.maps["inter"])
                row["disagreement"] = str(
                    write_mask(case, where, label_sets, out / "disagreement").relative_to(out)
                )
            rows.append(row)
    rows.sort(key=lambda r: (r["score"], r["case_id"]))
    return rows, statistics


def evaluate_folder(
    run: Path,
    data: Path,
    out: Path,
    fold: int | None = None,
    all_cases: bool = False,
    mc_samples: int = 20,
    device: str = "auto",
    overwrite: bool = False,
    tta: str | None = None,
) -> dict:
    """Evaluate a fold on its test cases (or every case of `data`) against the ground truth.

    Writes `per_case.csv` (a row per case, column `C` = confidence) and `summary.json` to `out`,
    which appears whole at the end; returns the summary. With `tta` "flip" the run's flip TTA
    predicts (`methods.method_for_run`).
    """
    if mc_samples < 1:
        raise InputError(f"--mc-samples {mc_samples}: give at least 1")
    predictor, fold_number = open_predictor(run, fold, device, mc_samples)
    wrapper = method_for_run(predictor.config, tta, mc_samples)
    with results_folder(out, "evaluation", overwrite, _protected(run, data, predictor.config)) as staging:
        index = index_dataset(data)
        test_ids = None if all_cases else _test_ids(Path(run), fold_number, index)
        chosen = index.subset(test_ids) if test_ids else index
        cases = _read_checked(chosen, predictor)
        label_sets = predictor.config.data.label_sets
        rows = []
        with Progress(transient=True) as progress:
            for case in progress.track(cases, total=len(chosen.cases), description="evaluate"):
                prediction = wrapper.predict([predictor], case)
                rows.append(case_row(case, prediction, label_targets(case.label, label_sets)))
        summary = {
            "model": predictor.config.model.kind,
            "method": wrapper.name,
            "score_id": wrapper.score_id,
            "forward_passes": wrapper.passes(predictor.config.data.dims),
            "fold": fold_number,
            "cases": "all" if test_ids is None else "test fold",
            **summarise(rows),
        }
        write_csv(staging / "per_case.csv", rows)
        write_json(staging / "summary.json", summary)
    return summary


def case_row(case: Case, prediction: Prediction, target: np.ndarray) -> dict:
    """Per-case metrics: Dice of every predicted map against the ground truth, and C.

    With two segmentation heads, `dice_s1s2` is the Dice of their mean map, the paper's (s1+s2)/2.
    `dice` is the Dice of the segmentation the method delivers (`Prediction.mask`).
    """
    truth = target.astype(bool)
    maps = dict(prediction.maps)
    if "seg_b" in maps and "s1s2" not in maps:
        maps["s1s2"] = s1s2_map(maps)
    row: dict = {"case_id": case.case_id}
    for head, probability in maps.items():
        row[f"dice_{head}"] = float(dice_per_class(probability > 0.5, truth).mean())
    row["dice"] = float(dice_per_class(prediction.mask, truth).mean())
    if len(truth) > 1:
        per_class = dice_per_class(maps["seg_a"] > 0.5, truth)
        row.update({f"dice_seg_a_class{k + 1}": float(v) for k, v in enumerate(per_class)})
    row["predicted_fraction"] = float(prediction.mask.mean())
    row["C"] = prediction.confidence
    row["score"] = prediction.score
    row.update({f"C_{name}": value for name, value in prediction.other_scores.items()})
    return row


def _protected(run: Path, data: Path, config: RunConfig) -> dict[str, str | Path | None]:
    """The folders an output folder must keep clear of: the input, the run, its training data."""
    return {"the input data": data, "the run folder": run, "the run's training data": config.data.path}


def _read_checked(index: DatasetIndex, predictor: Predictor, with_label: bool = True) -> Iterator[Case]:
    """The cases of `index`, read one at a time as they are asked for: memory holds one case, not all.

    Every case's header is checked against the model and the others first, before anything is
    read or written; a file that turns out damaged on reading fails then, with nothing written.
    """
    shapes = [(files.images[0], case_shape(files)[0]) for files in index.cases]
    check_consistent(shapes)
    for path, shape in shapes:
        predictor.check_shape(path, shape)
    return (load_case(files, index.labels, with_label) for files in index.cases)


def _test_ids(run: Path, fold: int, index: DatasetIndex) -> list[str] | None:
    """The fold's test cases if this dataset is the one the run was split on, else None (all)."""
    folder = RunFolder(run)
    if not folder.splits_path.is_file():
        return None
    test = folder.fold_split(fold)["test"]
    return test if set(test) <= set(index.case_ids) else None


def _training_cases(run: Path, predictor: Predictor, fold: int) -> list[Case]:
    """The training cases of the fold, read from the dataset the run was trained on."""
    config: RunConfig = predictor.config
    index = index_dataset(config.data.path)
    train = RunFolder(run).fold_split(fold)["train"]
    return list(_read_checked(index.subset(train), predictor, with_label=False))


def _case_rng(seed: int, case_id: str) -> np.random.Generator:
    """The anchors' generator of one case in `relunet predict`: from (seed, case name), not order."""
    return np.random.default_rng([seed, zlib.crc32(case_id.encode())])
