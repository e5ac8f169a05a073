"""Segment one case with the model a run trained: batching, padding, slicing, single-pass maps.

`Predictor` runs the network over a case's samples in batches and returns each head's map in the
case's geometry; the methods built on these maps (self-pair, anchors, U-Net, MC dropout,
ensemble, flip TTA) are in `relunet.inference.methods`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from relunet.config import RunConfig
from relunet.data.preprocess import Preprocessor
from relunet.data.samples import (
    crop_to,
    from_samples,
    pad_to,
    padded_shape,
    relative_depth,
    to_samples,
)
from relunet.device import autocast, inference_amp, prepare_model
from relunet.errors import InputError
from relunet.inference.sliding_window import paired_inputs, sliding_window_maps
from relunet.memory_estimate import inference_batch
from relunet.nets import size_multiple
from relunet.types import Case, RelationOutput

#: MC-dropout draws are kept for their mean pairwise Dice only up to this many mask voxels in all
PAIRWISE_BUDGET = 50_000_000

#: maps a batch of first inputs `(B, C, *s)` and its sample indices to probability maps per head
BatchFn = Callable[[torch.Tensor, np.ndarray], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Prediction:
    """Probability maps `(K, *S)` per head, in the case's own geometry, and the confidence.

    `other_scores` holds further confidence scores of the same prediction (e.g. "pairwise");
    `score_column` names the per-case column of the method's default score: "C" (`confidence`)
    or "C_<name>" (`other_scores[name]`); `segmentation` names the map the mask is cut from.
    """

    case_id: str
    maps: dict[str, np.ndarray]
    confidence: float
    other_scores: dict[str, float] = field(default_factory=dict)
    score_column: str = "C"
    segmentation: str = "seg_a"

    @property
    def score(self) -> float:
        """The method's default score, the `score` column of the per-case tables."""
        return self.confidence if self.score_column == "C" else self.other_scores[self.score_column[2:]]

    @property
    def mask(self) -> np.ndarray:
        """Binary `(K, *S)` segmentation the method delivers for the first input."""
        return self.maps[self.segmentation] > 0.5


def s1s2_map(maps: dict[str, np.ndarray]) -> np.ndarray:
    """The paper's (s1+s2)/2: the mean of the `seg_a` and `seg_b` probability maps, `(K, *S)`."""
    return (maps["seg_a"] + maps["seg_b"]) / 2


class Predictor:
    """Runs a trained model on whole cases, in batches of samples, under inference mode.

    `model` is the torch network, or a callable that looks like it (`onnx_engine.OnnxNetwork`).
    `amp` None follows the run's training precision on a GPU (`device.inference_amp`).
    """

    def __init__(
        self,
        model: nn.Module | Callable[..., RelationOutput | torch.Tensor],
        config: RunConfig,
        device: torch.device,
        batch_size: int = 64,
        mc_samples: int = 20,
        amp: bool | None = None,
    ) -> None:
        self.model = prepare_model(model, device).eval() if isinstance(model, nn.Module) else model
        self.amp = inference_amp(config.train.amp, device) if amp is None else amp
        self.config = config
        self.device = device
        self.batch_size = batch_size
        self.mc_samples = mc_samples
        self.prep = Preprocessor.of(config.data)
        self.size_multiple = size_multiple(config.model)
        self._last_samples: tuple[Case, np.ndarray] | None = None

    def check(self, case: Case) -> None:
        """Raise InputError if the case does not fit the model (channels, dimensions)."""
        self.check_shape(case.image_path, case.image.shape)

    def check_shape(self, path: Path, shape: tuple[int, ...]) -> None:
        """Raise InputError if an image of `(C, *S)` `shape` (from its header) does not fit the model."""
        expected = self.config.model.in_channels
        if shape[0] != expected:
            raise InputError(
                f"{path}: {shape[0]} channel(s), but the model was trained "
                f"on {expected}; give images with {expected} channel(s) or use a matching run"
            )
        if len(shape) - 1 < self.config.data.dims:
            raise InputError(
                f"{path}: a {len(shape) - 1}D image, but the model is "
                f"{self.config.data.dims}D; give volumes or use a 2D run"
            )

    def _flipped(self, axis: int | None) -> BatchFn:
        """Every head's map of the batch flipped along spatial `axis`, flipped back (None: no flip).

        A Relation U-Net gets the flipped batch as a self-pair and gives its four heads back.
        """
        base = self._self_pair if self.config.model.kind == "relation" else self._single

        def run(batch: torch.Tensor, depth: np.ndarray) -> dict[str, torch.Tensor]:
            if axis is None:
                return base(batch, depth)
            dim = 2 + axis
            return {head: prob.flip(dim) for head, prob in base(batch.flip(dim), depth).items()}

        return run

    def paired_maps(self, case: Case, anchors: list[Case]) -> Iterator[np.ndarray]:
        """`seg_a` of the case paired with each anchor; anchors of one padded size share a batch."""
        if self.windowed:
            for anchor in anchors:
                self.check(anchor)
                yield self._paired_windows(case, anchor)
            return
        own = self._samples(case)
        groups: dict[tuple[int, ...], list[np.ndarray]] = {}
        for anchor in anchors:
            self.check(anchor)
            partner = self._samples(anchor)
            shape = padded_shape(
                tuple(max(a, b) for a, b in zip(own.shape[2:], partner.shape[2:], strict=True)),
                self.size_multiple,
            )
            groups.setdefault(shape, []).append(partner)
        per_batch = max(1, self.batch_size // min(len(own), self.batch_size))
        for shape, partners in groups.items():
            for begin in range(0, len(partners), per_batch):
                maps = self._maps(case, self._paired_with(partners[begin : begin + per_batch], shape))
                yield from maps.values()

    def _samples(self, case: Case) -> np.ndarray:
        """`(N, C, *s)` network samples of a case.

        The last case's are kept: MC draws, anchor batches and flips ask for the same case again.
        """
        if self._last_samples is None or self._last_samples[0] is not case:
            cfg = self.config.data
            self._last_samples = None  # the last case's samples go before this one's are made
            self._last_samples = (case, to_samples(self.prep.image(case), cfg.dims, cfg.slice_axis))
        return self._last_samples[1]

    def _maps(self, case: Case, batch_fn: BatchFn) -> dict[str, np.ndarray]:
        """Run `batch_fn` over the case's samples; return each head's map in case geometry.

        A 3D model trained on patches runs by sliding windows (`relunet.inference.sliding_window`).
        """
        cfg = self.config.data
        samples = self._samples(case)
        if self.windowed:
            window = cfg.patch_size
            stacked = sliding_window_maps(samples, batch_fn, window, cfg.overlap, self.device, self.amp)
            return self._in_case_geometry(case, stacked)
        shape = padded_shape(samples.shape[2:], self.size_multiple)
        batch_size = inference_batch(self.config.model, shape, self.batch_size, case.image_path.name)
        inputs = torch.from_numpy(pad_to(samples, shape))  # a view of the samples where no pad is needed
        if self.device.type == "cuda":
            inputs = inputs.contiguous().pin_memory()
        outputs: dict[str, np.ndarray] = {}
        with torch.inference_mode(), autocast(self.device, self.amp):
            for begin in range(0, len(inputs), batch_size):
                index = np.arange(begin, min(begin + batch_size, len(inputs)))
                batch = inputs[begin : begin + batch_size].contiguous().to(self.device, non_blocking=True)
                for head, prob in batch_fn(batch, index / max(len(inputs) - 1, 1)).items():
                    if head not in outputs:  # filled batch by batch: no second copy of the maps
                        outputs[head] = np.empty((len(inputs), *prob.shape[1:]), np.float32)
                    outputs[head][begin : begin + len(index)] = prob.float().cpu().numpy()
        stacked = {head: crop_to(maps, samples.shape[2:]) for head, maps in outputs.items()}
        return self._in_case_geometry(case, stacked)

    @property
    def windowed(self) -> bool:
        """Whether cases are predicted by sliding windows: a 3D model with a patch size."""
        return self.config.data.dims == 3 and self.config.data.patch_size is not None

    def _in_case_geometry(self, case: Case, stacked: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each head's `(N, K, *s)` sample maps as one `(K, *S)` map in the case's geometry."""
        cfg = self.config.data
        spatial = len(case.spatial_shape)
        return {
            head: self.prep.restore(from_samples(maps, spatial, cfg.dims, cfg.slice_axis), case)
            for head, maps in stacked.items()
        }

    def _paired_windows(self, case: Case, anchor: Case) -> np.ndarray:
        """`seg_a` of the case paired with one anchor, by sliding windows over both at once."""
        cfg, channels = self.config.data, self.config.model.in_channels
        partner = to_samples(self.prep.image(anchor), cfg.dims, cfg.slice_axis)

        def run(batch: torch.Tensor, depth: np.ndarray) -> dict[str, torch.Tensor]:
            return {"seg_a": torch.sigmoid(self.model(batch[:, :channels], batch[:, channels:]).seg_a)}

        pair = paired_inputs(self._samples(case), partner)
        stacked = sliding_window_maps(pair, run, cfg.patch_size, cfg.overlap, self.device, self.amp)
        return self._in_case_geometry(case, stacked)["seg_a"]

    def _self_pair(self, batch: torch.Tensor, depth: np.ndarray) -> dict[str, torch.Tensor]:
        out: RelationOutput = self.model(batch, batch)
        return dict(zip(out._fields, out.map(torch.sigmoid), strict=True))

    def _single(self, batch: torch.Tensor, depth: np.ndarray) -> dict[str, torch.Tensor]:
        return {"seg_a": torch.sigmoid(self.model(batch))}

    def _paired_with(self, partners: list[np.ndarray], shape: tuple[int, ...]) -> BatchFn:
        """Pair each sample with each partner's sample at the same relative depth, in one batch.

        Every pair is padded to `shape`; returns `seg_a` per partner, keyed "anchor<i>".
        """

        def run(batch: torch.Tensor, depth: np.ndarray) -> dict[str, torch.Tensor]:
            chosen = [
                partner[np.abs(relative_depth(len(partner))[None, :] - depth[:, None]).argmin(axis=1)]
                for partner in partners
            ]
            x1 = _pad_tensor(batch, shape).repeat(len(partners), *[1] * (batch.ndim - 1))
            x2 = torch.from_numpy(np.concatenate([pad_to(c, shape) for c in chosen])).to(batch.device)
            seg = torch.sigmoid(self.model(x1, x2).seg_a)[(..., *(slice(0, s) for s in batch.shape[2:]))]
            return {f"anchor{i}": part for i, part in enumerate(seg.split(len(batch)))}

        return run


def _pad_tensor(batch: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    pad: list[int] = []
    for size, target in reversed(list(zip(batch.shape[2:], shape, strict=True))):
        pad += [0, target - size]
    return torch.nn.functional.pad(batch, pad)
