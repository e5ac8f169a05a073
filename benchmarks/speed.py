"""Speed and memory of the Relation U-Net against its baselines, in one run on one machine.

Every measurement runs in its own child process (so its peak memory is its own), repeats
after a warm-up and reports the median. Ratios compare numbers from the same run.

    python benchmarks/speed.py [--device cpu] [--repeats 7] \
        [--hippocampus ../shared/data/Task04_Hippocampus] [--isic ../shared/data/ISIC2017_Task1_256]

Writes docs/performance.json and docs/performance.md; the sections other scripts keep in that
page (`replace_section`, e.g. benchmarks/onnx_speed.py's) are carried over.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from relunet.atomic import write_text
from relunet.errors import guarded
from relunet.inference.methods import Ensemble, FlipTTA, predict_case

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: marks of a section another script generates in performance.md
SECTION_BEGIN, SECTION_END = "<!-- section {} -->", "<!-- end of section {} -->"

#: training-step settings: name -> (spatial shape, channels, batch)
TRAIN_SHAPES = {
    "hippocampus 2D slices 48x64": ((48, 64), 1, 32),
    "ISIC 2D 128x128 RGB": ((128, 128), 3, 32),
    "hippocampus 3D volumes 48x64x48": ((48, 64, 48), 1, 4),
}
#: inference methods: name -> (model kind, how it is run, forward passes per sample)
INFERENCE = {
    "U-Net, one forward pass": ("unet", "predict", 1),
    "Relation U-Net, self-pair": ("relation", "predict", 1),
    "MC dropout n=20": ("mcdropout", "mc20", 20),
    "MC dropout n=200": ("mcdropout", "mc200", 200),
    "ensemble of 5 U-Nets": ("unet", "ensemble", 5),
    "U-Net + flip TTA": ("unet", "tta", 3),
}


def timed(fn, repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - tic)
    return times


# --- measurements, each run in a child process --------------------------------------------


def measure_train_step(setting: str, kind: str, device: str, repeats: int) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    from relunet.config import ModelConfig
    from relunet.data.training_set import TrainingSet
    from relunet.nets import RelationUNet, build_model
    from relunet.training.loop import batch_loss
    from relunet.training.losses import SegmentationLoss

    shape, channels, batch = TRAIN_SHAPES[setting]
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind, spatial_dims=len(shape), in_channels=channels)).to(device)
    n = 4 * batch
    data = TrainingSet(
        torch.randn(n, channels, *shape, device=device),
        (torch.rand(n, 1, *shape, device=device) > 0.7).to(torch.uint8),
        np.linspace(0, 1, n),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = SegmentationLoss()
    pairs = isinstance(model, RelationUNet)
    rng = np.random.default_rng(0)

    def step() -> None:
        first, partners = rng.integers(0, n, batch), rng.integers(0, n, batch)
        loss, _ = batch_loss(model, pairs, data, first, partners, criterion)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    times = timed(step, repeats)
    with FlopCounterMode(display=False) as counter:
        step()
    return {"seconds": statistics.median(times), "flops": counter.get_total_flops()}


def measure_inference(method: str, device: str, repeats: int, hippocampus: str) -> dict:
    from relunet.config import RunConfig
    from relunet.inference.predictor import Predictor
    from relunet.nets import build_model

    kind, how, _ = INFERENCE[method]
    case = _hippocampus_case(hippocampus)
    config = RunConfig().with_overrides(model={"kind": kind}, data={"label_sets": ((1, 2),)})

    def predictor(seed: int = 0, samples: int = 20) -> Predictor:
        torch.manual_seed(seed)
        return Predictor(build_model(config.model), config, torch.device(device), mc_samples=samples)

    if how == "ensemble":
        members = [predictor(seed) for seed in range(5)]
        run = lambda: Ensemble(len(members)).predict(members, case)  # noqa: E731
    elif how == "tta":
        single = predictor()
        run = lambda: FlipTTA().predict([single], case)  # noqa: E731
    else:
        single = predictor(samples=200 if how == "mc200" else 20)
        run = lambda: predict_case(single, case)  # noqa: E731
    times = timed(run, repeats if how != "mc200" else max(3, repeats // 3), warmup=1)
    return {"seconds": statistics.median(times), "slices": case.spatial_shape[2]}


def measure_predict(dataset: str, device: str, source: str, limit: int) -> dict:
    from relunet.config import DataConfig, TrainConfig
    from relunet.inference.workflows import predict_folder
    from relunet.training.train_workflow import train_fold

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = Path(source)
        data_cfg = DataConfig(image_size=128 if dataset == "ISIC" else None)
        train = TrainConfig(epochs=1, samples_per_epoch=32)
        train_fold(data, tmp / "run", device=device, data_cfg=data_cfg, train=train)
        images = data / ("imagesTr" if dataset == "Hippocampus" else "images")
        files = sorted(p for p in images.iterdir() if p.is_file())[:limit]
        folder = tmp / "input"
        folder.mkdir()
        for path in files:
            shutil.copy(path, folder / path.name)
        tic = time.perf_counter()
        rows = predict_folder(tmp / "run", folder, tmp / "out", device=device)
        seconds = time.perf_counter() - tic
    return {"seconds": seconds, "cases": len(rows), "cases_per_s": len(rows) / seconds}


def measure_matmul(device: str, repeats: int) -> dict:
    size = 2048
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    times = timed(lambda: a @ b, repeats)
    return {"seconds": statistics.median(times), "flops_per_s": 2 * size**3 / statistics.median(times)}


def _hippocampus_case(path: str):
    from relunet.data.layouts import index_dataset, load_case
    from relunet.types import Case

    if path and Path(path).is_dir():
        index = index_dataset(path)
        return load_case(index.cases[0], index.labels, with_label=False)
    rng = np.random.default_rng(0)
    return Case(
        "synthetic", rng.normal(size=(1, 36, 50, 35)).astype(np.float32), None, Path("x.nii.gz"), "nifti"
    )


def child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    kind, name, extra = args.child
    if kind == "train":
        result = measure_train_step(name, extra, args.device, args.repeats)
    elif kind == "infer":
        result = measure_inference(name, args.device, args.repeats, str(args.hippocampus))
    elif kind == "predict":
        source = args.hippocampus if name == "Hippocampus" else args.isic
        result = measure_predict(name, args.device, str(source), int(extra))
    else:
        result = measure_matmul(args.device, args.repeats)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


# --- the parent: run every measurement, write the report ----------------------------------


def run_child(args: argparse.Namespace, kind: str, name: str, extra: str = "") -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        name,
        extra,
        "--device",
        args.device,
        "--repeats",
        str(args.repeats),
        "--threads",
        str(args.threads),
        "--hippocampus",
        str(args.hippocampus),
        "--isic",
        str(args.isic),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{kind} {name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    print(f"{kind:8s} {name} {extra}: {result['seconds']:.4f} s, {result['peak_rss_mb']:.0f} MB", flush=True)
    return result


def measure_all(args: argparse.Namespace) -> dict:
    results: dict = {"train": {}, "inference": {}, "predict": {}}
    results["matmul"] = run_child(args, "matmul", "fp32 2048")
    for setting in TRAIN_SHAPES:
        results["train"][setting] = {k: run_child(args, "train", setting, k) for k in ("unet", "relation")}
    for method in INFERENCE:
        results["inference"][method] = run_child(args, "infer", method)
    for dataset, limit in (("Hippocampus", args.hippocampus_cases), ("ISIC", args.isic_cases)):
        path = args.hippocampus if dataset == "Hippocampus" else args.isic
        if Path(path).is_dir():
            results["predict"][dataset] = run_child(args, "predict", dataset, str(limit))
    return results


def render(results: dict, machine: str, threads: int, repeats: int) -> str:
    peak = results["matmul"]["flops_per_s"]
    lines = [
        "# Performance",
        "",
        "Generated by `benchmarks/speed.py`; do not edit. Medians of repeated timings after a",
        f"warm-up ({repeats} repeats), each measurement in its own process.",
        "",
        f"Machine: {machine}; PyTorch {torch.__version__}, {threads} threads.",
        f"Practical limit: a 2048² fp32 matrix product reaches {peak / 1e9:.1f} GFLOP/s.",
        "",
        "## Training step (forward, loss, backward, Adam), same backbone and batch",
        "",
        "| data | batch | U-Net s/step | Relation s/step | ratio | Relation GFLOP/s | of limit | peak RSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for setting, pair in results["train"].items():
        unet, rel = pair["unet"], pair["relation"]
        rate = rel["flops"] / rel["seconds"]
        lines.append(
            f"| {setting} | {TRAIN_SHAPES[setting][2]} | {unet['seconds']:.4f} | {rel['seconds']:.4f} "
            f"| {rel['seconds'] / unet['seconds']:.2f}× | {rate / 1e9:.1f} | {rate / peak:.0%} "
            f"| {rel['peak_rss_mb']:.0f} MB |"
        )
    base = results["inference"]["U-Net, one forward pass"]["seconds"]
    relation = results["inference"]["Relation U-Net, self-pair"]["seconds"]
    slices = results["inference"]["U-Net, one forward pass"]["slices"]
    lines += [
        "",
        f"## One case's segmentation and confidence (a Hippocampus volume, {slices} slices, 2D model)",
        "",
        "| method | forward passes | s/case | × U-Net forward | × Relation self-pair | peak RSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for method, r in results["inference"].items():
        lines.append(
            f"| {method} | {INFERENCE[method][2]} | {r['seconds']:.4f} | {r['seconds'] / base:.2f} "
            f"| {r['seconds'] / relation:.1f} | {r['peak_rss_mb']:.0f} MB |"
        )
    if results["predict"]:
        lines += [
            "",
            "## End-to-end `relunet predict` (read, segment, score, write masks and cases.csv)",
            "",
            "| data | cases | seconds | cases/s | peak RSS |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for dataset, r in results["predict"].items():
            lines.append(
                f"| {dataset} | {r['cases']} | {r['seconds']:.1f} | {r['cases_per_s']:.1f} "
                f"| {r['peak_rss_mb']:.0f} MB |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--hippocampus", type=Path, default=ROOT.parent / "shared/data/Task04_Hippocampus")
    parser.add_argument("--isic", type=Path, default=ROOT.parent / "shared/data/ISIC2017_Task1_256")
    parser.add_argument("--hippocampus-cases", type=int, default=260)
    parser.add_argument("--isic-cases", type=int, default=500)
    parser.add_argument("--out", type=Path, default=DOCS)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from relunet.atomic import write_json, write_text

    machine = (
        torch.cuda.get_device_name(0)
        if args.device == "cuda"
        else f"{platform.machine()} CPU ({_cpu_name()}), {_cores()} cores"
    )
    results = measure_all(args)
    write_json(args.out / "performance.json", {"machine": machine, "threads": args.threads, **results})
    page = args.out / "performance.md"
    kept = kept_sections(page.read_text() if page.is_file() else "")
    write_text(page, render(results, machine, args.threads, args.repeats) + (f"\n{kept}" if kept else ""))


def replace_section(page: str, name: str, body: str) -> str:
    """`page` with the generated section `name` set to `body` (appended when it has none)."""
    begin, end = SECTION_BEGIN.format(name), SECTION_END.format(name)
    block = f"{begin}\n\n{body.strip()}\n\n{end}\n"
    if begin in page and end in page:
        head, rest = page.split(begin, 1)
        return head + block + rest.split(end, 1)[1].lstrip("\n")
    return page.rstrip("\n") + "\n\n" + block


def write_section(page: Path, name: str, body: str) -> None:
    """Set the generated section `name` of the page file `page` (created if missing) to `body`."""
    write_text(page, replace_section(page.read_text() if page.is_file() else "", name, body))


def kept_sections(page: str) -> str:
    """The sections of `page` that other scripts generated, in order."""
    begin, end = (re.escape(mark).replace(r"\{\}", ".+?") for mark in (SECTION_BEGIN, SECTION_END))
    return "\n".join(re.findall(f"{begin}\n.*?{end}\n", page, flags=re.S))


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    guarded(main)
