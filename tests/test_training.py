import numpy as np
import pytest
import torch

from relunet.config import DataConfig, ModelConfig, RunConfig, TrainConfig, load_config
from relunet.errors import InputError
from relunet.inference.methods import FlipTTA, predict_case
from relunet.inference.workflows import open_predictor
from relunet.training.checkpoint import load_checkpoint, load_model
from relunet.training.train_workflow import train_fold

SMALL = {"features": (4, 4, 8, 8, 16, 4)}


def _train(data, out, epochs, resume=False, kind="relation", dims=2):
    return train_fold(
        data,
        out,
        fold=0,
        resume=resume,
        device="cpu",
        model=ModelConfig(kind=kind, **SMALL),
        data_cfg=DataConfig(folds=3, dims=dims),
        train=TrainConfig(epochs=epochs, samples_per_epoch=8, batch_size=4),
    )


def test_random_flips_move_image_and_target_together():
    from relunet.training.augment import random_flips

    torch.manual_seed(0)
    images = torch.randn(64, 2, 8, 6)
    targets = (images[:, :1] > 0).float()
    flipped, flipped_targets = random_flips(images, targets)
    assert torch.equal(flipped_targets, (flipped[:, :1] > 0).float())
    unchanged = (flipped == images).flatten(1).all(1)
    assert 0 < unchanged.sum() < 64  # about a quarter keep both axes
    for image, out in zip(images, flipped, strict=True):  # each is the input flipped along some axes
        assert any(torch.equal(out, image.flip(axes) if axes else image) for axes in [(), (1,), (2,), (1, 2)])


def test_config_round_trips_through_yaml(tmp_path):
    from relunet.config import save_config

    config = RunConfig().with_overrides(
        data={"label_sets": ((1, 2, 4), (1, 4), (4,))}, model={"features": (8, 8, 16, 16, 32, 8)}
    )
    save_config(config, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == config


@pytest.mark.parametrize("kind, dims", [("relation", 2), ("unet", 2), ("mcdropout", 2), ("relation", 3)])
def test_checkpoint_round_trip_gives_identical_outputs(msd, tmp_path, kind, dims):
    _train(msd, tmp_path / "run", epochs=1, kind=kind, dims=dims)
    state = load_checkpoint(tmp_path / "run" / "fold_0" / "checkpoint.pt")
    assert state["epoch"] == 1 and state["config"]["model"]["kind"] == kind
    model_a, config = load_model(tmp_path / "run" / "fold_0" / "checkpoint.pt")
    model_b, _ = load_model(tmp_path / "run" / "fold_0" / "checkpoint.pt")
    shape = (2, 1, 32, 32) if dims == 2 else (1, 1, 32, 32, 32)
    x = torch.randn(*shape)
    with torch.no_grad():
        out_a = model_a(x, x) if kind == "relation" else [model_a(x)]
        out_b = model_b(x, x) if kind == "relation" else [model_b(x)]
    for a, b in zip(out_a, out_b, strict=True):
        assert torch.equal(a, b)
    assert config.model.in_channels == 1 and config.data.label_sets == ((1, 2),)


def test_resume_after_a_kill_matches_an_uninterrupted_run(msd, tmp_path, monkeypatch):
    _train(msd, tmp_path / "straight", epochs=2)

    import relunet.training.loop as loop

    real_write = loop.write_csv

    def write_then_die(path, rows):
        real_write(path, rows)
        raise KeyboardInterrupt  # the process is killed right after epoch 1 is saved

    monkeypatch.setattr(loop, "write_csv", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        _train(msd, tmp_path / "killed", epochs=2)
    monkeypatch.setattr(loop, "write_csv", real_write)
    assert load_checkpoint(tmp_path / "killed" / "fold_0" / "checkpoint.pt")["epoch"] == 1

    history = _train(msd, tmp_path / "killed", epochs=2, resume=True)
    assert [row["epoch"] for row in history] == [1, 2]
    straight = load_checkpoint(tmp_path / "straight" / "fold_0" / "checkpoint.pt")["model"]
    resumed = load_checkpoint(tmp_path / "killed" / "fold_0" / "checkpoint.pt")["model"]
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


def test_trained_fold_is_not_overwritten_without_resume(msd, tmp_path):
    _train(msd, tmp_path / "run", epochs=1)
    with pytest.raises(InputError, match="already trained"):
        _train(msd, tmp_path / "run", epochs=1)
    with pytest.raises(InputError, match=r"other settings \(model\.kind, train\.augment\)"):
        train_fold(
            msd,
            tmp_path / "run",
            resume=True,
            device="cpu",
            model=ModelConfig(kind="unet", **SMALL),
            data_cfg=DataConfig(folds=3),
            train=TrainConfig(epochs=1, samples_per_epoch=8, batch_size=4),
        )
    history = _train(msd, tmp_path / "run", epochs=2, resume=True)
    assert [row["epoch"] for row in history] == [1, 2]


def test_self_pair_prediction_has_four_maps_and_a_confidence(msd, tmp_path):
    from relunet.data.layouts import index_dataset, load_case

    _train(msd, tmp_path / "run", epochs=1)
    predictor, fold = open_predictor(tmp_path / "run", None, "cpu")
    index = index_dataset(msd)
    case = load_case(index.cases[0], index.labels)
    prediction = predict_case(predictor, case)
    assert fold == 0
    assert set(prediction.maps) == {"seg_a", "seg_b", "union", "inter"}
    assert prediction.maps["union"].shape == (1, 12, 14, 10)
    assert 0.0 <= prediction.confidence <= 1.0
    anchored = predict_case(predictor, case, anchors=[load_case(c, index.labels) for c in index.cases[1:4]])
    assert set(anchored.maps) == {"seg_a"}
    assert np.all((anchored.maps["seg_a"] >= 0) & (anchored.maps["seg_a"] <= 1))


def test_mc_dropout_draws_equal_whole_passes_with_dropout_on(msd, tmp_path):
    from relunet.confidence import SampleAgreement
    from relunet.data.layouts import index_dataset, load_case

    _train(msd, tmp_path / "run", epochs=1, kind="mcdropout")
    predictor, _ = open_predictor(tmp_path / "run", None, "cpu", mc_samples=4)
    index = index_dataset(msd)
    case = load_case(index.cases[0], index.labels)
    torch.manual_seed(7)
    fast = predict_case(predictor, case)

    def whole_pass(batch, depth):
        predictor.model.head.train()
        return {"seg_a": torch.sigmoid(predictor.model(batch))}

    torch.manual_seed(7)
    draws = SampleAgreement()
    for _ in range(4):
        draws.add(predictor._maps(case, whole_pass)["seg_a"])
    assert np.allclose(fast.maps["seg_a"], draws.mean, atol=1e-6)
    assert fast.confidence == pytest.approx(draws.agreement)
    assert fast.confidence < 1.0  # the draws differ


def test_anchors_in_one_batch_equal_anchors_one_at_a_time(tmp_path):
    from conftest import write_pictures

    from relunet.data.layouts import index_dataset, load_case

    data = write_pictures(tmp_path / "pics", n_cases=6)
    train_fold(
        data,
        tmp_path / "run",
        fold=0,
        device="cpu",
        model=ModelConfig(kind="relation", **SMALL),
        data_cfg=DataConfig(folds=3),
        train=TrainConfig(epochs=1, samples_per_epoch=8, batch_size=4),
    )
    predictor, _ = open_predictor(tmp_path / "run", None, "cpu")
    index = index_dataset(data)
    case, *anchors = [load_case(c, index.labels) for c in index.cases]
    batched = predict_case(predictor, case, anchors=anchors)
    predictor.batch_size = 1
    single = predict_case(predictor, case, anchors=anchors)
    assert np.allclose(batched.maps["seg_a"], single.maps["seg_a"], atol=1e-5)
    assert batched.confidence == pytest.approx(single.confidence)


def test_flip_tta_and_ensemble_give_a_mean_map_and_pairwise_confidence(msd, tmp_path):
    from relunet.data.layouts import index_dataset, load_case
    from relunet.inference.methods import Ensemble

    _train(msd, tmp_path / "run", epochs=1, kind="unet")
    predictor, _ = open_predictor(tmp_path / "run", None, "cpu")
    index = index_dataset(msd)
    case = load_case(index.cases[0], index.labels)
    tta = FlipTTA().predict([predictor], case)
    assert tta.maps["seg_a"].shape == (1, 12, 14, 10) and 0 <= tta.confidence <= 1
    same = Ensemble(2).predict([predictor, predictor], case)
    assert same.confidence == 1.0
    np.testing.assert_allclose(same.maps["seg_a"], predict_case(predictor, case).maps["seg_a"], atol=1e-6)


def test_mixed_precision_and_channels_last_paths_train(msd, tmp_path):
    # on a GPU these are on by default; here they are forced on the CPU to exercise the code
    history = train_fold(
        msd,
        tmp_path / "run",
        device="cpu",
        model=ModelConfig(kind="relation", **SMALL),
        data_cfg=DataConfig(folds=3),
        train=TrainConfig(epochs=1, samples_per_epoch=8, batch_size=4, amp=True, channels_last=True),
    )
    assert np.isfinite(history[0]["loss"])


def test_only_the_baselines_augment_unless_told_and_old_configs_did_not(pictures, tmp_path):
    for kind, expected in (("relation", False), ("unet", True)):
        _train(pictures, tmp_path / kind, epochs=1, kind=kind)
        assert load_config(tmp_path / kind / "config.yaml").train.augment is expected
    told = train_fold(
        pictures,
        tmp_path / "told",
        device="cpu",
        model=ModelConfig(**SMALL),
        data_cfg=DataConfig(folds=3),
        train=TrainConfig(epochs=1, samples_per_epoch=8, batch_size=4, augment=True),
    )
    assert told and load_config(tmp_path / "told" / "config.yaml").train.augment is True
    older = RunConfig().to_dict()
    del older["train"]["augment"]  # a config written before augmentation existed
    assert RunConfig.from_dict(older).train.augment is False
