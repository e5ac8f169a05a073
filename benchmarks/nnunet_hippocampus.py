"""nnUNetTrainerRelation against the plain nnUNetTrainer on MSD Hippocampus, fold 0, same small budget.

Converts Task04 with `nnUNetv2_convert_MSD_dataset` (from a staging copy with the empty imagesTs/
it asserts), plans and preprocesses 2d and 3d_fullres, trains both trainers for EPOCHS x ITERATIONS
on the CPU with `relunet nnunet train`, predicts the 52 validation cases of fold 0 with
`relunet predict` (no mirroring; nnU-Net's own final validation is skipped), and writes
docs/nnunet.md and docs/nnunet.json: Dice of the delivered mask (seg_a for the relation trainer),
Spearman and e-AURC of each model's score against that Dice, seconds per epoch (Relation over
plain, both trained in this run) and peak memory of each training process. Resumable: a trained
fold or a finished prediction is kept; `--report` writes the page from what is finished, training
nothing.

    nice -n 10 python benchmarks/nnunet_hippocampus.py --work /work/nnunet-bench --epochs 1 --iterations 6
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from relunet.evaluation.metrics import dice_per_class, excess_aurc, spearman

TASK = Path("/work/shared/data/Task04_Hippocampus")
DATASET = "Dataset004_Hippocampus"
TRAINERS = ("nnUNetTrainerRelation", "nnUNetTrainer")
CONFIGURATIONS = ("2d", "3d_fullres")
ROOT = Path(__file__).resolve().parents[1]


def command(env: dict, *args: str) -> dict:
    """Run a command to the end; its wall time and the peak resident memory of its own process."""
    start = time.time()
    process = subprocess.Popen(args, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.exit(f"failed ({process.returncode}): {' '.join(args)}")
    return {"seconds": time.time() - start, "peak_rss_mb": usage.ru_maxrss / 1024}


def prepare(work: Path, env: dict) -> Path:
    """Convert, plan and preprocess once; returns the raw dataset folder."""
    raw = work / "raw" / DATASET
    if not raw.is_dir():
        staging = work / "staging" / TASK.name
        staging.mkdir(parents=True, exist_ok=True)
        for name in ("imagesTr", "labelsTr", "dataset.json"):
            if not (staging / name).exists():
                (staging / name).symlink_to(TASK / name)
        (staging / "imagesTs").mkdir(exist_ok=True)
        bin_dir = Path(sys.executable).parent
        command(env, str(bin_dir / "nnUNetv2_convert_MSD_dataset"), "-i", str(staging), "-overwrite_id", "4")
    if not (work / "preprocessed" / DATASET / "nnUNetPlans.json").is_file():
        plan = Path(sys.executable).with_name("nnUNetv2_plan_and_preprocess")
        command(env, str(plan), "-d", "4", "-c", *CONFIGURATIONS, "-np", "2")
    return raw


def model_folder(work: Path, trainer: str, configuration: str) -> Path:
    return work / "results" / DATASET / f"{trainer}__nnUNetPlans__{configuration}"


def train(work: Path, env: dict, trainer: str, configuration: str, epochs: int, iterations: int) -> dict:
    """Train fold 0 unless done; its record (seconds per epoch from nnU-Net's own log, peak memory)."""
    record_path = model_folder(work, trainer, configuration) / "fold_0" / "benchmark.json"
    if record_path.is_file():
        return json.loads(record_path.read_text())
    budget = ("--epochs", str(epochs), "--iterations", str(iterations))
    args = (
        "nnunet",
        "train",
        "4",
        configuration,
        "0",
        "-tr",
        trainer,
        *budget,
        "--no-validation",
        "--device",
        "cpu",
    )
    usage = command({**env, "nnUNet_n_proc_DA": "0"}, sys.executable, "-m", "relunet", *args)
    checkpoint = torch.load(
        record_path.parent / "checkpoint_final.pth", map_location="cpu", weights_only=False
    )
    log = checkpoint["logging"]
    epoch_seconds = np.subtract(log["epoch_end_timestamps"], log["epoch_start_timestamps"])
    record = {**usage, "epoch_seconds": epoch_seconds.tolist(), "epochs": epochs, "iterations": iterations}
    record_path.write_text(json.dumps(record, indent=1))
    return record


def predict(work: Path, env: dict, raw: Path, trainer: str, configuration: str) -> list[dict]:
    """`relunet predict` on fold 0's validation cases; rows with the Dice against the labels."""
    model = model_folder(work, trainer, configuration)
    out = work / "predictions" / f"{trainer}_{configuration}"
    if not (out / "cases.csv").is_file():
        splits = json.loads((work / "preprocessed" / DATASET / "splits_final.json").read_text())
        images = work / "validation_images"
        images.mkdir(exist_ok=True)
        for case in splits[0]["val"]:
            link = images / f"{case}_0000.nii.gz"
            if not link.exists():
                link.symlink_to(raw / "imagesTr" / link.name)
        args = ("predict", str(model), str(images), "--out", str(out), "--no-mirroring", "--device", "cpu")
        command(env, sys.executable, "-m", "relunet", *args, "--overwrite")
    lines = (out / "cases.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]
    for row in rows:
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(out / row["mask"])))
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "labelsTr" / f"{row['case_id']}.nii.gz")))
        row["dice"] = float(
            dice_per_class(np.stack([mask == 1, mask == 2]), np.stack([truth == 1, truth == 2])).mean()
        )
    return rows


def summary(rows: list[dict] | None, record: dict) -> dict:
    """The row of one model: its training record, and its scores when its prediction is done."""
    trained = {
        "seconds_per_epoch": float(np.mean(record["epoch_seconds"])),
        "peak_rss_mb": record["peak_rss_mb"],
    }
    if rows is None:
        return trained
    dice = np.array([r["dice"] for r in rows])
    score = np.array([float(r["score"]) for r in rows])
    return {
        "cases": len(rows),
        "dice": float(dice.mean()),
        "spearman": spearman(score, dice),
        "e_aurc": excess_aurc(score, 1 - dice),
        "distinct_scores": len(set(score.tolist())),
        **trained,
    }


def cell(r: dict, key: str, digits: int) -> str:
    return f"{r[key]:.{digits}f}" if key in r else "not predicted"


def page(results: dict, epochs: int, iterations: int, command_line: str) -> str:
    lines = [
        "# nnU-Net v2: the relation trainer against the plain one (MSD Hippocampus, fold 0)",
        "",
        f"Generated by `{command_line}` (benchmarks/nnunet_hippocampus.py); numbers in `docs/nnunet.json`.",
        "",
        f"Budget, the same for both trainers: {epochs} epoch(s) x {iterations} iterations (validation "
        f"{max(1, iterations // 2)} iterations per epoch), nnU-Net's planned batch and patch, on the CPU "
        "of a shared 2-core machine. This is far below nnU-Net's schedule (1000 x 250): the rows say "
        "whether the pieces work together and how they compare at a tiny budget, not what either reaches.",
        "Scores on the 52 validation cases of fold 0 (nnU-Net's splits_final.json), predicted by "
        "`relunet predict` without mirroring: C for nnUNetTrainerRelation, the mean foreground probability "
        "for nnUNetTrainer. Dice: the delivered mask (seg_a) against the label, mean over both classes.",
        "",
        "| configuration | trainer | Dice | Spearman(score, Dice) | e-AURC | distinct scores "
        "| s / epoch | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for configuration, by_trainer in results.items():
        for trainer, r in by_trainer.items():
            lines.append(
                f"| {configuration} | {trainer} | {cell(r, 'dice', 3)} | {cell(r, 'spearman', 3)} "
                f"| {cell(r, 'e_aurc', 4)} | {cell(r, 'distinct_scores', 0)} | {r['seconds_per_epoch']:.1f} "
                f"| {r['peak_rss_mb']:.0f} |"
            )
    missing = [
        f"{c} {t}" for c in CONFIGURATIONS for t in TRAINERS if "dice" not in results.get(c, {}).get(t, {})
    ]
    if missing:
        lines += [
            "",
            f"Not finished at this budget: {', '.join(missing)} (rerun the command without --report).",
        ]
    lines += ["", "Relation over plain, per configuration trained with both:", ""]
    for configuration, by_trainer in results.items():
        if len(by_trainer) < len(TRAINERS):
            continue
        rel, plain = by_trainer["nnUNetTrainerRelation"], by_trainer["nnUNetTrainer"]
        if "dice" not in rel or "dice" not in plain:
            time_ratio = rel["seconds_per_epoch"] / plain["seconds_per_epoch"]
            lines.append(
                f"- {configuration}: time per epoch {time_ratio:.2f}x, "
                f"peak memory {rel['peak_rss_mb'] / plain['peak_rss_mb']:.2f}x (scores: not predicted yet)"
            )
            continue
        lines.append(
            f"- {configuration}: Dice {rel['dice'] - plain['dice']:+.3f} (target: within 0.01), Spearman "
            f"{rel['spearman']:.3f} vs {plain['spearman']:.3f} (target: above), time per epoch "
            f"{rel['seconds_per_epoch'] / plain['seconds_per_epoch']:.2f}x (target: <= 1.3x), peak memory "
            f"{rel['peak_rss_mb'] / plain['peak_rss_mb']:.2f}x"
        )
    lines += [
        "",
        "Time per epoch comes from nnU-Net's own epoch timestamps (training and validation iterations) "
        "on a CPU shared with other work; with `--configurations` each configuration runs in its own "
        "process, possibly beside the other, so a time ratio also measures how busy the CPU was, and at "
        "one epoch it is not a measure of the trainers. nnU-Net's full schedule (both trainers, five "
        "folds) needs a GPU.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/work/nnunet-bench"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--configurations", nargs="+", default=list(CONFIGURATIONS), choices=CONFIGURATIONS)
    parser.add_argument("--report", action="store_true", help="Write the page from finished runs only.")
    args = parser.parse_args()
    work = args.work.resolve()
    env = {
        **os.environ,
        "nnUNet_raw": str(work / "raw"),
        "nnUNet_preprocessed": str(work / "preprocessed"),
        "nnUNet_results": str(work / "results"),
        "nnUNet_def_n_proc": "2",
        "PYTHONPATH": str(ROOT / "src"),
    }
    raw = prepare(work, env)
    results: dict = {}
    for configuration in args.configurations:
        for trainer in TRAINERS:
            trained = model_folder(work, trainer, configuration) / "fold_0" / "benchmark.json"
            predicted = work / "predictions" / f"{trainer}_{configuration}" / "cases.csv"
            if args.report and not trained.is_file():
                continue
            record = train(work, env, trainer, configuration, args.epochs, args.iterations)
            rows = (
                None
                if args.report and not predicted.is_file()
                else predict(work, env, raw, trainer, configuration)
            )
            results.setdefault(configuration, {})[trainer] = summary(rows, record)
            print(configuration, trainer, results[configuration][trainer], flush=True)
    line = (
        f"python benchmarks/nnunet_hippocampus.py --work {args.work} --epochs {args.epochs} "
        f"--iterations {args.iterations}"
    )
    (ROOT / "docs" / "nnunet.json").write_text(json.dumps(results, indent=1) + "\n")
    (ROOT / "docs" / "nnunet.md").write_text(page(results, args.epochs, args.iterations, line))


if __name__ == "__main__":
    main()
