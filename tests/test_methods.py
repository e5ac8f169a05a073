"""The inference methods: their forward passes in 2D and 3D, and adding one in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from relunet.confidence import SampleAgreement
from relunet.config import RunConfig
from relunet.inference import methods
from relunet.inference.methods import predict_case
from relunet.inference.predictor import Prediction, Predictor
from relunet.types import Case, RelationOutput

SHAPE = (8, 8, 6)


class _Counting:
    """A fake network that counts the samples it sees; returns zeros of the right shape."""

    def __init__(self, kind: str) -> None:
        self.kind, self.samples = kind, 0

    def __call__(self, x1: torch.Tensor, x2: torch.Tensor | None = None):
        self.samples += len(x1)
        zeros = torch.zeros(len(x1), 1, *x1.shape[2:])
        return RelationOutput(zeros, zeros, zeros, zeros) if self.kind == "relation" else zeros


def _case(name: str = "a") -> Case:
    image = np.random.default_rng(0).random((1, *SHAPE)).astype(np.float32)
    return Case(name, image, None, Path(f"{name}.nii.gz"), "nifti")


def _predictor(kind: str, dims: int) -> tuple[Predictor, _Counting]:
    config = RunConfig().with_overrides(model={"kind": kind}, data={"dims": dims})
    net = _Counting(kind)
    return Predictor(net, config, torch.device("cpu"), batch_size=4), net


def _samples(dims: int) -> int:
    return SHAPE[-1] if dims == 2 else 1


@pytest.mark.parametrize("dims", [2, 3])
def test_each_method_declares_its_passes(dims):
    expected = {
        "self_pair": 1,
        "unet": 1,
        "mcdropout": 7,
        "anchors_train": 7,
        "anchors_test": 7,
        "ensemble": 1,
        "tta": 1 + dims,
        "relation_tta": 1 + dims,
    }
    assert set(methods.METHODS) >= set(expected)
    for how, passes in expected.items():
        assert methods.method(how, 7).passes(dims) == passes, how
    assert methods.method("ensemble", 5).seeds == (0, 1, 2, 3, 4)
    assert methods.method("tta").flips and methods.method("tta").model == "unet"
    assert methods.method("tta").passes(dims) == 1 + dims


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("how", ["self_pair", "unet", "tta", "relation_tta", "anchors_test"])
def test_declared_passes_are_the_passes_made(how, dims):
    wrapper = methods.method(how, 3)
    predictor, net = _predictor(wrapper.model, dims)
    cases = [_case("a"), _case("b")]
    wrapper.predict([predictor], cases[0], cases, np.random.default_rng(0))
    assert net.samples == wrapper.passes(dims) * _samples(dims)


def test_one_anchor_sampler_draws_as_the_seeded_generator_says():
    pool = [_case(n) for n in "abcd"]
    chosen = methods.choose_anchors(np.random.default_rng(5), pool, 6, exclude="b")
    expected = np.random.default_rng(5).integers(0, 3, size=6)
    assert [c.case_id for c in chosen] == [["a", "c", "d"][i] for i in expected]


def test_a_new_method_is_one_registration(monkeypatch):
    monkeypatch.setattr(methods, "METHODS", dict(methods.METHODS))

    @methods.register("twice")
    @dataclass(frozen=True)
    class Twice(methods.InferenceMethod):
        """The U-Net's map twice; agreement of the two."""

        model = "unet"
        name_pattern = "unet_twice"

        def passes(self, dims: int) -> int:
            return 2

        def predict(self, members, case, pool=None, rng=None) -> Prediction:
            draws = SampleAgreement()
            for _ in range(2):
                draws.add(predict_case(members[0], case).maps["seg_a"])
            return Prediction(case.case_id, {"seg_a": draws.mean}, draws.agreement)

    wrapper = methods.method("twice")
    assert wrapper.name == "unet_twice"
    assert wrapper.passes(3) == 2 and wrapper.model_folder(0) == "unet_seed0" and wrapper.seeds == (0,)
    predictor, net = _predictor("unet", 3)
    prediction = wrapper.predict([predictor], _case())
    assert net.samples == 2 and prediction.confidence == 1.0
    with pytest.raises(ValueError, match="twice"):
        methods.register("twice")(Twice)


def test_prediction_precision_follows_the_run_on_a_gpu_only():
    from relunet.device import inference_amp
    from relunet.nets import build_model

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert inference_amp(None, cuda) and inference_amp(True, cuda) and not inference_amp(False, cuda)
    assert not any(inference_amp(trained, cpu) for trained in (None, True, False))
    config = RunConfig().with_overrides(train={"amp": True})
    assert Predictor(build_model(config.model), config, cpu).amp is False
    assert Predictor(build_model(config.model), config, cpu, amp=True).amp is True


def test_the_paper_s1s2_column_is_the_dice_of_the_mean_map_not_the_mean_dice():
    """seg_a misses a pixel seg_b is sure of: the mean map has it (Dice 1; the mean of the Dices is not)."""
    from relunet.inference.workflows import case_row

    truth = np.zeros((1, 4, 4), dtype=np.uint8)
    truth[0, :, :2] = 1
    seg_a = np.where(truth, 0.9, 0.0)
    seg_a[0, 0, 0] = 0.2  # a miss that seg_b's confidence outweighs in the mean
    seg_b = np.where(truth, 0.9, 0.3)
    maps = {"seg_a": seg_a, "seg_b": seg_b, "union": seg_b, "inter": seg_a}
    case = Case("c", np.zeros((1, 4, 4), np.float32), truth[0], Path("c.png"), "image2d")
    row = case_row(case, Prediction("c", maps, 0.5), truth)
    assert row["dice_seg_a"] == pytest.approx(2 * 7 / 15)
    assert row["dice_s1s2"] == 1.0 and "dice_mean" not in row


class _Disagreeing:
    """A fake Relation U-Net whose `seg_a` is sure of foreground (p 0.88) and `seg_b` of background."""

    def __call__(self, x1: torch.Tensor, x2: torch.Tensor):
        ones = torch.ones(len(x1), 1, *x1.shape[2:])
        return RelationOutput(2 * ones, -3 * ones, ones, ones)


@pytest.mark.parametrize("segmentation", ["seg_a", "s1s2"])
def test_a_run_delivering_s1s2_masks_the_mean_of_the_heads_and_scores_that(segmentation):
    from relunet.inference.workflows import case_row

    config = RunConfig().with_overrides(model={"segmentation": segmentation})
    prediction = predict_case(Predictor(_Disagreeing(), config, torch.device("cpu")), _case())
    # the mean of p 0.88 and p 0.05 is under 0.5: the s1s2 mask is empty where seg_a's is full
    assert prediction.mask.all() == (segmentation == "seg_a")
    assert not prediction.mask.any() == (segmentation == "s1s2")
    truth = np.ones((1, *SHAPE), dtype=np.uint8)
    row = case_row(_case(), prediction, truth)
    assert row["dice"] == row[f"dice_{segmentation}"] and row["dice_seg_a"] == 1.0 and row["dice_s1s2"] == 0.0


def test_only_a_relation_model_delivers_s1s2(msd, tmp_path):
    from typer.testing import CliRunner

    from relunet.cli import app
    from relunet.config import check_ranges
    from relunet.errors import InputError

    check_ranges(RunConfig().with_overrides(model={"segmentation": "s1s2"}))
    for model in ({"kind": "unet", "segmentation": "s1s2"}, {"segmentation": "mean"}):
        with pytest.raises(InputError, match="--segmentation"):
            check_ranges(RunConfig().with_overrides(model=model))
    args = ["train", str(msd), "--out", str(tmp_path / "run"), "--model", "unet", "--segmentation", "s1s2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "--segmentation s1s2" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_config_written_before_the_choice_delivers_seg_a():
    config = RunConfig().to_dict()
    del config["model"]["segmentation"]
    assert RunConfig.from_dict(config).model.segmentation == "seg_a"


class _LeftHalf:
    """A fake Relation U-Net blind to its input: every head sure of the left half of the image."""

    def __call__(self, x1: torch.Tensor, x2: torch.Tensor):
        logit = torch.full((len(x1), 1, *x1.shape[2:]), -5.0)
        logit[..., : x1.shape[-1] // 2] = 5.0
        return RelationOutput(logit, logit, logit, logit)


def test_relation_flip_tta_flips_back_every_head_and_scores_the_flips_disagreement():
    """Back-flipped, the left-right flip's maps cover the right half: the flips disagree, each flip agrees."""
    wrapper = methods.method("relation_tta")
    assert wrapper.name == "relation_flip_tta" and wrapper.model_folder(0) == "relation_flips_seed0"
    config = RunConfig().with_overrides(data={"dims": 2, "image_size": 32})
    image = np.random.default_rng(0).random((1, 32, 32)).astype(np.float32)  # a multiple of 32: no padding
    case = Case("a", image, None, Path("a.png"), "image2d")
    prediction = wrapper.predict([Predictor(_LeftHalf(), config, torch.device("cpu"))], case)
    # identity and up-down flip: the left half; left-right flip, flipped back: the right half
    assert prediction.other_scores == pytest.approx(
        {"self": 1.0, "mean": 1.0, "pooled": 0.0, "meanmaps": 1.0, "pairwise": 1 / 3, "mean_pairwise": 1 / 3}
    )
    assert prediction.score == prediction.confidence == prediction.other_scores[wrapper.score_column[2:]]
    half = prediction.maps["seg_a"] > 0.5
    assert half.mean() == 0.5
    for head in ("seg_a", "seg_b", "union", "inter"):
        assert np.array_equal(prediction.maps[head] > 0.5, half), head
        assert prediction.maps[head][half].max() < 0.7  # two of three flips say foreground
    assert wrapper.score_id == f"relation_tta {wrapper.score_column}"
