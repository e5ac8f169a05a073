"""Synthetic 2D images with masks whose difficulty varies, written as an images/ + masks/ folder.

Each image holds one lesion-like blob on a textured background. A difficulty d in [0, 1]
lowers the contrast, raises the noise and blur, roughens the boundary and adds look-alike
distractor blobs, so that segmentation quality, and with it a good confidence score,
varies from case to case.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from relunet.atomic import atomic_path, write_csv


def synthetic_image(rng: np.random.Generator, size: int, difficulty: float) -> tuple[np.ndarray, np.ndarray]:
    """One `(size, size)` uint8 image and its {0, 1} mask at the given difficulty."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    background = ndimage.gaussian_filter(rng.normal(size=(size, size)), size / 8)
    image = 0.4 + 0.15 * background / (np.abs(background).max() + 1e-8)
    mask = _blob(rng, yy, xx, size, roughness=0.05 + 0.35 * difficulty)
    contrast = 0.45 * (1.0 - 0.85 * difficulty)
    image = image + contrast * mask
    for _ in range(rng.poisson(3 * difficulty)):
        distractor = _blob(rng, yy, xx, size, roughness=0.3) & ~mask
        image = image + contrast * rng.uniform(0.6, 1.0) * distractor
    image = ndimage.gaussian_filter(image, 0.5 + 2.0 * difficulty)
    image = image + rng.normal(scale=0.03 + 0.15 * difficulty, size=image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), mask.astype(np.uint8)


def write_synthetic_dataset(
    out: Path, n_cases: int = 200, size: int = 64, seed: int = 0, easy_bias: float = 1.0
) -> Path:
    """Write `n_cases` images to `out/images`, masks to `out/masks`, difficulties to a CSV.

    Difficulty is `u ** easy_bias` for u uniform in [0, 1]: 1 spreads it evenly, larger values
    make most cases easy and a few hard, as in clinical data.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_cases):
        difficulty = float(rng.uniform()) ** easy_bias
        image, mask = synthetic_image(rng, size, difficulty)
        name = f"case_{i:04d}"
        _write_png(out / "images" / f"{name}.png", image)
        _write_png(out / "masks" / f"{name}.png", mask * 255)
        rows.append({"case_id": name, "difficulty": difficulty})
    write_csv(out / "difficulty.csv", rows)
    return out


def _blob(
    rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int, roughness: float
) -> np.ndarray:
    """A star-shaped blob: an ellipse whose radius wobbles with random low harmonics."""
    cy, cx = rng.uniform(0.3, 0.7, size=2) * size
    radius = rng.uniform(0.1, 0.22) * size
    aspect = rng.uniform(0.7, 1.3)
    angle = np.arctan2(yy - cy, xx - cx)
    wobble = sum(
        rng.uniform(-roughness, roughness) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
        for k in range(2, 6)
    )
    distance = np.hypot((yy - cy) * aspect, (xx - cx) / aspect)
    return distance < radius * (1.0 + wobble)


def _write_png(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
