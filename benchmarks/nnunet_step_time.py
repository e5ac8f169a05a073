"""Seconds per training iteration, nnUNetTrainerRelation over nnUNetTrainer, measured in one process.

Both trainers are built from the same plans and configuration on the same device. Each iteration
draws one batch from nnU-Net's own training dataloader (its patches and augmentation, drawn outside
the timing) and gives it to both trainers' `train_step`, alternating which goes first; after
`--warmup` such iterations, `--steps` are timed. Taking turns in one process makes the ratio robust
to a CPU that other work shares: a busy stretch slows both. Reports the median seconds per
iteration of each, their ratio, the median of the per-batch ratios (the two steps on one batch
are adjacent in time, so it holds when the load drifts during the run), and peak memory: on
CUDA each trainer's step's own (the most `torch.cuda.max_memory_allocated` rose above the memory
held when its step began), on the CPU the process's peak resident memory (both trainers
together; the trainings' own peaks are in nnunet_hippocampus.py's rows).

Adds its result to `--out` (JSON keyed by device, then configuration), so CPU and GPU runs sit
side by side.

    nice -n 5 python benchmarks/nnunet_step_time.py --preprocessed /work/nnunet-bench/preprocessed \\
        --configurations 2d 3d_fullres --steps 5 --out docs/nnunet_step_time.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from relunet.atomic import write_json

TRAINERS = ("nnUNetTrainerRelation", "nnUNetTrainer")
RELATION, PLAIN = TRAINERS


def build(name: str, dataset: str, configuration: str, device: torch.device):
    """An initialised trainer of class `name` on fold 0 of the preprocessed `dataset`."""
    from batchgenerators.utilities.file_and_folder_operations import load_json

    from relunet.nnunet.launch import preprocessed_folder, trainer_class

    folder = preprocessed_folder(dataset)
    plans = load_json(str(folder / "nnUNetPlans.json"))
    plans["continue_training"] = False  # nnU-Net's trainer pops it (nnUNetv2_train sets it)
    trainer = trainer_class(name)(
        plans=plans,
        configuration=configuration,
        fold=0,
        dataset_json=load_json(str(folder / "dataset.json")),
        device=device,
    )
    trainer.initialize()
    trainer.network.train()
    return trainer


def timed_step(trainer, batch: dict, device: torch.device) -> tuple[float, int]:
    """Seconds of one `train_step` and, on CUDA, the most bytes it allocated above what was held before.

    Both trainers' weights and optimiser states stay on the GPU throughout, so the peak of the step
    is counted from the memory allocated when it starts (else 0).
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        held = torch.cuda.memory_allocated(device)
    start = time.perf_counter()
    trainer.train_step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return time.perf_counter() - start, torch.cuda.max_memory_allocated(device) - held
    return time.perf_counter() - start, 0


def measure(dataset: str, configuration: str, device: torch.device, warmup: int, steps: int) -> dict:
    """Both trainers' `train_step` on the same batches, turn about; medians, ratio and peak memory."""
    trainers = {name: build(name, dataset, configuration, device) for name in TRAINERS}
    loader, _ = trainers["nnUNetTrainer"].get_dataloaders()
    seconds: dict[str, list[float]] = {name: [] for name in TRAINERS}
    peak = dict.fromkeys(TRAINERS, 0)
    for iteration in range(warmup + steps):
        batch = next(loader)
        order = TRAINERS if iteration % 2 == 0 else TRAINERS[::-1]
        for name in order:
            spent, peak_bytes = timed_step(trainers[name], batch, device)
            if iteration >= warmup:
                seconds[name].append(spent)
                peak[name] = max(peak[name], peak_bytes)
        print(
            configuration, iteration, {name: round(s[-1], 3) for name, s in seconds.items() if s}, flush=True
        )
    relation, plain = (float(np.median(seconds[name])) for name in TRAINERS)
    paired = np.divide(seconds[RELATION], seconds[PLAIN])
    result = {
        "batch_size": trainers["nnUNetTrainer"].batch_size,
        "patch_size": list(trainers["nnUNetTrainer"].configuration_manager.patch_size),
        "warmup": warmup,
        "steps": steps,
        "seconds": seconds,
        "median_seconds": {RELATION: relation, PLAIN: plain},
        "ratio": relation / plain,
        "paired_ratios": paired.tolist(),
        "median_paired_ratio": float(np.median(paired)),
    }
    if device.type == "cuda":
        result["peak_memory_mb"] = {name: peak[name] / 2**20 for name in TRAINERS}
        result["device_name"] = torch.cuda.get_device_name(device)
    else:
        result["process_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result["threads"] = torch.get_num_threads()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preprocessed", type=Path, required=True, help="nnUNet_preprocessed folder.")
    parser.add_argument("--dataset", default="Dataset004_Hippocampus")
    parser.add_argument("--configurations", nargs="+", default=["2d", "3d_fullres"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("docs/nnunet_step_time.json"))
    args = parser.parse_args()
    if not (args.preprocessed / args.dataset / "nnUNetPlans.json").is_file():
        sys.exit(f"--preprocessed {args.preprocessed}: no {args.dataset}/nnUNetPlans.json; plan it first")
    os.environ["nnUNet_preprocessed"] = str(args.preprocessed.resolve())
    os.environ.setdefault("nnUNet_raw", str(args.preprocessed.resolve()))
    # the trainers name an output folder at construction; nothing is written into it here
    os.environ["nnUNet_results"] = tempfile.mkdtemp(prefix="nnunet_step_time_")
    os.environ["nnUNet_n_proc_DA"] = "0"
    device = torch.device(args.device)
    for configuration in args.configurations:
        result = measure(args.dataset, configuration, device, args.warmup, args.steps)
        result["command"] = "python benchmarks/nnunet_step_time.py " + " ".join(sys.argv[1:])
        # read just before writing: runs of other configurations may have added theirs meanwhile
        found = json.loads(args.out.read_text()) if args.out.is_file() else {}
        found.setdefault(device.type, {})[configuration] = result
        write_json(args.out, found)
        print(configuration, result["median_seconds"], f"ratio {result['ratio']:.3f}", flush=True)


if __name__ == "__main__":
    main()
