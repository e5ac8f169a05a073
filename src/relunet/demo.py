"""The embedded demo: synthetic data -> train -> evaluate -> predict, in a few minutes on a CPU."""

from __future__ import annotations

import csv
from pathlib import Path

from relunet.config import DataConfig, TrainConfig
from relunet.data.synthetic import write_synthetic_dataset
from relunet.evaluation.decision import EXPECTED, GUARANTEES, Promise
from relunet.inference.calibrate import calibrate
from relunet.inference.workflows import evaluate_folder, predict_folder
from relunet.reporting.review_page import write_review_page
from relunet.training.train_workflow import train_fold

#: brief training that suits 64 px synthetic images on a 2-core CPU
DEMO_TRAIN = TrainConfig(epochs=24, samples_per_epoch=640, lr=1e-3, lr_step=8, batch_size=32)
#: most demo cases easy and a few hard (difficulty u**3, mean 1/4), as in clinical data, so that the
#: review flag has good cases to let through
EASY_BIAS = 3.0


def run_demo(out: Path, n_cases: int = 200, device: str = "auto") -> tuple[dict, list[dict], dict[str, Path]]:
    """Run the whole pipeline on synthetic data in `out`.

    Writes `out/data` (images/ + masks/), `out/run` (fold 0 of 4, calibrated on its held-out
    fold), `out/evaluation` (per_case.csv, summary.json), `out/new` (new images, drawn like the
    training data) and, once per guarantee, their masks, cases.csv with estimated Dice and review
    flags, and review.html: `out/prediction` (expected, the default) and
    `out/prediction_high-probability`. Returns the summary, the per-case rows sorted by confidence
    and the review page of each guarantee.
    """
    out = Path(out)
    data = write_synthetic_dataset(out / "data", n_cases=n_cases, easy_bias=EASY_BIAS)
    run = out / "run"
    train_fold(data, run, fold=0, resume=True, device=device, data_cfg=DataConfig(folds=4), train=DEMO_TRAIN)
    summary = evaluate_folder(run, data, out / "evaluation", fold=0, device=device, overwrite=True)
    calibrate(run, data, fold=0, device=device)
    new = write_synthetic_dataset(out / "new", n_cases=n_cases // 4, seed=1, easy_bias=EASY_BIAS)
    pages = {}
    for guarantee in GUARANTEES:
        folder = out / ("prediction" if guarantee == EXPECTED else f"prediction_{guarantee}")
        promise = Promise(guarantee=guarantee)
        predict_folder(run, new / "images", folder, fold=0, device=device, overwrite=True, promise=promise)
        pages[guarantee] = write_review_page(folder)
    with (out / "evaluation" / "per_case.csv").open(newline="") as handle:
        rows = [
            {"case_id": r["case_id"], "C": float(r["C"]), "dice": float(r["dice_seg_a"])}
            for r in csv.DictReader(handle)
        ]
    return summary, sorted(rows, key=lambda r: r["C"]), pages
