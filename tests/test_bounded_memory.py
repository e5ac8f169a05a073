"""Full-size scans in bounded memory: the disk-streamed training set, patches, the memory refusal."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_msd
from typer.testing import CliRunner

from relunet.cli import app
from relunet.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from relunet.data.layouts import index_dataset
from relunet.data.patches import FOREGROUND_SHARE, cut, draw_starts
from relunet.data.preprocess import Preprocessor, binary_label_sets
from relunet.data.training_set import build_training_set, load_cases
from relunet.training.checkpoint import load_checkpoint
from relunet.training.sample_source import StreamedSource
from relunet.training.train_workflow import train_fold

SMALL = {"features": (4, 4, 8, 8, 16, 4)}


def _config(dims: int, patch_size=None) -> RunConfig:
    return RunConfig(
        ModelConfig(spatial_dims=dims, **SMALL),
        DataConfig(dims=dims, label_sets=binary_label_sets((0, 1, 2)), patch_size=patch_size),
        TrainConfig(),
    )


@pytest.mark.parametrize("dims", [2, 3])
def test_streamed_and_in_memory_sets_give_identical_batches(tmp_path, dims):
    data = write_msd(tmp_path / "msd", n_cases=5, shape=(12, 14, 10))
    index = index_dataset(data)
    config = _config(dims)
    train_ids = index.case_ids[:4]
    cases = [c for c in load_cases(index) if c.case_id in train_ids]
    in_memory = build_training_set(cases, Preprocessor.of(config.data), dims, 2, 16)
    source = StreamedSource(tmp_path / "cache", config)
    source.fill(index)
    streamed = source.training_set(train_ids, 16)

    assert len(streamed) == len(in_memory)
    assert np.array_equal(streamed.depth, in_memory.depth)
    rng = np.random.default_rng(3)
    for _ in range(3):
        index_ = rng.integers(0, len(in_memory), size=6)
        for a, b in zip(streamed.batch(index_), in_memory.batch(index_), strict=True):
            assert torch.equal(a, b)
    assert streamed.draw_crops(rng, index_) is None and in_memory.draw_crops(rng, index_) is None


def _train(data, out, cache, epochs=1, resume=False, patch_size=None, dims=2):
    return train_fold(
        data,
        out,
        resume=resume,
        device="cpu",
        model=ModelConfig(**SMALL),
        data_cfg=DataConfig(folds=3, dims=dims, patch_size=patch_size),
        train=TrainConfig(epochs=epochs, samples_per_epoch=8, batch_size=4, cache=cache),
    )


def test_training_from_disk_equals_training_in_memory(tmp_path):
    data = write_msd(tmp_path / "msd", n_cases=5)
    _train(data, tmp_path / "memory", "memory")
    _train(data, tmp_path / "disk", "disk")
    assert any((tmp_path / "disk" / "cache").rglob("*.image.npy"))
    assert not (tmp_path / "memory" / "cache").exists()
    a = load_checkpoint(tmp_path / "memory" / "fold_0" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "disk" / "fold_0" / "checkpoint.pt")["model"]
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_patch_training_resumes_exactly_and_reuses_its_cache(tmp_path, monkeypatch):
    data = write_msd(tmp_path / "msd", n_cases=5, shape=(40, 36, 34))
    _train(data, tmp_path / "straight", "auto", epochs=2, patch_size=(32, 32, 32), dims=3)
    first = _train(data, tmp_path / "resumed", "auto", epochs=1, patch_size=(32, 32, 32), dims=3)
    cached = sorted((tmp_path / "resumed" / "cache").rglob("*.image.npy"))
    stamps = [p.stat().st_mtime_ns for p in cached]
    patch = (32, 32, 32)
    history = _train(data, tmp_path / "resumed", "auto", epochs=2, resume=True, patch_size=patch, dims=3)
    assert len(first) == 1 and [r["epoch"] for r in history] == [1, 2]
    assert [p.stat().st_mtime_ns for p in cached] == stamps
    a = load_checkpoint(tmp_path / "straight" / "fold_0" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "resumed" / "fold_0" / "checkpoint.pt")["model"]
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_patches_centre_on_foreground_a_third_of_the_time_and_pad_past_the_edge():
    rng = np.random.default_rng(0)
    shapes = np.tile([100, 100, 50], (3000, 1))
    foreground = [np.array([[80, 80, 40]])] * 3000
    starts = draw_starts(rng, shapes, (20, 20, 20), foreground)
    centred = (starts == [70, 70, 30]).all(axis=1).mean()
    assert abs(centred - FOREGROUND_SHARE) < 0.03
    assert (starts >= 0).all() and (starts <= [80, 80, 30]).all()
    again = draw_starts(np.random.default_rng(0), shapes, (20, 20, 20), foreground)
    assert np.array_equal(starts, again)
    sample = np.ones((1, 10, 12))
    block = cut(sample, np.array([4, 0]), (8, 16))
    assert block.shape == (1, 8, 16) and block.sum() == 6 * 12


def test_a_setting_that_cannot_fit_is_refused_in_one_line_with_nothing_written(tmp_path, monkeypatch):
    import relunet.memory_estimate as memory

    data = write_msd(tmp_path / "msd", n_cases=4)
    monkeypatch.setattr(memory, "available_bytes", lambda: 700_000_000)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["train", str(data), "--out", str(out), "--dims", "3", "--batch-size", "2000", "--device", "cpu"]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "GB of memory" in lines[0] and "--batch-size" in lines[0] and "--patch-size" in lines[0]
    assert not out.exists()


def _volume_case(rng, shape, name="v"):
    from relunet.types import Case

    label = (rng.random(shape) > 0.7).astype(np.int64)
    image = (rng.normal(size=(1, *shape)) + label).astype(np.float32)
    return Case(name, image, label, Path(f"{name}.nii.gz"), "nifti")


@pytest.mark.parametrize("kind", ["relation", "unet"])
def test_sliding_windows_equal_a_whole_volume_pass_on_a_volume_that_fits_one_window(kind):
    from relunet.inference.methods import anchored, method, predict_case
    from relunet.inference.predictor import Predictor
    from relunet.nets import build_model

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    config = RunConfig(
        ModelConfig(kind=kind, spatial_dims=3, **SMALL),
        DataConfig(dims=3, label_sets=((1,),)),
        TrainConfig(),
    )
    model = build_model(config.model)
    whole = Predictor(model, config, torch.device("cpu"))
    windows = Predictor(model, config.with_overrides(data={"patch_size": (32, 32, 32)}), torch.device("cpu"))
    assert windows.windowed and not whole.windowed
    case, anchor = _volume_case(rng, (20, 30, 17)), _volume_case(rng, (20, 30, 17), "a")
    runs = [lambda p: predict_case(p, case), lambda p: method("tta").predict([p], case)]
    if kind == "relation":
        runs.append(lambda p: anchored(p, case, [anchor, case]))
    for run in runs:
        a, b = run(whole), run(windows)
        assert a.maps.keys() == b.maps.keys()
        for head in a.maps:
            assert a.maps[head].shape == (1, 20, 30, 17)
            np.testing.assert_allclose(a.maps[head], b.maps[head], atol=1e-5)
        assert a.confidence == pytest.approx(b.confidence, abs=1e-4)


def test_sliding_windows_cover_a_volume_larger_than_one_window():
    from relunet.inference.methods import predict_case
    from relunet.inference.predictor import Predictor
    from relunet.nets import build_model

    config = RunConfig(
        ModelConfig(kind="relation", spatial_dims=3, **SMALL),
        DataConfig(dims=3, label_sets=((1,),), patch_size=(32, 32, 32), overlap=0.25),
        TrainConfig(),
    )
    case = _volume_case(np.random.default_rng(1), (70, 40, 33))
    prediction = predict_case(Predictor(build_model(config.model), config, torch.device("cpu")), case)
    assert {m.shape for m in prediction.maps.values()} == {(1, 70, 40, 33)}
    assert all(np.isfinite(m).all() and (m > 0).all() for m in prediction.maps.values())
    assert 0 <= prediction.confidence <= 1


def test_a_resampled_run_writes_masks_in_the_input_geometry_and_refuses_a_volume_too_big(
    tmp_path, monkeypatch
):
    import nibabel as nib

    import relunet.memory_estimate as memory

    data = write_msd(tmp_path / "msd", n_cases=4, shape=(24, 28, 20))
    run, out = tmp_path / "run", tmp_path / "pred"
    cli = CliRunner()
    args = ["--dims", "3", "--spacing", "3,3,4", "--folds", "2", "--epochs", "1"]
    args += ["--samples-per-epoch", "2", "--batch-size", "2", "--device", "cpu"]
    result = cli.invoke(app, ["train", str(data), "--out", str(run), *args])
    assert result.exit_code == 0, result.output
    source = data / "imagesTr" / "case_000.nii.gz"
    result = cli.invoke(app, ["predict", str(run), str(source), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    mask, image = nib.load(out / "masks" / "case_000.nii.gz"), nib.load(source)
    assert mask.shape == image.shape and np.allclose(mask.affine, image.affine)

    monkeypatch.setattr(memory, "available_bytes", lambda: 600_000_000)
    refused_out = tmp_path / "refused"
    result = cli.invoke(app, ["predict", str(run), str(source), "--out", str(refused_out), "--device", "cpu"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "predicting a whole" in result.stderr and "--patch-size" in result.stderr
    assert not refused_out.exists()
    prep = Preprocessor(((1, 2),), spacing=(3.0, 3.0, 4.0))
    case = load_cases(index_dataset(data))[0]
    assert prep.image(case).shape == (1, 12, 14, 10)
    assert prep.restore(np.zeros((1, 12, 14, 10), np.float32), case).shape == (1, 24, 28, 20)


def test_spacing_auto_is_the_median_voxel_size(tmp_path):
    from relunet.data.layouts import median_spacing

    assert median_spacing(index_dataset(write_msd(tmp_path / "msd", n_cases=3))) == (1.5, 1.5, 2.0)


def test_a_class_no_mask_holds_is_refused_from_the_disk_cache_with_nothing_written(tmp_path):
    labels = {"0": "background", "1": "a", "2": "b", "3": "never"}
    data = write_msd(tmp_path / "msd", n_cases=3, labels=labels)
    out = tmp_path / "run"
    args = ["train", str(data), "--out", str(out), "--labels", "3", "--cache", "disk", "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "label 3" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_predict_and_evaluate_read_a_folder_case_by_case(tmp_path, monkeypatch):
    import gc
    import weakref

    import relunet.inference.workflows as workflows

    data = write_msd(tmp_path / "msd", n_cases=5)
    _train(data, tmp_path / "run", "memory")
    read, held = [], []
    load_case = workflows.load_case

    def counting_load_case(*args, **kwargs):
        gc.collect()
        held.append(sum(ref() is not None for ref in read))
        case = load_case(*args, **kwargs)
        read.append(weakref.ref(case))
        return case

    monkeypatch.setattr(workflows, "load_case", counting_load_case)
    rows = workflows.predict_folder(tmp_path / "run", data / "imagesTr", tmp_path / "pred", device="cpu")
    assert len(rows) == len(read) == 5 and max(held) <= 1  # the last case only, not all read so far
    read.clear(), held.clear()
    workflows.evaluate_folder(tmp_path / "run", data, tmp_path / "eval", all_cases=True, device="cpu")
    assert len(read) == 5 and max(held) <= 1


def test_predict_refuses_a_case_that_does_not_fit_the_model_before_reading_any(tmp_path, monkeypatch):
    import nibabel as nib

    import relunet.inference.workflows as workflows

    data = write_msd(tmp_path / "msd", n_cases=4)
    _train(data, tmp_path / "run", "memory")
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a", "b"):
        (images / f"{name}.nii.gz").write_bytes((data / "imagesTr" / "case_000.nii.gz").read_bytes())
    nib.save(nib.Nifti1Image(np.zeros((12, 14, 10, 2), np.float32), np.eye(4)), images / "c.nii.gz")
    monkeypatch.setattr(workflows, "load_case", lambda *a, **k: pytest.fail("read before the check"))
    result = CliRunner().invoke(
        app,
        ["predict", str(tmp_path / "run"), str(images), "--out", str(tmp_path / "pred"), "--device", "cpu"],
    )
    assert result.exit_code == 2 and "c.nii.gz: 2 channel(s)" in result.stderr, result.output
    assert not (tmp_path / "pred").exists()
