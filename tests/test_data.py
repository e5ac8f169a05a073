import json

import numpy as np
import pytest
from conftest import write_msd, write_pictures

from relunet.data.layouts import index_dataset, index_input, load_case
from relunet.data.preprocess import (
    Preprocessor,
    binary_label_sets,
    label_targets,
    normalise,
    parse_label_sets,
)
from relunet.data.samples import crop_to, from_samples, pad_to, padded_shape, to_samples
from relunet.data.splits import kfold, load_or_create_splits
from relunet.data.training_set import build_training_set, load_cases
from relunet.errors import InputError


def test_msd_layout_is_detected_and_read(msd):
    index = index_dataset(msd)
    assert index.layout == "msd"
    assert index.labels == (0, 1, 2)
    case = load_case(index.cases[0], index.labels)
    assert case.image.shape == (1, 12, 14, 10)
    assert case.label.shape == (12, 14, 10)
    assert case.fmt == "nifti"
    np.testing.assert_allclose(np.diag(case.geometry["affine"]), [1.5, 1.5, 2.0, 1.0])


@pytest.mark.parametrize("channel_files", [False, True])
def test_msd_multichannel_as_4d_or_channel_files(tmp_path, channel_files):
    root = write_msd(tmp_path / "d", n_cases=2, channels=4, channel_files=channel_files)
    index = index_dataset(root)
    case = load_case(index.cases[0], index.labels)
    assert case.image.shape == (4, 12, 14, 10)
    np.testing.assert_allclose(case.image[3], 4 * case.image[0], rtol=1e-5)


def test_picture_folder_gray_and_rgb(tmp_path):
    gray = index_dataset(write_pictures(tmp_path / "g", n_cases=3))
    rgb = index_dataset(write_pictures(tmp_path / "c", n_cases=3, rgb=True))
    assert gray.layout == rgb.layout == "folder2d"
    assert load_case(gray.cases[0], gray.labels).image.shape == (1, 32, 32)
    case = load_case(rgb.cases[0], rgb.labels)
    assert case.image.shape == (3, 32, 32)
    assert set(np.unique(case.label)) <= {0, 1}


def test_predict_input_accepts_a_file_a_folder_and_a_dataset(pictures):
    assert len(index_input(pictures).cases) == 10
    assert len(index_input(pictures / "images").cases) == 10
    single = index_input(pictures / "images" / "case_0000.png")
    assert single.case_ids == ["case_0000"]


def test_label_mapping_binary_classes_and_regions():
    label = np.array([0, 1, 2, 4])
    assert binary_label_sets((0, 1, 2, 4)) == ((1, 2, 4),)
    assert label_targets(label, ((1, 2, 4),)).tolist() == [[0, 1, 1, 1]]
    regions = parse_label_sets("1,2,4;1,4;4")
    assert label_targets(label, regions).tolist() == [[0, 1, 1, 1], [0, 1, 0, 1], [0, 0, 0, 1]]
    with pytest.raises(InputError):
        parse_label_sets("a;b")
    with pytest.raises(InputError):
        parse_label_sets("0;1")


def test_normalise_per_channel():
    image = np.stack([np.arange(10.0), 100 + 5 * np.arange(10.0)])
    out = normalise(image)
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(out.std(axis=1), 1, atol=1e-5)
    assert normalise(np.ones((1, 4))).tolist() == [[0, 0, 0, 0]]


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slices_reassemble_into_the_volume(axis):
    volume = np.random.default_rng(0).normal(size=(2, 5, 6, 7))
    slices = to_samples(volume, dims=2, slice_axis=axis)
    assert slices.shape[0] == volume.shape[1 + axis]
    np.testing.assert_array_equal(from_samples(slices, 3, 2, axis), volume)
    np.testing.assert_array_equal(to_samples(volume, dims=3, slice_axis=axis)[0], volume)


def test_pad_and_crop():
    samples = np.ones((2, 1, 35, 50))
    shape = padded_shape((35, 50), 16)
    assert shape == (48, 64)
    padded = pad_to(samples, shape)
    assert padded.shape == (2, 1, 48, 64) and padded[:, :, 40:].sum() == 0
    np.testing.assert_array_equal(crop_to(padded, (35, 50)), samples)


def test_resize_and_restore_pictures(pictures):
    index = index_dataset(pictures)
    case = load_case(index.cases[0], index.labels)
    prep = Preprocessor(((1,),), image_size=16)
    assert prep.image(case).shape == (1, 16, 16)
    assert prep.targets(case).shape == (1, 16, 16)
    assert prep.restore(np.zeros((1, 16, 16), np.float32), case).shape == (1, 32, 32)


def test_training_set_of_volume_slices(msd):
    index = index_dataset(msd)
    cases = load_cases(index)
    data = build_training_set(cases, Preprocessor(((1, 2),)), dims=2, slice_axis=2, size_multiple=16)
    assert data.images.shape == (6 * 10, 1, 32, 32)
    assert data.targets.shape == (60, 1, 32, 32)
    assert data.depth.min() == 0 and data.depth.max() == 1
    volumes = build_training_set(cases, Preprocessor(((1,), (2,))), dims=3, slice_axis=2, size_multiple=16)
    assert volumes.images.shape == (6, 1, 32, 32, 32)
    assert volumes.targets.shape == (6, 2, 32, 32, 32)


def test_kfold_covers_every_case_once():
    ids = [f"c{i}" for i in range(11)]
    folds = kfold(ids, 5, seed=0)
    tested = [c for f in folds for c in f["test"]]
    assert sorted(tested) == sorted(ids)
    for f in folds:
        assert not set(f["train"]) & set(f["test"])
    assert folds == kfold(ids, 5, seed=0)
    assert folds != kfold(ids, 5, seed=1)


def test_splits_are_saved_and_reused(tmp_path):
    ids = [f"c{i}" for i in range(10)]
    path = tmp_path / "splits.json"
    first = load_or_create_splits(path, ids, 5, seed=0)
    saved = json.loads(path.read_text())
    assert saved["folds"] == first
    assert load_or_create_splits(path, ids, 5, seed=99) == first
    with pytest.raises(InputError, match="do not match"):
        load_or_create_splits(path, ids[:-1], 5, seed=0)


def test_ct_window_clips_before_normalising():
    from relunet.data.preprocess import parse_window

    hu = np.array([[-1000.0, -100.0, 0.0, 200.0, 400.0, 3000.0]])
    out = normalise(hu, window=parse_window("-100,400"))
    assert out[0, 0] == out[0, 1] and out[0, 4] == out[0, 5]
    with pytest.raises(InputError):
        parse_window("400,-100")


def test_brats_like_four_channel_files_with_nested_regions(tmp_path):
    labels = {"0": "background", "1": "NCR", "2": "ED", "4": "ET"}
    root = write_msd(tmp_path / "brats", n_cases=2, channels=4, channel_files=True, labels=labels)
    for path in (root / "labelsTr").iterdir():  # BraTS values: 0, 1, 2, 4
        import nibabel as nib

        img = nib.load(path)
        data = np.asarray(img.dataobj)
        nib.save(nib.Nifti1Image(np.where(data == 2, 4, data).astype(np.uint8), img.affine), path)
    index = index_dataset(root)
    case = load_case(index.cases[0], index.labels)
    assert case.image.shape[0] == 4
    targets = Preprocessor(parse_label_sets("1,2,4;1,4;4")).targets(case)
    wt, tc, et = targets.astype(bool)
    assert (et <= tc).all() and (tc <= wt).all() and et.any()


def test_lits_like_ct_in_hounsfield_units(tmp_path):
    labels = {"0": "background", "1": "liver", "2": "tumour"}
    root = write_msd(tmp_path / "lits", n_cases=2, labels=labels)
    index = index_dataset(root)
    case = load_case(index.cases[0], index.labels)
    hu = case.__class__(case.case_id, case.image * 20 - 1000, case.label, case.image_path, case.fmt)
    prep = Preprocessor(((1, 2), (2,)), window=(-100.0, 400.0))
    image = prep.image(hu)
    assert image.dtype == np.float32 and np.isfinite(image).all()
    assert prep.targets(hu).shape == (2, 12, 14, 10)


def test_synthetic_difficulty_leans_easy_as_asked(tmp_path):
    import csv

    from relunet.data.synthetic import write_synthetic_dataset

    def difficulties(bias: float) -> list[float]:
        root = write_synthetic_dataset(tmp_path / str(bias), n_cases=40, size=16, easy_bias=bias)
        with (root / "difficulty.csv").open() as handle:
            return [float(row["difficulty"]) for row in csv.DictReader(handle)]

    even, easy = difficulties(1.0), difficulties(3.0)
    assert easy[0] == pytest.approx(even[0] ** 3)  # the same first draw, cubed
    assert sum(d < 0.25 for d in easy) > 2 * sum(d < 0.25 for d in even)
