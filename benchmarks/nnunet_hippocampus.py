"""nnUNetTrainerRelation against the plain nnUNetTrainer on MSD Hippocampus, the same budget for both.

Converts Task04 with `nnUNetv2_convert_MSD_dataset` (from a staging copy with the empty imagesTs/
it asserts), plans and preprocesses 2d and 3d_fullres, trains both trainers for EPOCHS x ITERATIONS
with `relunet nnunet train` on the folds asked (`--ensemble N`: also N - 1 more plain trainers on
fold 0 with seeds 1 .. N - 1, a deep ensemble), predicts each fold's validation cases with
`relunet predict` (no mirroring; nnU-Net's own final validation is skipped; the ensemble with
`--member`), and writes the page and its JSON: Dice of the delivered mask (seg_a for the relation
trainer), Spearman and e-AURC of each model's score against that Dice, the share of cases the
review flag sends to an expert at the review check's Hippocampus setting, seconds per epoch and
peak memory of each training process, the time per iteration measured by
benchmarks/nnunet_step_time.py, and which of the issue's targets are met.

Resumable: a trained fold (its benchmark.json) or a finished prediction is kept; a training stopped
by `--time-limit` continues from nnU-Net's latest checkpoint (written every 50 epochs) next time.
`--jobs` trains that many models side by side (a GPU). The page is built from every finished model
of the work folder, so runs with different budgets per configuration add up; `--report` writes it
from those alone, training nothing. `--gpu-results DIR` adds the rows of a GPU run
(benchmarks/gpu_nnunet.sh: DIR holds its nnunet.json and nnunet_step_time.json).

    nice -n 5 python benchmarks/nnunet_hippocampus.py --work /work/nnunet-bench2 --configurations 2d \\
        --epochs 1 --iterations 12
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk
import torch

from relunet.analysis.review_promise import TARGETS, oracle_flagged, share_flagged
from relunet.atomic import write_csv, write_json, write_text
from relunet.evaluation.decision import EXPECTED
from relunet.evaluation.metrics import dice_per_class, excess_aurc, spearman
from relunet.rundir import fold_name

DATASET = "Dataset004_Hippocampus"
TRAINERS = ("nnUNetTrainerRelation", "nnUNetTrainer")
RELATION, PLAIN = TRAINERS
CONFIGURATIONS = ("2d", "3d_fullres")
ROOT = Path(__file__).resolve().parents[1]
#: the review check's setting for Hippocampus (docs/review.md): target Dice τ and risk α
REVIEW_TARGET, REVIEW_RISK = max(TARGETS["hippocampus"]), 0.1
#: the expected guarantee is fitted on this share of the cases and judged on the rest, over SPLITS splits
CAL_SHARE, SPLITS = 0.5, 500
#: the issue's targets: Dice within this of the plain trainer's, iteration time at most this ratio
DICE_MARGIN, TIME_RATIO = 0.01, 1.3
#: training iterations of nnU-Net's schedule (1000 epochs x 250)
SCHEDULE_ITERATIONS = 1000 * 250
#: below this Dice a model has not learned to segment (the Dice target then compares two failures)
UNTRAINED_DICE = 0.5


class Model(NamedTuple):
    """One trained fold: trainer, configuration, fold and seed (0: nnU-Net's usual folder name)."""

    trainer: str
    configuration: str
    fold: int = 0
    seed: int = 0

    @property
    def name(self) -> str:
        """The trainer part of the model folder's name (`nnUNetTrainer_seed2` for seed 2)."""
        return f"{self.trainer}_seed{self.seed}" if self.seed else self.trainer

    def folder(self, work: Path) -> Path:
        return work / "results" / DATASET / f"{self.name}__nnUNetPlans__{self.configuration}"

    def record(self, work: Path) -> Path:
        return self.folder(work) / fold_name(self.fold) / "benchmark.json"

    def predictions(self, work: Path) -> Path:
        return work / "predictions" / f"{self.name}_{self.configuration}{fold_suffix(self.fold)}"


def fold_suffix(fold: int) -> str:
    return f"_fold{fold}" if fold else ""


def ensemble_predictions(work: Path, configuration: str, members: int) -> Path:
    return work / "predictions" / f"{PLAIN}_ensemble{members}_{configuration}"


class Stopped(Exception):
    """A command stopped at the time limit."""


def command(env: dict, *args: str, deadline: float | None = None) -> dict:
    """Run a command to the end; its wall time and the peak resident memory of its own process.

    Raises `Stopped` (after ending its process group) when `deadline` (time.time()) passes first.
    """
    start = time.time()
    process = subprocess.Popen(args, env=env, start_new_session=True)
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.time() > deadline:
            os.killpg(process.pid, signal.SIGTERM)
            os.wait4(process.pid, 0)
            raise Stopped(" ".join(args))
        time.sleep(1)
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise RuntimeError(f"failed ({code}): {' '.join(args)}")
    return {"seconds": time.time() - start, "peak_rss_mb": usage.ru_maxrss / 1024}


def nnunet_entry(function: str, *args: str) -> tuple[str, ...]:
    """An nnU-Net console command (`module:function`) run by this Python, its scripts not on the PATH."""
    module, name = function.split(":")
    call = f"import sys; from nnunetv2.{module} import {name}; sys.exit({name}())"
    return (sys.executable, "-c", call, *args)


def prepare(work: Path, env: dict, task: Path, processes: int) -> Path:
    """Convert, plan and preprocess once; returns the raw dataset folder."""
    raw = work / "raw" / DATASET
    if not raw.is_dir():
        staging = work / "staging" / task.name
        staging.mkdir(parents=True, exist_ok=True)
        for name in ("imagesTr", "labelsTr", "dataset.json"):
            if not (staging / name).exists():
                (staging / name).symlink_to(task.resolve() / name)
        (staging / "imagesTs").mkdir(exist_ok=True)
        convert = nnunet_entry("dataset_conversion.convert_MSD_dataset:entry_point", "-i", str(staging))
        command(env, *convert, "-overwrite_id", "4", "-np", str(processes))
    if not (work / "preprocessed" / DATASET / "nnUNetPlans.json").is_file():
        plan = nnunet_entry(
            "experiment_planning.plan_and_preprocess_entrypoints:plan_and_preprocess_entry", "-d", "4"
        )
        command(env, *plan, "-c", *CONFIGURATIONS, "-np", str(processes))
    return raw


def train(work: Path, env: dict, model: Model, budget: tuple[int, int], device: str, deadline) -> dict:
    """Train the fold unless done (continuing from its checkpoint); its record, written beside it.

    The record: seconds per epoch from nnU-Net's own log, the process's peak memory, the budget.
    """
    record_path = model.record(work)
    if record_path.is_file():
        return json.loads(record_path.read_text())
    epochs, iterations = budget
    args = ["nnunet", "train", "4", model.configuration, str(model.fold), "-tr", model.trainer]
    args += ["--epochs", str(epochs), "--iterations", str(iterations), "--no-validation", "--device", device]
    if model.seed:
        args += ["--seed", str(model.seed)]
    if any(
        (record_path.parent / name).is_file() for name in ("checkpoint_latest.pth", "checkpoint_final.pth")
    ):
        args.append("--continue")
    usage = command(env, sys.executable, "-m", "relunet", *args, deadline=deadline)
    checkpoint = torch.load(
        record_path.parent / "checkpoint_final.pth", map_location="cpu", weights_only=False
    )
    log = checkpoint["logging"]
    epoch_seconds = np.subtract(log["epoch_end_timestamps"], log["epoch_start_timestamps"])
    record = {**usage, "epoch_seconds": epoch_seconds.tolist(), "epochs": epochs, "iterations": iterations}
    write_json(record_path, record)
    return record


def validation_images(work: Path, raw: Path, fold: int) -> Path:
    """A folder of links to the fold's validation images (nnU-Net's splits_final.json)."""
    splits = json.loads((work / "preprocessed" / DATASET / "splits_final.json").read_text())
    images = work / f"validation_images{fold_suffix(fold)}"
    images.mkdir(exist_ok=True)
    for case in splits[fold]["val"]:
        link = images / f"{case}_0000.nii.gz"
        if not link.exists():
            link.symlink_to(raw / "imagesTr" / link.name)
    return images


def predict(work: Path, env: dict, raw: Path, models: list[Model], out: Path, device: str, deadline) -> None:
    """`relunet predict` of the first model (the others: `--member`s) on its fold's validation cases."""
    if (out / "cases.csv").is_file():
        return
    first = models[0]
    images = validation_images(work, raw, first.fold)
    members = [arg for m in models[1:] for arg in ("--member", str(m.folder(work)))]
    args = ("predict", str(first.folder(work)), str(images), "--out", str(out), *members)
    args += ("--fold", str(first.fold), "--no-mirroring", "--device", device, "--overwrite")
    command(env, sys.executable, "-m", "relunet", *args, deadline=deadline)


def per_case_table(out: Path, raw: Path) -> None:
    """Write `out/per_case.csv` (case_id, score, dice) from a finished prediction's cases.csv, once.

    Dice: the delivered mask against the label, mean over both classes.
    """
    per_case = out / "per_case.csv"
    if per_case.is_file() or not (out / "cases.csv").is_file():
        return
    lines = (out / "cases.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = []
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(out / row["mask"])))
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "labelsTr" / f"{row['case_id']}.nii.gz")))
        dice = dice_per_class(np.stack([mask == 1, mask == 2]), np.stack([truth == 1, truth == 2])).mean()
        rows.append({"case_id": row["case_id"], "score": float(row["score"]), "dice": float(dice)})
    write_csv(per_case, rows)


def read_per_case(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Scores and Dice `(N,)` of a per_case.csv."""
    lines = path.read_text().splitlines()[1:]
    values = np.array([[float(v) for v in line.split(",")[1:]] for line in lines]).reshape(-1, 2)
    return values[:, 0], values[:, 1]


def scores(score: np.ndarray, dice: np.ndarray) -> dict:
    """Dice, ranking and review numbers of one set of cases `(N,)`."""
    n_cal = round(CAL_SHARE * len(score))
    return {
        "cases": len(score),
        "dice": float(dice.mean()),
        "spearman": spearman(score, dice),
        "e_aurc": excess_aurc(score, 1 - dice),
        "distinct_scores": len(set(score.tolist())),
        "below_target": float(np.mean(dice < REVIEW_TARGET)),
        "oracle_flagged": oracle_flagged(score, dice, REVIEW_RISK, REVIEW_TARGET),
        "expected_flagged": share_flagged(
            score, dice, n_cal, EXPECTED, REVIEW_TARGET, REVIEW_RISK, splits=SPLITS
        ),
        "n_cal": n_cal,
    }


def model_row(work: Path, model: Model) -> dict | None:
    """A trained model's row: its record, and its scores when its prediction is done; None if untrained."""
    if not model.record(work).is_file():
        return None
    record = json.loads(model.record(work).read_text())
    row = {
        "configuration": model.configuration,
        "trainer": model.trainer,
        "fold": model.fold,
        "seed": model.seed,
        "epochs": record["epochs"],
        "iterations": record["iterations"],
        "seconds_per_epoch": float(np.mean(record["epoch_seconds"])),
        "peak_rss_mb": record["peak_rss_mb"],
    }
    per_case = model.predictions(work) / "per_case.csv"
    return {**row, **scores(*read_per_case(per_case))} if per_case.is_file() else row


def collect(work: Path) -> dict:
    """Every trained model of the work folder, pooled folds, and ensembles: the page's JSON."""
    for out in sorted((work / "predictions").glob("*/")):
        per_case_table(out, work / "raw" / DATASET)
    models = []
    for folder in sorted((work / "results" / DATASET).glob("*__nnUNetPlans__*")):
        name, _, configuration = folder.name.split("__")
        trainer, _, seed = name.partition("_seed")
        for fold in sorted(folder.glob("fold_*/benchmark.json")):
            row = model_row(work, Model(trainer, configuration, int(fold.parent.name[5:]), int(seed or 0)))
            models.append(row)
    pooled = []
    for configuration in CONFIGURATIONS:
        for trainer in TRAINERS:
            folds = [Model(trainer, configuration, k) for k in range(5)]
            done = [m for m in folds if (m.predictions(work) / "per_case.csv").is_file()]
            if len(done) > 1:
                parts = [read_per_case(m.predictions(work) / "per_case.csv") for m in done]
                score, dice = (np.concatenate(p) for p in zip(*parts, strict=True))
                row = {"configuration": configuration, "trainer": trainer, "folds": [m.fold for m in done]}
                pooled.append({**row, **scores(score, dice)})
    ensembles = []
    for per_case in sorted((work / "predictions").glob(f"{PLAIN}_ensemble*/per_case.csv")):
        members, _, configuration = per_case.parent.name.removeprefix(f"{PLAIN}_ensemble").partition("_")
        row = {"configuration": configuration, "trainer": PLAIN, "members": int(members), "fold": 0}
        ensembles.append({**row, **scores(*read_per_case(per_case))})
    models.sort(
        key=lambda r: (
            CONFIGURATIONS.index(r["configuration"]),
            r["trainer"] != RELATION,
            r["fold"],
            r["seed"],
        )
    )
    return {"models": models, "pooled": pooled, "ensembles": ensembles}


def say(line: str) -> None:
    """One line of output in one write (jobs side by side do not interleave)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace, work: Path, env: dict) -> None:
    """Train and predict what is missing, `args.jobs` models at a time, until `args.time_limit`."""
    deadline = time.time() + args.time_limit if args.time_limit else None
    raw = prepare(work, env, args.data, args.processes)
    budget = (args.epochs, args.iterations)
    train_env = {**env, "nnUNet_n_proc_DA": str(args.da_workers)}
    # predictions run beside each other too: each gets its share of the processes
    predict_env = {**env, "nnUNet_def_n_proc": str(max(1, args.processes // args.jobs))}
    models = [Model(t, c, k) for c in args.configurations for k in args.folds for t in TRAINERS]
    models += [Model(PLAIN, c, 0, s) for c in args.configurations for s in range(1, args.ensemble)]

    def job(model: Model) -> None:
        try:
            train(work, train_env, model, budget, args.device, deadline)
            if model.seed == 0:
                predict(work, predict_env, raw, [model], model.predictions(work), args.device, deadline)
            say(f"done {model}")
        except (Stopped, RuntimeError) as err:
            say(f"not finished: {model}: {type(err).__name__} {err}")

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(job, models))
    for configuration in args.configurations if args.ensemble > 1 else ():
        members = [Model(PLAIN, configuration, 0, s) for s in range(args.ensemble)]
        if all(m.record(work).is_file() for m in members):
            out = ensemble_predictions(work, configuration, args.ensemble)
            try:
                predict(work, env, raw, members, out, args.device, deadline)
            except (Stopped, RuntimeError) as err:
                say(f"not finished: ensemble {configuration}: {err}")


def number(row: dict, key: str, digits: int) -> str:
    if key not in row:
        return "not predicted"
    value = row[key]
    return f"{value:.0%}" if digits == -1 else f"{value:.{digits}f}"


SCORE_COLUMNS = (
    ("Dice", "dice", 3),
    ("Spearman(score, Dice)", "spearman", 3),
    ("e-AURC", "e_aurc", 4),
    ("distinct scores", "distinct_scores", 0),
    (f"Dice < {REVIEW_TARGET}", "below_target", -1),
    ("flagged, oracle", "oracle_flagged", -1),
    ("flagged, expected", "expected_flagged", -1),
)


def score_cells(row: dict) -> str:
    return " | ".join(number(row, key, digits) for _, key, digits in SCORE_COLUMNS)


def score_header() -> str:
    return " | ".join(title for title, _, _ in SCORE_COLUMNS)


def model_table(results: dict) -> list[str]:
    """Fold 0's single models (seed 0), then pooled folds and ensembles where there are any."""
    lines = [
        f"| configuration | trainer | budget | {score_header()} | s / epoch | peak RSS (MB) |",
        "|" + "---|" * (5 + len(SCORE_COLUMNS)),
    ]
    for r in results["models"]:
        if r["fold"] == 0 and r["seed"] == 0:
            lines.append(
                f"| {r['configuration']} | {r['trainer']} | {r['epochs']} x {r['iterations']} "
                f"| {score_cells(r)} "
                f"| {r['seconds_per_epoch']:.1f} | {r['peak_rss_mb']:.0f} |"
            )
    extra = [
        f"| {r['configuration']} | {r['trainer']}, folds {', '.join(map(str, r['folds']))} pooled "
        f"| {score_cells(r)} |"
        for r in results["pooled"]
    ] + [
        f"| {r['configuration']} | {r['trainer']}, deep ensemble of {r['members']} (fold 0; score: mean "
        f"pairwise Dice) | {score_cells(r)} |"
        for r in results["ensembles"]
    ]
    if extra:
        lines += [
            "",
            f"| configuration | model | {score_header()} |",
            "|" + "---|" * (2 + len(SCORE_COLUMNS)),
        ]
        lines += extra
    return lines


def time_ratio(r: dict) -> float:
    """Relation over plain: the median of the per-batch ratios where recorded, else the ratio of medians.

    The two steps on one batch are adjacent in time, so their ratio is robust to load that drifts
    during the run; the ratio of the medians may pair a busy step of one trainer with a quiet one of
    the other.
    """
    return r.get("median_paired_ratio", r["ratio"])


def paired(r: dict) -> str:
    """The median and range of the per-batch ratios (the two steps on one batch, side by side)."""
    ratios = r.get("paired_ratios")
    if not ratios:
        return "not recorded"
    return f"{np.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def step_table(step_time: dict) -> list[str]:
    """The time per iteration of both trainers, one row per device and configuration."""
    if not step_time:
        return ["Not measured yet (run benchmarks/nnunet_step_time.py)."]
    lines = [
        "| device | configuration | batch x patch | s / iteration, Relation | s / iteration, plain "
        "| ratio of the medians | per batch: median ratio (range) | steps timed | peak memory |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for device, by_configuration in step_time.items():
        for configuration, r in by_configuration.items():
            seconds = r["median_seconds"]
            if "peak_memory_mb" in r:
                peak = r["peak_memory_mb"]
                memory = (
                    f"GPU, above the weights: {peak[RELATION]:.0f} / {peak[PLAIN]:.0f} MB "
                    f"({peak[RELATION] / peak[PLAIN]:.2f}x)"
                )
                where = f"{device} ({r['device_name']})"
            else:
                memory = f"process {r['process_peak_rss_mb']:.0f} MB (both trainers)"
                where = f"{device} ({r['threads']} threads)"
            lines.append(
                f"| {where} | {configuration} | {r['batch_size']} x {'x'.join(map(str, r['patch_size']))} "
                f"| {seconds[RELATION]:.2f} | {seconds[PLAIN]:.2f} | {r['ratio']:.2f}x | {paired(r)} "
                f"| {r['steps']} after {r['warmup']} | {memory} |"
            )
    schedule = [
        f"{device} {configuration} {SCHEDULE_ITERATIONS * r['median_seconds'][PLAIN] / 3600:.0f} h"
        for device, by_configuration in step_time.items()
        for configuration, r in by_configuration.items()
    ]
    return lines + [
        "",
        f"At these times, the training iterations alone of nnU-Net's schedule ({SCHEDULE_ITERATIONS} per "
        f"model) take per plain model: {', '.join(schedule)}.",
    ]


def targets(results: dict, step_time: dict) -> list[str]:
    """Per configuration: which of the issue's three targets are met at this budget, and by how much."""
    lines = []
    fold0 = {
        (r["configuration"], r["trainer"]): r for r in results["models"] if r["fold"] == 0 and r["seed"] == 0
    }
    measured = {r["configuration"] for r in results["models"]} | {c for by in step_time.values() for c in by}
    for configuration in (c for c in CONFIGURATIONS if c in measured):
        rel, plain = fold0.get((configuration, RELATION)), fold0.get((configuration, PLAIN))
        found = []
        if rel and plain and "dice" in rel and "dice" in plain:
            gap = rel["dice"] - plain["dice"]
            met = "met" if abs(gap) <= DICE_MARGIN else "missed"
            found.append(
                f"Dice {rel['dice']:.3f} vs {plain['dice']:.3f} ({gap:+.3f}; within {DICE_MARGIN}: {met})"
            )
            ahead = rel["spearman"] - plain["spearman"]
            met = "met" if ahead > 0 else "missed"
            found.append(
                f"Spearman {rel['spearman']:.3f} vs {plain['spearman']:.3f} ({ahead:+.3f}; above: {met})"
            )
            if max(rel["dice"], plain["dice"]) < UNTRAINED_DICE:
                found.append(
                    f"both below Dice {UNTRAINED_DICE}: neither comparison speaks for trained models"
                )
        else:
            found.append("Dice and Spearman: not both predicted")
        for device, by_configuration in step_time.items():
            if configuration in by_configuration:
                ratio = time_ratio(by_configuration[configuration])
                met = "met" if ratio <= TIME_RATIO else "missed"
                found.append(f"time per iteration {ratio:.2f}x on {device} (<= {TIME_RATIO}x: {met})")
        lines.append(f"- {configuration}: " + "; ".join(found))
    return lines


def budgets(results: dict) -> list[str]:
    """The budget of each configuration, and a warning where its two trainers' budgets differ."""
    lines = []
    for configuration in CONFIGURATIONS:
        found = {
            (r["epochs"], r["iterations"]) for r in results["models"] if r["configuration"] == configuration
        }
        if found:
            text = " and ".join(f"{e} epoch(s) x {i} iterations" for e, i in sorted(found))
            warning = "" if len(found) == 1 else " (NOT the same for every model: the rows do not compare)"
            lines.append(f"- {configuration}: {text}{warning}")
    return lines


def commands(results: dict, step_time: dict, work: str) -> list[str]:
    """The commands that made the page's numbers, from the records."""
    found = []
    for configuration in CONFIGURATIONS:
        for epochs, iterations in sorted(
            {(r["epochs"], r["iterations"]) for r in results["models"] if r["configuration"] == configuration}
        ):
            found.append(
                f"nice -n 5 python benchmarks/nnunet_hippocampus.py --work {work} --configurations "
                f"{configuration} --epochs {epochs} --iterations {iterations}"
            )
    found += sorted({r["command"] for by in step_time.values() for r in by.values()})
    found.append(f"python benchmarks/nnunet_hippocampus.py --work {work} --report")
    return [f"    {line}" for line in found]


def results_section(results: dict, step_time: dict) -> list[str]:
    return [
        "Budget (epochs x iterations per epoch; validation iterations are half of them):",
        "",
        *budgets(results),
        "",
        *model_table(results),
        "",
        "Time per training iteration (benchmarks/nnunet_step_time.py: both trainers built from the same "
        "plans, `train_step` on the same batches of nnU-Net's own dataloader, taking turns in one "
        "process; medians). The target is judged on the median of the per-batch ratios: the two steps "
        "on one batch are adjacent in time, so their ratio holds when the load of a shared CPU drifts "
        "during the run, which the ratio of the medians does not:",
        "",
        *step_table(step_time),
        "",
        "The issue's targets at this budget (fold 0):",
        "",
        *targets(results, step_time),
    ]


def page(results: dict, step_time: dict, work: str, gpu: tuple[dict, dict] | None) -> str:
    lines = [
        "# nnU-Net v2: the relation trainer against the plain one (MSD Hippocampus)",
        "",
        "Generated by benchmarks/nnunet_hippocampus.py (numbers in `docs/nnunet.json`, the time per "
        "iteration in `docs/nnunet_step_time.json`) from these commands:",
        "",
        *commands(results, step_time, work),
        "",
        "Both trainers get the same budget and nnU-Net's planned batch and patch (the table of the time "
        "per iteration shows them), on the CPU of a shared 2-core machine. That is far below "
        "nnU-Net's schedule (1000 epochs x 250 iterations): at this budget neither trainer has learned "
        "to segment, so the rows say that the pieces work together and how the trainers compare at a "
        "tiny budget, not what either reaches. benchmarks/gpu_nnunet.sh runs the schedule on a GPU.",
        "",
        "Scores on the 52 validation cases of fold 0 (nnU-Net's splits_final.json), predicted by "
        "`relunet predict` without mirroring: C for nnUNetTrainerRelation, the mean foreground "
        "probability for nnUNetTrainer. Dice: the delivered mask (seg_a for the relation trainer) "
        "against the label, mean over both classes. Review, at the review check's Hippocampus setting "
        f"(docs/review.md: target Dice {REVIEW_TARGET}, risk {REVIEW_RISK}): 'oracle' is the fewest cases "
        "a threshold on the score can flag with at most that share of failures among the rest, chosen "
        "with the true Dice (`oracle_flagged`); 'expected' is the share the review flag with the "
        f"expected guarantee flags, fitted on {CAL_SHARE:.0%} of the cases and judged on the rest, mean "
        f"over {SPLITS} random splits (`share_flagged`). With few cases above the target, both flag "
        "everything.",
        "",
        *results_section(results, step_time),
        "",
        "s / epoch and peak RSS come from each training process (nnU-Net's own epoch timestamps, "
        "training and validation iterations) on a CPU that other work shares, so they also measure "
        "how busy it was; the ratio above, taken turn about in one process, does not.",
    ]
    if gpu:
        lines += ["", "## On a GPU (benchmarks/gpu_nnunet.sh)", "", *results_section(*gpu)]
    else:
        lines += [
            "",
            "No GPU rows yet. To add them: `bash benchmarks/gpu_nnunet_prepare.sh` here (the wheels and "
            "the data to carry), then on a lent GPU machine `bash benchmarks/gpu_nnunet.sh install` "
            "(carrying .whl-sitk) and right after it `CONF=3d_fullres bash benchmarks/gpu_nnunet.sh` "
            "(carrying .whl and .devdata/Task04_Hippocampus); put the nnunet.json and "
            "nnunet_step_time.json it writes into docs/nnunet_gpu/ and run this script with "
            "`--report --gpu-results docs/nnunet_gpu`.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/work/nnunet-bench2"))
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/Task04_Hippocampus"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--configurations", nargs="+", default=list(CONFIGURATIONS), choices=CONFIGURATIONS)
    parser.add_argument("--folds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--ensemble", type=int, default=1, help="Members of the plain deep ensemble (fold 0)."
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=1, help="Models trained side by side.")
    parser.add_argument("--da-workers", type=int, default=0, help="nnUNet_n_proc_DA of each training.")
    parser.add_argument("--processes", type=int, default=2, help="Processes of conversion and preprocessing.")
    parser.add_argument("--time-limit", type=float, default=None, help="Seconds; then stop what runs.")
    parser.add_argument("--report", action="store_true", help="Write the page from finished runs only.")
    parser.add_argument("--prepare-only", action="store_true", help="Convert, plan and preprocess; no more.")
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "nnunet.json")
    parser.add_argument("--page", type=Path, default=ROOT / "docs" / "nnunet.md")
    parser.add_argument("--step-time", type=Path, default=ROOT / "docs" / "nnunet_step_time.json")
    parser.add_argument("--gpu-results", type=Path, default=None, help="A GPU run's nnunet*.json folder.")
    args = parser.parse_args()
    work = args.work.resolve()
    env = {
        **os.environ,
        "nnUNet_raw": str(work / "raw"),
        "nnUNet_preprocessed": str(work / "preprocessed"),
        "nnUNet_results": str(work / "results"),
        "nnUNet_def_n_proc": str(args.processes),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    if args.prepare_only:
        prepare(work, env, args.data, args.processes)
        return
    if not args.report:
        run(args, work, env)
    results = collect(work)
    step_time = json.loads(args.step_time.read_text()) if args.step_time.is_file() else {}
    gpu = None
    if args.gpu_results:
        gpu = tuple(
            json.loads((args.gpu_results / n).read_text()) for n in ("nnunet.json", "nnunet_step_time.json")
        )
    write_json(args.json, results)
    write_text(args.page, page(results, step_time, str(args.work), gpu))


if __name__ == "__main__":
    main()
