"""Does a batch of new cases resemble the calibration cases? Image statistics and a two-sample test.

The review flag's promise holds for new cases drawn like the calibration cases. A batch whose
scores or simple image statistics differ (another scanner, resolution, colour balance, noise)
is reported with the smallest p-value, so a reviewer knows the flag may not keep its promise.
"""

from __future__ import annotations

import numpy as np

from relunet.evaluation.calibration import shift_pvalue

#: a batch is reported as different when the Bonferroni-corrected smallest p-value is below this
SHIFT_LEVEL = 0.01
STATISTICS = ("log_voxels", "intensity_mean", "intensity_std", "noise", "channel_spread")


def image_statistics(image: np.ndarray) -> dict[str, float]:
    """Simple statistics of a raw `(C, *S)` image that move when the acquisition changes.

    Size (log of the voxel count), intensity mean and spread, noise (median absolute difference
    of neighbouring voxels along the last axis, relative to the spread), and the spread of the
    channel means relative to their mean (colour balance; 0 for one channel).
    """
    values = image.astype(np.float64)
    noise = _median_step(values)
    std = float(values.std())
    scale = std if std > 0 else 1.0
    channel_means = values.reshape(len(values), -1).mean(axis=1)
    mean = float(values.mean())
    return {
        "log_voxels": float(np.log(values[0].size)),
        "intensity_mean": mean,
        "intensity_std": std,
        "noise": noise / scale,
        "channel_spread": float(channel_means.std() / (abs(mean) if mean else 1.0)),
    }


def _median_step(values: np.ndarray) -> float:
    """Median absolute difference of neighbouring voxels along the last axis, in one working copy."""
    steps = np.diff(values, axis=-1)
    return float(np.median(np.abs(steps, out=steps), overwrite_input=True))


def batch_shift(reference: dict[str, np.ndarray], batch: dict[str, np.ndarray]) -> dict:
    """Compare a batch with the calibration cases, per quantity (score and `STATISTICS`).

    `reference` and `batch` map a quantity's name to its `(N,)` values. Returns the p-value of
    each quantity, the Bonferroni-corrected smallest one, whether to warn, and a one-line message.
    """
    names = [n for n in ("score", *STATISTICS) if n in reference and n in batch]
    pvalues = {n: shift_pvalue(np.asarray(reference[n]), np.asarray(batch[n])) for n in names}
    worst = min(pvalues, key=pvalues.get)
    corrected = min(1.0, pvalues[worst] * len(names))
    warn = corrected < SHIFT_LEVEL
    message = (
        f"this batch differs from the calibration cases ({worst}: p = {corrected:.2g}, corrected for "
        f"{len(names)} tests); the review flag may not keep its promise here"
        if warn
        else f"no difference from the calibration cases found (smallest corrected p = {corrected:.2g})"
    )
    return {"warn": warn, "message": message, "pvalue": corrected, "pvalues": pvalues}
