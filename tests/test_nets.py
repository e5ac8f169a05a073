from pathlib import Path

import numpy as np
import pytest
import torch

from relunet.config import ModelConfig, RunConfig
from relunet.inference.methods import predict_case
from relunet.inference.predictor import Predictor
from relunet.nets import RelationUNet, SegmentationUNet, build_model
from relunet.types import Case, RelationOutput

FEATURES = (4, 4, 8, 8, 16, 4)


@pytest.mark.parametrize("dims, size", [(2, (32, 48)), (3, (16, 32, 16))])
@pytest.mark.parametrize("channels, classes", [(1, 1), (3, 1), (4, 3)])
def test_relation_unet_gives_four_named_maps(dims, size, channels, classes):
    net = RelationUNet(dims, channels, classes, FEATURES)
    x1, x2 = torch.randn(2, channels, *size), torch.randn(2, channels, *size)
    out = net(x1, x2)
    assert isinstance(out, RelationOutput)
    for field in ("seg_a", "seg_b", "union", "inter"):
        assert getattr(out, field).shape == (2, classes, *size)


@pytest.mark.parametrize("dims, size", [(2, (16, 32)), (3, (16, 16, 32))])
def test_baselines_have_one_head(dims, size):
    for kind in ("unet", "mcdropout"):
        net = build_model(
            ModelConfig(kind=kind, spatial_dims=dims, in_channels=2, num_classes=2, features=FEATURES)
        )
        assert isinstance(net, SegmentationUNet)
        assert net(torch.randn(1, 2, *size)).shape == (1, 2, *size)


def test_mcdropout_samples_differ_only_with_dropout_active():
    net = build_model(ModelConfig(kind="mcdropout", features=FEATURES, head_dropout=0.5))
    x = torch.randn(1, 1, 32, 32)
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))


def test_head_of_features_is_the_whole_forward():
    net = build_model(ModelConfig(kind="mcdropout", features=FEATURES, head_dropout=0.5)).eval()
    x = torch.randn(2, 1, 32, 48)
    features = net.features(x)
    assert features.shape == (2, FEATURES[-1], 32, 48)
    assert torch.allclose(net.head(features), net(x))


def test_plain_unet_has_no_dropout():
    net = build_model(ModelConfig(kind="unet", features=FEATURES))
    assert not any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in net.modules())
    mc = build_model(ModelConfig(kind="mcdropout", features=FEATURES, head_dropout=0.3))
    assert [m.p for m in mc.modules() if isinstance(m, torch.nn.Dropout) and m.p > 0] == [0.3]


def test_size_error_says_what_to_pad_to():
    net = RelationUNet(2, 1, 1, FEATURES)
    with pytest.raises(ValueError, match=r"pad it to \(48, 64\)"):
        net(torch.randn(1, 1, 35, 50), torch.randn(1, 1, 35, 50))


def test_wrong_channel_count_is_named():
    net = RelationUNet(2, 3, 1, FEATURES)
    with pytest.raises(ValueError, match="expected 3 input channels, got 1"):
        net(torch.randn(1, 1, 16, 16), torch.randn(1, 1, 16, 16))


def test_mc_predictor_gives_each_case_its_own_draws_and_leaves_the_model_in_eval():
    config = RunConfig().with_overrides(model={"kind": "mcdropout", "features": FEATURES}, data={"dims": 2})
    predictor = Predictor(build_model(config.model), config, torch.device("cpu"), mc_samples=4)
    rng = np.random.default_rng(0)
    cases = [
        Case(name, rng.normal(size=(1, 20, 24, 6)).astype(np.float32), None, Path(f"{name}.nii.gz"), "nifti")
        for name in ("a", "b")
    ]
    torch.manual_seed(0)
    first = predict_case(predictor, cases[0]).maps["seg_a"]
    state = torch.get_rng_state()
    second = predict_case(predictor, cases[1]).maps["seg_a"]
    assert not any(module.training for module in predictor.model.modules())
    torch.set_rng_state(state)
    alone = predict_case(Predictor(predictor.model, config, torch.device("cpu"), mc_samples=4), cases[1])
    np.testing.assert_array_equal(alone.maps["seg_a"], second)
    assert not np.array_equal(first, second)
