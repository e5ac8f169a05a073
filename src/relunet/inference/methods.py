"""Every way to segment a case and score it, one small class each, in one registry.

A method wraps the single-pass maps of `Predictor` (which batches, pads and slices): it says how
many forward passes of one network it makes per input sample (`passes`), which trained models
it needs (`model`, `flips`, `seeds`), where its anchors come from (`anchor_source`), and how it
turns the passes into a `Prediction` (`predict`). `relunet.crossval` and `relunet predict
--anchors` call these objects.

- Relation U-Net, self-pair: `x1 = x2 = image`; four maps and C = Dice(union, inter), with the
  other one-pass scores of `confidence.relation_scores` beside it.
- Relation U-Net, anchors: `x1 = image`, `x2` = each of n anchor images; `seg_a` averaged,
  confidence = agreement of the n binarised `seg_a` maps.
- U-Net: one map; confidence = mean foreground probability (and `band`, `confidence.band_agreement`).
- MC dropout: n draws with dropout on; mean map; confidence = agreement of the n draws.
  Dropout sits right before the last layer, so the features are computed once per case and
  only the last layer is drawn n times: the same draws as n whole passes, at a fraction of
  the cost.
- Ensemble: the mean of the members' `seg_a` maps; confidence = mean pairwise Dice.
- Flip TTA: the image and its flip along each spatial axis; mean `seg_a` map, confidence =
  mean pairwise Dice.
- Relation U-Net, flip TTA: the self-pair of the image and of each flip; mean maps of the four
  heads, the candidate scores of `confidence.flip_scores`.

To add a method: a subclass of `InferenceMethod` here, decorated with `@register("<how>")`, and
its test; `crossval.all_methods` lists the ones the cross-validation runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from relunet.confidence import (
    RELATION_HEADS,
    SampleAgreement,
    band_agreement,
    flip_scores,
    mean_foreground_probability,
    relation_confidence,
    relation_scores,
)
from relunet.config import RunConfig
from relunet.errors import InputError
from relunet.evaluation.metrics import dice_per_class
from relunet.inference.predictor import PAIRWISE_BUDGET, Prediction, Predictor, s1s2_map
from relunet.types import Case

#: ensemble members (and so models trained) of the ensemble method
ENSEMBLE_SIZE = 5

#: `how` -> method class; see `register`
METHODS: dict[str, type[InferenceMethod]] = {}


def register(how: str) -> Callable[[type[InferenceMethod]], type[InferenceMethod]]:
    """Class decorator: make a method available under the name `how`."""

    def add(cls: type[InferenceMethod]) -> type[InferenceMethod]:
        if how in METHODS:
            raise ValueError(f"method {how!r} is registered twice")
        METHODS[how] = cls
        cls.how = how
        return cls

    return add


def method(how: str, n: int = 1) -> InferenceMethod:
    """The registered method `how` with `n` anchors, draws or members (where it has a count)."""
    if how not in METHODS:
        raise InputError(f"method {how}: unknown; choose from {', '.join(METHODS)}")
    return METHODS[how](n)


def predict_case(predictor: Predictor, case: Case, anchors: list[Case] | None = None) -> Prediction:
    """Segment `case` with the model's own method (self-pair, U-Net, MC dropout), or over `anchors`."""
    if anchors:
        return anchored(predictor, case, anchors)
    return own_method(predictor.config.model.kind, predictor.mc_samples).predict([predictor], case)


def own_method(kind: str, n: int = 1) -> InferenceMethod:
    """The method a model of `kind` is run with by default (`Predictor.predict` without anchors)."""
    for cls in METHODS.values():
        if cls.own_way_of == kind:
            return cls(n)
    raise InputError(f"model kind {kind}: no method runs it")


@dataclass(frozen=True)
class InferenceMethod:
    """One way to segment a case and score it.

    Attributes:
        n: anchors, MC-dropout draws or ensemble members (1 where the method has no count).
        how: its name in `METHODS` (set by `register`); a calibration records it.
        name_pattern: its folder and table name, `{n}` standing for its count (`name`).
        model: the kind of trained model it uses ("relation", "unet", "mcdropout").
        flips: its model trains on randomly flipped inputs.
        anchor_source: "train" or "test" where it pairs the case with anchors, else None.
        own_way_of: the model kind it is the default method of, if any.
        score_column: the per-case column of its default score (the `score` column).
    """

    n: int = 1
    how: ClassVar[str] = ""
    name_pattern: ClassVar[str] = ""
    score_column: ClassVar[str] = "C"
    model: ClassVar[str] = "relation"
    flips: ClassVar[bool] = False
    anchor_source: ClassVar[str | None] = None
    own_way_of: ClassVar[str | None] = None

    def passes(self, dims: int) -> int:
        """Forward passes of one network per input sample, for a `dims`-D model."""
        return 1

    @property
    def name(self) -> str:
        """Its folder and table name, e.g. `mcdropout_n20` or `relation_self_pair`."""
        return self.name_pattern.format(n=self.n)

    def model_folder(self, seed: int) -> str:
        """Folder, under a cross-validation's `models/`, of its model trained with `seed`."""
        return f"{self.model}{'_flips' if self.flips else ''}_seed{seed}"

    @property
    def score_id(self) -> str:
        """What its `score` is, e.g. "self_pair C": a calibration holds only for the same."""
        return f"{self.how} {self.score_column}"

    @property
    def seeds(self) -> tuple[int, ...]:
        """Training seeds of the models it needs (one model per seed)."""
        return (0,)

    def predict(
        self,
        members: list[Predictor],
        case: Case,
        pool: list[Case] | None = None,
        rng: np.random.Generator | None = None,
    ) -> Prediction:
        """Segment `case` with the predictors of its models (one per seed).

        `pool` holds the anchor candidates and `rng` draws from it (anchor methods only).
        """
        raise NotImplementedError


@register("self_pair")
@dataclass(frozen=True)
class SelfPair(InferenceMethod):
    """Relation U-Net, `x1 = x2 = image`: four maps; C = Dice(union, inter).

    A run whose `model.segmentation` is "s1s2" also gets the map "s1s2", the mean of `seg_a` and
    `seg_b`, and delivers it as the mask.
    """

    name_pattern: ClassVar[str] = "relation_self_pair"
    own_way_of: ClassVar[str | None] = "relation"

    def predict(self, members, case, pool=None, rng=None) -> Prediction:  # noqa: D102
        predictor = members[0]
        predictor.check(case)
        maps = predictor._maps(case, predictor._self_pair)
        per_class = dice_per_class(maps["union"] > 0.5, maps["inter"] > 0.5)
        scores = {f"class{k + 1}": float(c) for k, c in enumerate(per_class)} if len(per_class) > 1 else {}
        scores.update(relation_scores(maps))
        confidence = relation_confidence(maps["union"], maps["inter"])
        segmentation = predictor.config.model.segmentation
        if segmentation == "s1s2":
            maps["s1s2"] = s1s2_map(maps)
        return Prediction(case.case_id, maps, confidence, scores, self.score_column, segmentation)


@register("unet")
@dataclass(frozen=True)
class UNet(InferenceMethod):
    """U-Net, one pass: confidence = mean foreground probability."""

    name_pattern: ClassVar[str] = "unet"
    model: ClassVar[str] = "unet"
    own_way_of: ClassVar[str | None] = "unet"

    def predict(self, members, case, pool=None, rng=None) -> Prediction:  # noqa: D102
        predictor = members[0]
        predictor.check(case)
        maps = predictor._maps(case, predictor._single)
        scores = {"band": band_agreement(maps["seg_a"])}
        confidence = mean_foreground_probability(maps["seg_a"])
        return Prediction(case.case_id, maps, confidence, scores, self.score_column)


@register("mcdropout")
@dataclass(frozen=True)
class MCDropout(InferenceMethod):
    """n draws of the last layer with dropout on; confidence = agreement of the draws."""

    name_pattern: ClassVar[str] = "mcdropout_n{n}"
    n: int = 20
    model: ClassVar[str] = "mcdropout"
    own_way_of: ClassVar[str | None] = "mcdropout"

    def passes(self, dims: int) -> int:  # noqa: D102
        return self.n

    def predict(self, members, case, pool=None, rng=None) -> Prediction:  # noqa: D102
        predictor = members[0]
        predictor.check(case)
        voxels = self.n * int(np.prod(case.spatial_shape)) * predictor.config.model.num_classes
        draws = SampleAgreement(pairwise=voxels <= PAIRWISE_BUDGET)
        head_draws = HeadDraws(predictor.model)
        for _ in range(self.n):
            draws.add(predictor._maps(case, head_draws)["seg_a"])
            head_draws.rewind()
        scores = {"pairwise": draws.pairwise} if draws.masks and draws.count > 1 else {}
        return Prediction(case.case_id, {"seg_a": draws.mean}, draws.agreement, scores)


@dataclass(frozen=True)
class _Anchors(InferenceMethod):
    """Relation U-Net over n anchors drawn from a pool (`choose_anchors`); agreement of `seg_a`."""

    n: int = 10

    def passes(self, dims: int) -> int:  # noqa: D102
        return self.n

    def predict(self, members, case, pool=None, rng=None) -> Prediction:  # noqa: D102
        if rng is None:
            raise ValueError("anchor methods need a random generator")
        return anchored(members[0], case, choose_anchors(rng, pool or [], self.n, exclude=case.case_id))


@register("anchors_train")
@dataclass(frozen=True)
class AnchorsTrain(_Anchors):
    """Anchors from the training cases of the fold."""

    name_pattern: ClassVar[str] = "relation_anchors_train_n{n}"
    anchor_source: ClassVar[str | None] = "train"


@register("anchors_test")
@dataclass(frozen=True)
class AnchorsTest(_Anchors):
    """Anchors from the other test cases."""

    name_pattern: ClassVar[str] = "relation_anchors_test_n{n}"
    anchor_source: ClassVar[str | None] = "test"


@register("ensemble")
@dataclass(frozen=True)
class Ensemble(InferenceMethod):
    """n U-Nets trained with seeds 0..n-1: the mean `seg_a` map; confidence = mean pairwise Dice."""

    name_pattern: ClassVar[str] = "ensemble_{n}"
    n: int = ENSEMBLE_SIZE
    model: ClassVar[str] = "unet"

    @property
    def seeds(self) -> tuple[int, ...]:  # noqa: D102
        return tuple(range(self.n))

    def predict(self, members, case, pool=None, rng=None) -> Prediction:  # noqa: D102
        draws = SampleAgreement(pairwise=True)
        for member in members:
            draws.add(predict_case(member, case).maps["seg_a"])
        return Prediction(case.case_id, {"seg_a": draws.mean}, draws.pairwise)


@dataclass(frozen=True)
class _Flips(InferenceMethod):
    """A method run on the image and on its flip along each spatial axis (a model trained with flips)."""

    flips: ClassVar[bool] = True

    def passes(self, dims: int) -> int:
        """The identity plus one flip per spatial axis."""
        return 1 + dims

    @staticmethod
    def views(predictor: Predictor, case: Case) -> list[dict[str, np.ndarray]]:
        """The single-pass maps of `case` and of each of its flips, flipped back: `passes` dicts."""
        predictor.check(case)
        return [
            predictor._maps(case, predictor._flipped(axis))
            for axis in (None, *range(predictor.config.data.dims))
        ]


@register("tta")
@dataclass(frozen=True)
class FlipTTA(_Flips):
    """The image and its flip along each spatial axis: mean `seg_a`; confidence = mean pairwise Dice."""

    name_pattern: ClassVar[str] = "unet_flip_tta"
    model: ClassVar[str] = "unet"

    def predict(self, members, case, pool=None, rng=None) -> Prediction:  # noqa: D102
        draws = SampleAgreement(pairwise=True)
        for view in self.views(members[0], case):
            draws.add(view["seg_a"])
        return Prediction(case.case_id, {"seg_a": draws.mean}, draws.pairwise)


@register("relation_tta")
@dataclass(frozen=True)
class RelationFlipTTA(_Flips):
    """Relation U-Net, the self-pair of the image and of its flip along each spatial axis.

    Every head's map is the mean of its back-flipped maps; the mask is cut from `seg_a` (or the
    mean of `seg_a` and `seg_b` where the run delivers "s1s2"), as for the self-pair. Every
    candidate score of `confidence.flip_scores` is a per-case column `C_<name>`; the default
    (`score_column`, also the `C` column) is the one `benchmarks/flip_tta_scores.py` chooses on
    fold 0 of the ISIC cross-validation only. Until that fold has run it is `C_pooled`, set
    before any fold had run: it sees both the heads' disagreement within a flip and the flips'
    disagreement.
    """

    name_pattern: ClassVar[str] = "relation_flip_tta"
    score_column: ClassVar[str] = "C_pooled"

    def predict(self, members, case, pool=None, rng=None) -> Prediction:  # noqa: D102
        predictor = members[0]
        views = self.views(predictor, case)
        scores = flip_scores(views)
        maps = {head: np.mean([v[head] for v in views], axis=0, dtype=np.float32) for head in RELATION_HEADS}
        segmentation = predictor.config.model.segmentation
        if segmentation == "s1s2":
            maps["s1s2"] = s1s2_map(maps)
        confidence = scores[self.score_column.removeprefix("C_")]
        return Prediction(case.case_id, maps, confidence, scores, self.score_column, segmentation)


#: the test-time augmentations `relunet predict|calibrate|evaluate --tta` offers
TTA_CHOICES = ("flip",)


def method_for_run(config: RunConfig, tta: str | None = None, mc_samples: int = 20) -> InferenceMethod:
    """The method a trained run is run with: its own (`own_method`), or with `tta` "flip" its flip TTA.

    Flip TTA needs a Relation U-Net or a U-Net trained on flipped images (`train.flips`).
    """
    kind = config.model.kind
    if tta is None:
        return own_method(kind, mc_samples)
    if tta not in TTA_CHOICES:
        raise InputError(f"--tta {tta}: unknown; choose from {', '.join(TTA_CHOICES)}")
    if not config.train.flips:
        raise InputError("--tta flip: this run was not trained on flipped images; train it with --flips")
    for cls in METHODS.values():
        if cls.flips and cls.model == kind and cls().seeds == (0,):
            return cls()
    raise InputError(f"--tta flip: runs a Relation U-Net or a U-Net; this run trained a {kind} model")


def choose_anchors(rng: np.random.Generator, pool: list[Case], n: int, exclude: str) -> list[Case]:
    """The one anchor sampler: `n` cases of `pool` but `exclude`, drawn with replacement from `rng`.

    The caller seeds `rng`: `relunet predict` per case from (seed, case name), the
    cross-validation per case from (seed, fold, case number), which also seeds the dropout draws.
    """
    candidates = [c for c in pool if c.case_id != exclude]
    if not candidates:
        raise InputError("anchors from the test set need at least two images; use --anchor-source train")
    return [candidates[i] for i in rng.integers(0, len(candidates), size=n)]


def anchored(predictor: Predictor, case: Case, anchors: list[Case]) -> Prediction:
    """Pair the case with every anchor; mean `seg_a`, confidence = agreement of the anchors' maps."""
    predictor.check(case)
    if predictor.config.model.kind != "relation":
        raise InputError("anchors need a Relation U-Net run; this run trained a U-Net")
    draws = SampleAgreement()
    for seg in predictor.paired_maps(case, anchors):
        draws.add(seg)
    return Prediction(case.case_id, {"seg_a": draws.mean}, draws.agreement)


class HeadDraws:
    """A `BatchFn` drawing the last layer of an MC-dropout U-Net with dropout on.

    The features of each batch are computed (dropout off) on the first pass over the case and
    kept; `rewind()` before each further pass. Only the head switches to training mode and back:
    switching the whole model costs more than the head's pass.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.features: list[torch.Tensor] = []
        self.position = 0

    def rewind(self) -> None:
        """Start the next pass over the case's batches."""
        self.position = 0

    def __call__(self, batch: torch.Tensor, depth: np.ndarray) -> dict[str, torch.Tensor]:
        """One draw of the head over the next batch of the case."""
        if self.position == len(self.features):
            self.model.eval()
            self.features.append(self.model.features(batch))
        features = self.features[self.position]
        self.position += 1
        self.model.head.train()
        try:
            return {"seg_a": torch.sigmoid(self.model.head(features))}
        finally:
            self.model.head.eval()
