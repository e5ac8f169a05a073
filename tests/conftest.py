"""Fixtures that write tiny datasets into tmp_path."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from relunet.config import TrainConfig
from relunet.crossval import crossval, select_methods
from relunet.data.synthetic import write_synthetic_dataset


def _find_shared_data() -> Path:
    """`$RELUNET_SHARED_DATA`, else the first `shared/data` beside the checkout or above it."""
    if os.environ.get("RELUNET_SHARED_DATA"):
        return Path(os.environ["RELUNET_SHARED_DATA"])
    for parent in Path(__file__).resolve().parents[1:]:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return Path(__file__).resolve().parents[2] / "shared" / "data"


SHARED_DATA = _find_shared_data()
TINY_TRAIN = TrainConfig(epochs=1, samples_per_epoch=8, batch_size=4)


def write_msd(
    root: Path,
    n_cases: int = 6,
    shape: tuple[int, int, int] = (12, 14, 10),
    channels: int = 1,
    channel_files: bool = False,
    labels: dict[str, str] | None = None,
    seed: int = 0,
) -> Path:
    """An MSD folder with blob volumes; labels 0/1/2 (or those given)."""
    rng = np.random.default_rng(seed)
    labels = labels or {"0": "background", "1": "a", "2": "b"}
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir(parents=True)
    entries = []
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"))
    for i in range(n_cases):
        centre = np.array(shape) / 2 + rng.uniform(-2, 2, size=3)
        dist = np.sqrt(((grid - centre[:, None, None, None]) ** 2).sum(0))
        label = np.where(dist < 3, 2, np.where(dist < 5, 1, 0)).astype(np.uint8)
        image = (label * 40 + rng.normal(100, 10, size=shape)).astype(np.float32)
        affine = np.diag([1.5, 1.5, 2.0, 1.0])
        name = f"case_{i:03d}"
        if channel_files:
            for c in range(channels):
                nib.save(
                    nib.Nifti1Image(image * (c + 1), affine), root / "imagesTr" / f"{name}_{c:04d}.nii.gz"
                )
        else:
            data = np.stack([image * (c + 1) for c in range(channels)], -1) if channels > 1 else image
            nib.save(nib.Nifti1Image(data, affine), root / "imagesTr" / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(label, affine), root / "labelsTr" / f"{name}.nii.gz")
        entries.append({"image": f"./imagesTr/{name}.nii.gz", "label": f"./labelsTr/{name}.nii.gz"})
    meta = {"name": "tiny", "labels": labels, "numTraining": n_cases, "training": entries}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def write_pictures(root: Path, n_cases: int = 10, size: int = 32, rgb: bool = False) -> Path:
    """An images/ + masks/ folder of synthetic pictures, gray or RGB."""
    write_synthetic_dataset(root, n_cases=n_cases, size=size, seed=1)
    if rgb:
        for path in (root / "images").glob("*.png"):
            gray = np.asarray(Image.open(path))
            Image.fromarray(np.stack([gray, gray // 2, 255 - gray], -1)).save(
                path.with_suffix(".jpg"), quality=95
            )
            path.unlink()
    return root


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str):
    """The script `benchmarks/<name>.py` as a module, to call its functions."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_benchmark(name: str, *args) -> subprocess.CompletedProcess:
    """Run `benchmarks/<name>.py` with `args` as a user would; output captured as text."""
    command = [sys.executable, BENCHMARKS / f"{name}.py", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True)


def crossval_self_pair_and_unet(data: Path, out: Path, log: list[str], epochs: int = 1) -> None:
    """A tiny cross-validation: fold 0 of 2, the Relation U-Net's self-pair and the U-Net."""
    crossval(
        data,
        out,
        folds=2,
        fold=0,
        methods=select_methods("relation_self_pair,unet", (3,), (3,)),
        train=TrainConfig(epochs=epochs, samples_per_epoch=8),
        device="cpu",
        log=log.append,
    )


@pytest.fixture
def msd(tmp_path: Path) -> Path:
    return write_msd(tmp_path / "msd")


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    return write_pictures(tmp_path / "pictures")


def shared_dataset(name: str) -> Path:
    """A folder of ../shared/data; skipped when absent, but a failure when CI is set."""
    path = SHARED_DATA / name
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing; CI must provide ../shared/data")
        pytest.skip(f"{path} not available")
    return path


def copy_msd_subset(source: Path, dest: Path, n_cases: int) -> Path:
    """The first `n_cases` cases of an MSD folder, with a trimmed dataset.json."""
    meta = json.loads((source / "dataset.json").read_text())
    meta["training"] = meta["training"][:n_cases]
    for entry in meta["training"]:
        for key in ("image", "label"):
            target = dest / entry[key]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / entry[key], target)
    (dest / "dataset.json").write_text(json.dumps(meta))
    return dest
