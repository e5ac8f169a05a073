"""`relunet export` and `predict --engine onnxruntime`: same C and masks as PyTorch; bad input one line."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import write_msd, write_pictures
from PIL import Image
from test_cli import TINY, invoke, read_rows
from torch import nn

from relunet.config import RunConfig, load_config
from relunet.data.layouts import index_input
from relunet.data.training_set import load_cases
from relunet.errors import InputError
from relunet.evaluation.calibration_store import file_sha256
from relunet.inference.methods import FlipTTA, RelationFlipTTA, predict_case
from relunet.inference.onnx_engine import open_engine
from relunet.inference.onnx_export import export_program, metadata
from relunet.inference.workflows import open_predictor
from relunet.nets import build_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny Relation U-Net run, its ONNX file, and images of two sizes (32x32 and 48x40)."""
    root = tmp_path_factory.mktemp("onnx")
    data = write_pictures(root / "pics", n_cases=10)
    images = root / "images"
    images.mkdir()
    for path in sorted((data / "images").glob("*.png"))[:4]:
        (images / path.name).write_bytes(path.read_bytes())
    for path in sorted((write_pictures(root / "big", n_cases=3, size=48) / "images").glob("*.png")):
        Image.open(path).crop((0, 0, 40, 48)).save(images / f"big_{path.name}")
    run = root / "run"
    assert invoke("train", data, "--out", run, *TINY).exit_code == 0
    model = root / "model.onnx"
    result = invoke("export", run, "--out", model)
    assert result.exit_code == 0, result.output
    return run, model, images


def predict_both(run, images, out, onnx_options=()):
    """Rows and masks of `predict` with PyTorch and with ONNX Runtime, keyed by case."""
    found = []
    for name, engine in (("torch", []), ("onnx", ["--engine", "onnxruntime", *onnx_options])):
        result = invoke("predict", run, images, "--out", out / name, "--device", "cpu", *engine)
        assert result.exit_code == 0, result.output
        rows = {r["case_id"]: r for r in read_rows(out / name / "cases.csv")}
        masks = {c: np.asarray(Image.open(out / name / r["mask"])) for c, r in rows.items()}
        found.append((rows, masks))
    return found


def assert_same(torch_result, onnx_result):
    (rows, masks), (onnx_rows, onnx_masks) = torch_result, onnx_result
    assert rows.keys() == onnx_rows.keys()
    delta = max(abs(float(rows[c]["C"]) - float(onnx_rows[c]["C"])) for c in rows)
    assert delta <= 1e-4, delta
    for case, mask in masks.items():
        assert np.array_equal(mask, onnx_masks[case]), case


def test_exported_model_is_self_describing(exported):
    run, model, _ = exported
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [
        ("x1", ["batch", 1, "size0", "size1"]),
        ("x2", ["batch", 1, "size0", "size1"]),
    ]
    assert [o.name for o in session.get_outputs()] == ["seg_a", "seg_b", "union", "inter"]
    meta = session.get_modelmeta().custom_metadata_map
    assert RunConfig.from_dict(json.loads(meta["relunet.config"])) == load_config(run / "config.yaml")
    assert meta["relunet.size_multiple"] == "16"
    assert meta["relunet.checkpoint_sha256"] == file_sha256(run / "fold_0" / "checkpoint.pt")
    assert "multiple of 16" in meta["relunet.usage"]


def test_onnxruntime_gives_the_same_confidence_and_masks(exported, tmp_path):
    run, model, images = exported
    sizes = {Image.open(p).size for p in images.iterdir()}
    assert sizes == {(32, 32), (40, 48)}  # two padded shapes: 32x32 and 48x48
    assert_same(*predict_both(run, images, tmp_path / "self", onnx_options=["--onnx", model]))
    for name, engine, file in (("torch", "torch", None), ("onnx", "onnxruntime", str(model.resolve()))):
        record = json.loads((tmp_path / "self" / name / "prediction.json").read_text())["model"]
        assert (record["engine"], record["onnx"]) == (engine, file)
        assert record["onnx_sha256"] == (file_sha256(model) if file else None)


def test_anchors_and_flip_tta_through_onnxruntime(exported):
    run, model, images = exported
    small, big = (
        load_cases(index_input(images).subset([c]), with_label=False)[0]
        for c in ("case_0000", "big_case_0000")
    )
    torch_predictor, _ = open_predictor(run, None, "cpu")
    onnx_predictor, _ = open_predictor(run, None, "cpu", engine="onnxruntime", onnx=model)
    for case, anchors in ((small, [big, small]), (big, [small])):  # x1 != x2, padded to one size
        expected = predict_case(torch_predictor, case, anchors)
        found = predict_case(onnx_predictor, case, anchors)
        assert abs(expected.confidence - found.confidence) <= 1e-4
        np.testing.assert_allclose(expected.maps["seg_a"], found.maps["seg_a"], atol=1e-4)
    for tta in (FlipTTA(), RelationFlipTTA()):
        expected, found = tta.predict([torch_predictor], big), tta.predict([onnx_predictor], big)
        assert abs(expected.confidence - found.confidence) <= 1e-4
        for head, probability in expected.maps.items():
            np.testing.assert_allclose(probability, found.maps[head], atol=1e-4)


def test_sliding_windows_through_onnxruntime_equal_torch(tmp_path):
    data = write_msd(tmp_path / "msd", n_cases=4, shape=(64, 40, 36))
    run = tmp_path / "run"
    options = ["--dims", "3", "--patch-size", "32,32,32", "--overlap", "0.25", "--folds", "2"]
    assert invoke("train", data, "--out", run, *options, *TINY).exit_code == 0
    case = load_cases(index_input(data / "imagesTr").subset(["case_000"]), with_label=False)[0]
    torch_predictor, _ = open_predictor(run, None, "cpu")
    onnx_predictor, _ = open_predictor(run, None, "cpu", engine="onnxruntime")
    assert torch_predictor.windowed and onnx_predictor.windowed
    expected, found = predict_case(torch_predictor, case), predict_case(onnx_predictor, case)
    assert set(expected.maps) == {"seg_a", "seg_b", "union", "inter"}
    assert abs(expected.confidence - found.confidence) <= 1e-4
    for head, probability in expected.maps.items():
        assert probability.shape == (1, 64, 40, 36)  # stitched from 3 x 2 x 2 windows
        np.testing.assert_allclose(probability, found.maps[head], atol=1e-4)


def test_unet_exported_on_the_fly_matches_torch(tmp_path):
    data = write_pictures(tmp_path / "pics", n_cases=6)
    run = tmp_path / "run"
    assert invoke("train", data, "--out", run, "--model", "unet", *TINY).exit_code == 0
    assert_same(*predict_both(run, data / "images", tmp_path / "pred"))


def test_mc_dropout_metadata_says_deterministic():
    config = RunConfig().with_overrides(model={"kind": "mcdropout"})
    assert "deterministic network" in metadata(config, "0" * 64)["relunet.usage"]


def one_line(result, *words):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_bad_export_and_engine_input_is_one_line(exported, tmp_path):
    run, model, images = exported
    before = model.read_bytes()
    one_line(invoke("export", run, "--out", model), "already exists", "--overwrite")
    assert model.read_bytes() == before
    one_line(invoke("export", tmp_path, "--out", tmp_path / "m.onnx"), "no trained checkpoint")
    one_line(invoke("export", run, "--out", tmp_path / "m.txt"), ".onnx")
    one_line(invoke("export", run, "--out", tmp_path / "m.onnx", "--fold", "3"), "train fold 3")
    assert not list(tmp_path.iterdir())

    out = tmp_path / "pred"
    predict = ("predict", run, images, "--out", out, "--device", "cpu")
    one_line(invoke(*predict, "--engine", "tensorrt"), "--engine tensorrt")
    one_line(invoke(*predict, "--onnx", model), "needs --engine onnxruntime")
    one_line(invoke(*predict, "--engine", "onnxruntime", "--device", "cuda"), "runs on the CPU")
    onnx_engine = (*predict, "--engine", "onnxruntime", "--onnx")
    one_line(invoke(*onnx_engine, tmp_path / "missing.onnx"), "no such file", "relunet export")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    one_line(invoke(*onnx_engine, garbage), "not a readable ONNX model")
    other = onnx.load(model)
    for prop in other.metadata_props:
        if prop.key == "relunet.checkpoint_sha256":
            prop.value = "f" * 64
    onnx.save(other, tmp_path / "other.onnx")
    one_line(invoke(*onnx_engine, tmp_path / "other.onnx"), "not from this fold's checkpoint", "--overwrite")
    assert not out.exists()


def test_mc_dropout_refuses_onnxruntime_before_exporting():
    config = RunConfig().with_overrides(model={"kind": "mcdropout"})
    with pytest.raises(InputError, match="MC dropout .* use --engine torch"):
        open_engine(build_model(config.model), config, "0" * 64, None)


class VoxelCountTracedIn(nn.Module):
    """Logits scaled by the voxel count of the traced input: numpy makes it a constant of the graph."""

    def forward(self, x):
        return x * float(np.prod(x.shape[2:]))


def test_export_refuses_a_graph_fixed_to_the_traced_sizes():
    config = RunConfig().with_overrides(model={"kind": "unet"})
    with pytest.raises(InputError, match="free sizes"):
        export_program(VoxelCountTracedIn(), config, "0" * 64)
