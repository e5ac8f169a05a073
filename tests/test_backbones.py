"""Every backbone: shapes in 2D and 3D, MC dropout on its last layer, train -> save -> load, old configs."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_TRAIN, run_benchmark
from torch import nn
from typer.testing import CliRunner

import relunet.crossval as crossval_module
import relunet.training.train_workflow as run_module
from relunet.cli import app
from relunet.config import BACKBONES, ModelConfig, RunConfig, load_config
from relunet.crossval import crossval, select_methods
from relunet.data.samples import padded_shape
from relunet.errors import InputError
from relunet.inference.methods import predict_case
from relunet.inference.predictor import Predictor
from relunet.nets import build_model, size_multiple
from relunet.nets.backbone_catalogue import SPECS
from relunet.training.checkpoint import load_model, save_checkpoint
from relunet.types import Case

#: the smallest widths of each backbone, for speed
TINY = {
    "basicunet": (4, 4, 8, 8, 16, 4),
    "unet": (4, 8, 8),
    "segresnet": (8,),
    "dynunet": (4, 8, 8),
    "swinunetr": (12,),
}
CPU = torch.device("cpu")


def tiny(name: str, kind: str, dims: int = 2, channels: int = 1, classes: int = 1) -> ModelConfig:
    return ModelConfig(
        kind=kind,
        backbone=name,
        spatial_dims=dims,
        in_channels=channels,
        num_classes=classes,
        features=TINY[name],
    )


def test_every_named_backbone_has_a_builder():
    assert set(SPECS) == set(BACKBONES) == set(TINY)
    defaults = {name: size_multiple(ModelConfig(backbone=name)) for name in BACKBONES}
    assert defaults == {"basicunet": 16, "unet": 16, "segresnet": 8, "dynunet": 16, "swinunetr": 32}


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("name", BACKBONES)
def test_odd_sizes_padded_to_the_backbone_multiple(name, dims):
    relation = build_model(tiny(name, "relation", dims, channels=2, classes=2)).eval()
    unet = build_model(tiny(name, "unet", dims, channels=2, classes=2)).eval()
    multiple = relation.size_multiple
    assert multiple == unet.size_multiple == size_multiple(tiny(name, "relation"))
    odd = (35, 70) if dims == 2 else (7, 9, 37)
    with pytest.raises(ValueError, match=rf"not a multiple of {multiple}; pad it to"):
        unet(torch.randn(1, 2, *odd))
    # 2D as the pipeline pads; 3D only up to the multiple, to keep SwinUNETR's volume small
    size = padded_shape(odd, multiple) if dims == 2 else tuple(-(-s // multiple) * multiple for s in odd)
    x = torch.randn(1, 2, *size)
    with torch.no_grad():
        out = relation(x, x.flip(-1))
        assert [m.shape for m in out] == [(1, 2, *size)] * 4
        assert unet(x).shape == (1, 2, *size)


@pytest.mark.parametrize("name", BACKBONES)
def test_mc_dropout_draws_the_last_layer_only(name):
    config = RunConfig().with_overrides(model={"kind": "mcdropout", "backbone": name, "features": TINY[name]})
    net = build_model(config.model).eval()
    assert [m for m in net.modules() if isinstance(m, nn.Dropout) and m.p > 0] == [net.head[0]]
    x = torch.randn(2, 1, *padded_shape((35, 50), net.size_multiple))
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
        features = net.features(x)
        assert torch.allclose(net.head(features), net(x), atol=1e-6)
        net.head.train()
        assert not torch.equal(net.head(features), net.head(features))
    rng = np.random.default_rng(0)
    case = Case("a", rng.normal(size=(1, 20, 24, 3)).astype(np.float32), None, Path("a.nii.gz"), "nifti")
    prediction = predict_case(Predictor(net, config, CPU, mc_samples=3), case)
    assert prediction.maps["seg_a"].shape == (1, 20, 24, 3)
    assert not any(module.training for module in net.modules())


ROUND_TRIPS = [(name, "relation") for name in BACKBONES] + [("unet", "mcdropout"), ("segresnet", "mcdropout")]


@pytest.mark.parametrize("name, kind", ROUND_TRIPS)
def test_train_save_load_gives_the_same_outputs(msd, tmp_path, monkeypatch, name, kind):
    trained: list[nn.Module] = []
    fit = run_module.fit

    def recording_fit(network, *args, **kwargs):
        trained.append(network)
        return fit(network, *args, **kwargs)

    monkeypatch.setattr(run_module, "fit", recording_fit)
    # segresnet's tiny widths are its default: left out, they must be written into the config
    widths = {} if name == "segresnet" else {"features": TINY[name]}
    out = tmp_path / "run"
    run_module.train_fold(
        msd, out, device="cpu", model=ModelConfig(kind=kind, backbone=name, **widths), train=TINY_TRAIN
    )
    loaded, config = load_model(out / "fold_0" / "checkpoint.pt")
    assert load_config(out / "config.yaml") == config
    assert (config.model.backbone, config.model.features) == (name, TINY[name])
    x = torch.randn(2, 1, *padded_shape((12, 14), loaded.size_multiple))
    inputs = (x, x.flip(0)) if kind == "relation" else (x,)
    with torch.no_grad():
        expected, got = trained[0].eval()(*inputs), loaded(*inputs)
    for a, b in zip(expected, got, strict=True):
        assert torch.equal(a, b)


def test_old_checkpoint_without_backbone_loads_as_basicunet(tmp_path):
    old = RunConfig().to_dict()
    del old["model"]["backbone"]
    old["model"]["features"] = [4, 4, 8, 8, 16, 4]
    config = RunConfig.from_dict(old)
    assert config.model.backbone == "basicunet" and size_multiple(config.model) == 16
    model = build_model(config.model).eval()
    save_checkpoint(tmp_path / "old.pt", {"model": model.state_dict(), "config": old, "epoch": 1})
    loaded, _ = load_model(tmp_path / "old.pt")
    x = torch.randn(1, 1, 32, 48)
    with torch.no_grad():
        assert torch.equal(loaded(x, x).union, model(x, x).union)


def test_unknown_backbone_is_refused_before_anything_is_written(msd, tmp_path):
    with pytest.raises(InputError, match="--backbone nope: out of range"):
        run_module.train_fold(msd, tmp_path / "run", device="cpu", model=ModelConfig(backbone="nope"))
    with pytest.raises(InputError, match="--backbone nope: out of range"):
        crossval(msd, tmp_path / "cv", folds=2, backbone="nope", device="cpu")
    result = CliRunner().invoke(
        app, ["train", str(msd), "--out", str(tmp_path / "cli"), "--backbone", "nope"]
    )
    assert result.exit_code == 2 and "--backbone nope" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["msd"]


def test_benchmark_measures_a_backbone(msd, tmp_path):
    docs = tmp_path / "docs"
    where = ["--data", msd, "--out", docs, "--work", tmp_path / "work", "--device", "cpu"]
    result = run_benchmark(
        "backbones", *where, "--only", "segresnet", "--epochs", 1, "--samples-per-epoch", 8
    )
    assert result.returncode == 0, result.stderr
    measures = json.loads((docs / "backbones.json").read_text())
    assert measures["backbones"]["segresnet"]["parameters"] == 395_076
    assert "| segresnet | 8 | 395,076 | 8 |" in (docs / "backbones.md").read_text()
    assert "| hippocampus_backbone_segresnet |" in (docs / "single_fold.md").read_text()


@pytest.mark.parametrize(
    ("name", "widths", "why"),
    [
        ("basicunet", (8, 8), "its default widths are 16,16,32,64,128,16"),
        ("segresnet", (12,), "its default widths are 8"),
        ("basicunet", (4, 4, 8, 0, 16, 4), "whole numbers above 0"),
    ],
)
def test_widths_the_backbone_cannot_take_are_refused_before_anything_is_written(
    msd, tmp_path, name, widths, why
):
    given = ",".join(map(str, widths))
    with pytest.raises(InputError, match=f"--features {given}: .*{why}"):
        run_module.train_fold(
            msd, tmp_path / "run", device="cpu", model=ModelConfig(backbone=name, features=widths)
        )
    with pytest.raises(InputError, match=f"--features {given}: .*{why}"):
        crossval(msd, tmp_path / "cv", folds=2, backbone=name, features=widths, device="cpu")
    args = ["train", str(msd), "--out", str(tmp_path / "cli"), "--backbone", name, "--features", given]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and f"--features {given}" in result.stderr
    result = CliRunner().invoke(app, ["train", str(msd), "--out", str(tmp_path / "cli"), "--features", "8,x"])
    assert result.exit_code == 2 and "--features '8,x': give whole numbers" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["msd"]


def test_a_crossval_builds_every_method_with_the_given_widths(msd, tmp_path, monkeypatch):
    built: list[ModelConfig] = []
    real_train = run_module.train_fold

    def train_and_record(*args, model, **kwargs):
        built.append(model)
        return real_train(*args, model=model, **kwargs)

    monkeypatch.setattr(crossval_module, "train_fold", train_and_record)
    widths = TINY["basicunet"]
    methods = select_methods("relation_self_pair,unet", (10,), (20,))
    crossval(
        msd,
        tmp_path / "cv",
        folds=2,
        fold=0,
        methods=methods,
        features=widths,
        train=TINY_TRAIN,
        device="cpu",
    )
    assert sorted((m.kind, m.features) for m in built) == [("relation", widths), ("unet", widths)]
    assert "features:\n- 4\n- 4\n- 8" in (tmp_path / "cv" / "crossval.yaml").read_text()
    for kind in ("relation", "unet"):
        assert (
            load_config(tmp_path / "cv" / "models" / f"{kind}_seed0" / "config.yaml").model.features == widths
        )
