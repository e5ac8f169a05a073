"""Peak memory and time of `train` and `predict` on full-size CT-like volumes, at two dataset sizes.

    nice -n 10 python benchmarks/scale.py [--sizes 3,6] [--shape 512,512,300] [--work .scale]

Writes a synthetic MSD dataset of CT-like volumes (int16 HU, a body, a liver-like organ with a
lesion; `.nii.gz`) under `--work` (git-ignored), then runs, each as its own `relunet` process whose
peak resident memory is read from the kernel (`os.wait4`):

- `train --dims 2` for one short epoch (whole 512x512 slices, streamed from the disk cache);
- `train --dims 3 --patch-size ...` for one short epoch (patches from the disk cache);
- `predict` of one full volume with each of the two models (the 3D one by sliding windows);

training at each dataset size, so that the memory can be seen not to grow with the number of
cases. Each training also fills its run's disk cache (every case read and preprocessed once): its
time includes that. Prediction runs with the smallest size's models; steps that do not depend on
each other run side by side. Finished steps are kept in `--work`/rows.jsonl: rerunning with the
same `--work` resumes after the last finished step.
Writes docs/scale.json and the "scale" section of docs/performance.md; deletes the dataset and the
runs afterwards unless `--keep`. The machine's load average is recorded: on a shared machine the
times are inflated, the memory is what the targets are about.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import nibabel as nib
import numpy as np
from speed import DOCS, ROOT, _cores, _cpu_name, write_section

from relunet.atomic import atomic_path
from relunet.errors import InputError, guarded

COMMAND = "nice -n 10 python benchmarks/scale.py"
#: `--cache disk`: `auto` would hold a few CT volumes in memory where they fit (3 take 5 GB)
TRAIN_2D = ["--dims", "2", "--cache", "disk", "--batch-size", "4", "--samples-per-epoch", "4"]
TRAIN_3D = ["--dims", "3", "--patch-size", "96,96,96", "--cache", "disk", "--batch-size", "1"]
TRAIN_3D += ["--samples-per-epoch", "2"]
PREDICT_3D = ["--overlap", "0.25"]
DEVICE = ["--device", "cpu"]
COMMON = ["--epochs", "1", "--folds", "3", "--window", "-100,400"]
#: volumes written with distinct content; the others repeat them under new names
DISTINCT = 6


def ct_volume(rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """An int16 CT-like volume in HU and its label map (1 organ, 2 lesion), both `shape`."""
    axes = [np.linspace(-1, 1, s, dtype=np.float32) for s in shape]
    x, y, z = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]
    body = np.broadcast_to((x / 0.85) ** 2 + (y / 0.7) ** 2 < 1, shape)
    cx, cy = rng.uniform(-0.3, 0.3, 2)
    organ = ((x - cx) / 0.35) ** 2 + ((y - cy) / 0.3) ** 2 + (z / 0.6) ** 2 < 1
    lx, ly = cx + rng.uniform(-0.1, 0.1), cy + rng.uniform(-0.1, 0.1)
    lesion = organ & (((x - lx) / 0.08) ** 2 + ((y - ly) / 0.08) ** 2 + (z / 0.1) ** 2 < 1)
    image = np.full(shape, -1000, np.int16)
    image[body] = 40
    image[organ] = 90
    image[lesion] = 30
    image += rng.normal(0, 20, size=shape).astype(np.int16)
    label = organ.astype(np.uint8) + lesion.astype(np.uint8)
    return image, label


def write_dataset(work: Path, n_cases: int, shape: tuple[int, int, int]) -> Path:
    """An MSD folder `work/n{n_cases}` of `n_cases` volumes; the files are shared between sizes."""
    files = work / "files"
    files.mkdir(parents=True, exist_ok=True)
    root = work / f"n{n_cases}"
    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    entries = []
    for i in range(n_cases):
        distinct = i % DISTINCT
        image_file, label_file = (
            files / f"ct_{distinct:03d}.nii.gz",
            files / f"ct_{distinct:03d}_label.nii.gz",
        )
        if not label_file.is_file():
            image, label = ct_volume(np.random.default_rng(distinct), shape)
            affine = np.diag([0.8, 0.8, 1.5, 1.0])
            for array, path in ((image, image_file), (label, label_file)):
                with atomic_path(path) as tmp:
                    nib.save(nib.Nifti1Image(array, affine), tmp)
        name = f"ct_{i:03d}.nii.gz"
        for source, sub in ((image_file, "imagesTr"), (label_file, "labelsTr")):
            link = root / sub / name
            if not link.exists():
                link.symlink_to(source)
        entries.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    meta = {"name": "scale", "labels": {"0": "background", "1": "organ", "2": "lesion"}, "training": entries}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def measured(args: list[str], env: dict[str, str] | None = None) -> dict:
    """Run `python -m relunet ARGS` (in `env`, else this one's); its wall, user and system time,
    peak resident memory and exit status.

    The kernel counts the peak of the process that started the child in the child's own peak
    (Linux keeps the high-water mark across `exec`): this process must stay small, so the volumes
    are written by a process of their own (`measure`).
    """
    tic = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "relunet", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    _, status, usage = os.wait4(process.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    row = {
        "seconds": time.perf_counter() - tic,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "exit": code,
    }
    if code != 0:
        row["error"] = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {code}"
    return row


def measure(work: Path, sizes: list[int], shape: tuple[int, int, int]) -> list[dict]:
    """The rows of the table: training at each dataset size, prediction with the smallest size's models.

    The steps run side by side where they do not depend on each other (each model's prediction
    after its training), which shortens the wall time on a machine shared with other jobs and leaves
    each process's peak memory its own. Each finished row is kept in `work/rows.jsonl`; a rerun with
    the same `--work` skips it.
    """
    done_path = work / "rows.jsonl"
    rows = [json.loads(line) for line in done_path.read_text().splitlines()] if done_path.is_file() else []
    with ProcessPoolExecutor(1, mp_context=get_context("fork")) as writer:
        datasets = {n: writer.submit(write_dataset, work, n, shape).result() for n in sizes}
    one = datasets[min(sizes)] / "imagesTr" / "ct_000.nii.gz"
    chains = []
    for n in sizes:
        runs = {"2D": work / f"run2d_n{n}", "3D": work / f"run3d_n{n}"}
        train_2d = (
            n,
            f"train {' '.join(TRAIN_2D[:2])}, one epoch",
            ["train", datasets[n], "--out", runs["2D"], *TRAIN_2D],
        )
        train_3d = (
            n,
            f"train {' '.join(TRAIN_3D[:4])}, one epoch",
            ["train", datasets[n], "--out", runs["3D"], *TRAIN_3D],
        )
        if n != min(sizes):
            chains += [[train_2d], [train_3d]]
            continue
        predict_2d = (
            n,
            "predict one volume, 2D model",
            ["predict", runs["2D"], one, "--out", work / "pred2d"],
        )
        predict_3d = (
            n,
            f"predict one volume, 3D model, windows {' '.join(PREDICT_3D)}",
            ["predict", runs["3D"], one, "--out", work / "pred3d", *PREDICT_3D],
        )
        chains += [[train_2d, predict_2d], [train_3d, predict_3d]]
    lock = threading.Lock()

    def run_chain(chain: list[tuple]) -> None:
        for n, what, args in chain:
            if any(r["cases"] == n and r["step"] == what for r in rows):
                continue
            command = [*map(str, args), *(COMMON if args[0] == "train" else []), *DEVICE]
            row = {"cases": n, "step": what, "load_before": os.getloadavg()[0], **measured(command)}
            row["load_after"] = os.getloadavg()[0]
            if args[0] == "train":
                row["cache_gb"] = sum(p.stat().st_size for p in Path(args[3], "cache").rglob("*")) / 1e9
            with lock:
                print(json.dumps(row), flush=True)
                rows.append(row)
                with done_path.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")

    with ThreadPoolExecutor(len(chains)) as pool:
        list(pool.map(run_chain, chains))
    order = [what for chain in chains for _, what, _ in chain]
    return sorted(rows, key=lambda r: (r["step"].startswith("predict"), r["cases"], order.index(r["step"])))


def render(result: dict) -> str:
    """The "scale" section of docs/performance.md."""
    shape = "x".join(map(str, result["shape"]))
    lines = [
        "## Full-size volumes in bounded memory",
        "",
        f"Generated by `{COMMAND} --sizes {','.join(map(str, result['sizes']))}`; do not edit. "
        f"A synthetic MSD dataset of CT-like {shape} int16 volumes (`.nii.gz`, "
        f"{result['gigabytes_on_disk']:.1f} GB for the largest size), each step its own `relunet` "
        "process; peak resident memory from the kernel. Training: "
        f"`{' '.join(TRAIN_2D)}` and `{' '.join(TRAIN_3D)}`, with `{' '.join(COMMON)}`; samples "
        "are read from the run's disk cache, which each training fills (its time includes reading and "
        "preprocessing every case once). Prediction: one whole volume with the models of the smallest "
        "size, self-pair, masks and tables written; the 3D model by sliding windows. Steps that do not "
        "depend on each other ran side by side; a step measured again by a resumed run (the script "
        "keeps finished rows) ran beside whatever else was running then.",
        "",
        "| cases | step | peak RSS | seconds | disk cache | load average (before, after) |",
        "| ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for row in result["rows"]:
        status = "" if row["exit"] == 0 else f" (failed: {row.get('error', '')})"
        cache = f"{row['cache_gb']:.1f} GB" if "cache_gb" in row else ""
        lines.append(
            f"| {row['cases']} | {row['step']}{status} | {row['peak_rss_mb']:.0f} MB | "
            f"{row['seconds']:.0f} | {cache} | {row['load_before']:.1f}, {row['load_after']:.1f} |"
        )
    lines += [
        "",
        f"Machine: {result['machine']}, shared with other jobs (the load averages above): times are "
        "inflated by the sharing; the memory does not depend on it.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,6", help="Dataset sizes (cases), comma-separated.")
    parser.add_argument("--shape", default="512,512,300", help="Volume shape.")
    parser.add_argument("--work", type=lambda text: Path(text).resolve(), default=ROOT / ".scale")
    parser.add_argument("--keep", action="store_true", help="Keep the dataset and the runs.")
    parser.add_argument("--out", type=Path, default=DOCS)
    parser.add_argument(
        "--render-only", action="store_true", help="Write the page from --work/rows.jsonl, running nothing."
    )
    args = parser.parse_args()
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
        shape = tuple(int(s) for s in args.shape.split(","))
    except ValueError:
        raise InputError(
            f"--sizes {args.sizes} --shape {args.shape}: give whole numbers, comma-separated"
        ) from None
    if len(shape) != 3 or min(sizes) < 3:
        raise InputError(f"--sizes {args.sizes} --shape {args.shape}: three sizes, at least 3 cases")
    from relunet.atomic import write_json

    try:
        if args.render_only:
            lines = (args.work / "rows.jsonl").read_text().splitlines()
            rows = sorted(map(json.loads, lines), key=lambda r: (r["step"].startswith("predict"), r["cases"]))
        else:
            rows = measure(args.work, sizes, shape)
        on_disk = sum(p.stat().st_size for p in (args.work / "files").iterdir())
        on_disk *= max(sizes) / min(max(sizes), DISTINCT)
    finally:
        if not (args.keep or args.render_only):
            shutil.rmtree(args.work, ignore_errors=True)
    result = {
        "machine": f"{_cpu_name()}, {_cores()} cores",
        "sizes": sizes,
        "shape": list(shape),
        "gigabytes_on_disk": on_disk / 1e9,
        "rows": rows,
    }
    write_json(args.out / "scale.json", result)
    write_section(args.out / "performance.md", "scale", render(result))
    print(render(result))


if __name__ == "__main__":
    guarded(main)
