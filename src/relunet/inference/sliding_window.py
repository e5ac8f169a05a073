"""Predict a whole volume by sliding windows with Gaussian blending (MONAI's `sliding_window_inference`).

A 3D model trained on patches (`DataConfig.patch_size`) sees one window of that size at a time;
neighbouring windows overlap by `DataConfig.overlap` and are blended with a Gaussian weight, so the
stitched maps have no seams, and memory is that of one window's pass plus the maps of the whole
volume. Confidence scores are computed over the stitched volume, as over a whole-volume pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from relunet.data.samples import crop_to, pad_to
from relunet.device import autocast

#: windows per network pass
WINDOWS_PER_PASS = 1


def sliding_window_maps(
    sample: np.ndarray,
    batch_fn: Callable[[torch.Tensor, np.ndarray], dict[str, torch.Tensor]],
    window: tuple[int, ...],
    overlap: float,
    device: torch.device,
    amp: bool = False,
) -> dict[str, np.ndarray]:
    """Each head's probability map `(1, K, *S)` of one sample `(1, C, *S)` by sliding windows.

    `batch_fn` maps a batch of windows `(B, C, *window)` and their relative depths to probability
    maps per head, as for whole samples (`relunet.inference.predictor.BatchFn`). A sample smaller
    than the window is zero-padded at its far end, as a whole-sample pass pads it.
    """
    shape = tuple(sample.shape[2:])
    padded = tuple(max(s, w) for s, w in zip(shape, window, strict=True))
    inputs = torch.from_numpy(pad_to(sample, padded))
    heads: dict[str, int] = {}

    def run(windows: torch.Tensor) -> torch.Tensor:
        """The heads' maps stacked on the channel axis: MONAI keeps one weight map per output."""
        maps = batch_fn(windows, np.full(len(windows), 0.5))
        heads.update({head: prob.shape[1] for head, prob in maps.items()})
        return torch.cat([prob.float() for prob in maps.values()], dim=1)

    with torch.inference_mode(), autocast(device, amp):
        stitched = sliding_window_inference(
            inputs,
            roi_size=window,
            sw_batch_size=WINDOWS_PER_PASS,
            predictor=run,
            overlap=overlap,
            mode="gaussian",
            sw_device=device,
            device=torch.device("cpu"),
        )
    parts = torch.as_tensor(stitched).split(list(heads.values()), dim=1)
    return {head: crop_to(part.numpy(), shape) for head, part in zip(heads, parts, strict=True)}


def paired_inputs(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A pair `(1, 2C, *S)` of two samples `(1, C, *s)`: the second cut or zero-padded to the first's size.

    Sliding windows then cut the same window from both inputs.
    """
    shape = first.shape[2:]
    fitted = pad_to(crop_to(second, shape), shape)
    return np.concatenate([first, fitted], axis=1)
