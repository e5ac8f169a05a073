"""Is a batch unlike the calibration cases reported? The batch-shift warning of `predict`, measured.

Predicts the held-out cases of a trained run as they are and in shifted versions made here
(another resolution, colour balance, noise, contrast). Over random splits of those cases into a
calibration half and a pool, compares batches drawn from the pool with the calibration half as
`predict` does (`relunet.evaluation.batch_shift`): how often each version is warned about, its mean
Dice, and how often the review flag broke its promise on the cases outside the calibration half.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from relunet.data.layouts import index_dataset
from relunet.data.preprocess import label_targets
from relunet.data.training_set import load_cases
from relunet.evaluation.batch_shift import STATISTICS, batch_shift, image_statistics
from relunet.evaluation.calibration import flag_for_review, review_threshold
from relunet.evaluation.metrics import dice_per_class
from relunet.inference.methods import predict_case
from relunet.inference.workflows import open_predictor
from relunet.rundir import RunFolder
from relunet.types import Case

TARGET_DICE, RISK, DELTA = 0.8, 0.1, 0.1


def resized(case: Case, factor: float = 0.6) -> Case:
    """The case at another resolution: every spatial axis scaled by `factor` (mask: nearest)."""
    size = tuple(max(8, round(s * factor)) for s in case.spatial_shape)
    mode = "bilinear" if len(size) == 2 else "trilinear"
    image = F.interpolate(torch.from_numpy(case.image.astype(np.float32))[None], size=size, mode=mode)[0]
    label = F.interpolate(torch.from_numpy(case.label.astype(np.float32))[None, None], size=size)[0, 0]
    return replace(case, image=image.numpy(), label=label.numpy().round().astype(np.int64))


def colour_balanced(case: Case) -> Case:
    """Channels scaled by 1.25, 1.0 and 0.8 (a warmer white balance); only for colour images."""
    factors = np.array([1.25, 1.0, 0.8], dtype=np.float32).reshape(3, *[1] * len(case.spatial_shape))
    return replace(case, image=case.image.astype(np.float32) * factors)


def noisy(case: Case, level: float = 0.2) -> Case:
    """Gaussian noise with a standard deviation of `level` times the image's (seeded by the case)."""
    rng = np.random.default_rng(zlib.crc32(case.case_id.encode()))
    image = case.image.astype(np.float32)
    return replace(case, image=image + rng.normal(0, level * image.std(), image.shape).astype(np.float32))


def gamma_contrast(case: Case, gamma: float = 2.0) -> Case:
    """Nonlinear contrast change (per-case normalisation undoes a linear one): intensities ** gamma."""
    image = case.image.astype(np.float32)
    low, high = float(image.min()), float(image.max())
    scaled = (image - low) / (high - low if high > low else 1.0)
    return replace(case, image=low + (high - low) * scaled**gamma)


def variants(channels: int) -> dict:
    """The versions of every case to predict; colour balance only for 3-channel images."""
    chosen = {"unshifted": lambda c: c, "resolution x0.6": resized, "noise 0.2 sd": noisy}
    if channels == 3:
        chosen["colour balance"] = colour_balanced
    chosen["contrast gamma 2"] = gamma_contrast
    return chosen


def predict_versions(
    run: Path, data: Path, fold: int | None, device: str, log: Callable[[str], None]
) -> dict[str, dict[str, np.ndarray]]:
    """Per version: `(N,)` score, Dice of seg_a and each image statistic of the held-out cases.

    `log` gets one line per version, with its mean Dice, once it is predicted.
    """
    predictor, fold = open_predictor(run, fold, device)
    index = index_dataset(data)
    cases = load_cases(index.subset(RunFolder(run).fold_split(fold)["test"]))
    label_sets = predictor.config.data.label_sets
    results = {}
    for name, change in variants(cases[0].image.shape[0]).items():
        columns: dict[str, list[float]] = {"score": [], "dice": [], **{s: [] for s in STATISTICS}}
        for case in cases:
            shifted = change(case)
            prediction = predict_case(predictor, shifted)
            truth = label_targets(shifted.label, label_sets).astype(bool)
            columns["score"].append(prediction.confidence)
            columns["dice"].append(float(dice_per_class(prediction.mask, truth).mean()))
            for stat, value in image_statistics(shifted.image).items():
                columns[stat].append(value)
        results[name] = {k: np.array(v) for k, v in columns.items()}
        log(f"{name}: mean Dice {results[name]['dice'].mean():.3f}")
    return results


def measure(versions: dict[str, dict[str, np.ndarray]], batch: int, repeats: int, seed: int = 0) -> dict:
    """Warning rate, promise breaks and mean Dice per version over random calibration/batch splits."""
    n = len(versions["unshifted"]["score"])
    rng = np.random.default_rng(seed)
    warned = {name: 0 for name in versions}
    broken = {name: 0 for name in versions}
    size = min(batch, n - n // 2)
    for _ in range(repeats):
        order = rng.permutation(n)
        calibration, pool = order[: n // 2], order[n // 2 :]
        drawn = rng.choice(pool, size=size, replace=False)
        reference = {k: v[calibration] for k, v in versions["unshifted"].items() if k != "dice"}
        threshold = review_threshold(
            reference["score"], versions["unshifted"]["dice"][calibration], TARGET_DICE, RISK, DELTA
        )
        for name, values in versions.items():
            batch_values = {k: v[drawn] for k, v in values.items() if k != "dice"}
            warned[name] += batch_shift(reference, batch_values)["warn"]
            # the promise is about the accepted cases of the population, not of one small batch:
            # judge it on every case outside the calibration half, in this version
            accepted = ~flag_for_review(values["score"][pool], threshold)
            bad = values["dice"][pool][accepted] < TARGET_DICE
            broken[name] += bool(accepted.any() and bad.mean() > RISK)
    return {
        name: {
            "warned": warned[name] / repeats,
            "promise_broken": broken[name] / repeats,
            "mean_dice": float(versions[name]["dice"].mean()),
            "mean_score": float(versions[name]["score"].mean()),
        }
        for name in versions
    }


def render(folder: Path) -> str:
    """`docs/shift.md` from every `docs/shift/*.json`."""
    lines = [
        "# Does `predict` say when a batch is unlike the calibration cases?",
        "",
        "Generated by `benchmarks/shift_check.py` (commands below). The review flag's promise holds for",
        "new cases drawn like the calibration cases. `predict` compares each batch with them (the",
        "confidence score and simple image statistics: size, intensity mean and spread, noise, colour",
        "balance; two-sample Kolmogorov–Smirnov tests, Bonferroni-corrected, warning below p = 0.01).",
        "Here the held-out fold of a trained run is split at random into a calibration half and a pool;",
        "batches drawn from the pool are compared unshifted (a warning there is a false alarm) and in",
        "shifted versions made from the same cases. *Promise broken*: the share of splits in which more",
        f"than {RISK:.0%} of the cases the flag accepted, among all cases outside the calibration half",
        f"(in that version), have Dice below {TARGET_DICE} (flag fitted on the calibration half, "
        f"δ = {DELTA}; unshifted it must stay near or below δ).",
        "",
    ]
    for path in sorted(folder.glob("*.json")):
        result = json.loads(path.read_text())
        lines += [
            f"## {result['name']}",
            "",
            f"`{result['command']}`",
            "",
            f"{result['cases']} held-out cases, batches of {result['batch']}, "
            f"{result['repeats']} random splits.",
            "",
            "| version | warned | promise broken | mean Dice | mean score |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {name} | {v['warned']:.0%} | {v['promise_broken']:.0%} | {v['mean_dice']:.3f} | "
            f"{v['mean_score']:.3f} |"
            for name, v in result["versions"].items()
        ]
        lines.append("")
    return "\n".join(lines)
