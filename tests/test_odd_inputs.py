"""Odd but real input: non-finite voxels, system files, ambiguous names, picture modes, damaged files."""

import gzip
import json
import shutil
import warnings

import nibabel as nib
import numpy as np
import pytest
from conftest import TINY_TRAIN, write_msd, write_pictures
from PIL import ExifTags, Image

from relunet.config import DataConfig
from relunet.data.layouts import index_dataset, index_input, load_case
from relunet.data.readers import read_image2d, read_mask2d, read_nifti
from relunet.data.training_set import check_label_sets, load_cases
from relunet.errors import InputError

GRAY = (np.arange(64).reshape(8, 8) * 4).astype(np.uint8)
LABELS = np.repeat([[0, 0, 1, 1, 2, 2, 0, 1]], 8, axis=0).astype(np.uint8)


def refused(call, *fragments) -> str:
    """The one-line message of the InputError `call` raises; it must hold each of `fragments`."""
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert str(fragment) in message, message
    return message


def colour() -> np.ndarray:
    """A smooth `(16, 16, 3)` uint8 colour picture."""
    yy, xx = np.mgrid[0:16, 0:16]
    return np.stack([yy * 15, xx * 15, 255 - (yy + xx) * 7], -1).astype(np.uint8)


def resave_nifti(path, change) -> None:
    img = nib.load(path)
    data = change(np.asarray(img.dataobj).astype(np.float32))
    nib.save(nib.Nifti1Image(data, img.affine), path)


@pytest.mark.parametrize(
    ("bad", "said"), [([np.nan], "1 voxel is"), ([np.nan, np.inf, -np.inf], "3 voxels are")]
)
def test_nan_or_infinite_voxels_refuse_the_case(tmp_path, bad, said):
    root = write_msd(tmp_path / "d", n_cases=2)
    path = root / "imagesTr" / "case_000.nii.gz"

    def spoil(data):
        data.flat[: len(bad)] = bad
        return data

    resave_nifti(path, spoil)
    index = index_dataset(root)
    refused(lambda: load_case(index.cases[0], index.labels), path, said, "NaN or infinite")


def test_infinite_label_voxel_is_refused(msd):
    path = msd / "labelsTr" / "case_001.nii.gz"
    resave_nifti(path, lambda data: np.where(data == 2, np.inf, data))
    index = index_dataset(msd)
    refused(lambda: load_case(index.cases[1], index.labels), path, "NaN or infinite")


def test_nan_pixel_of_a_float_picture_is_refused(tmp_path):
    root = write_pictures(tmp_path / "p", n_cases=2)
    (root / "images" / "case_0000.png").unlink()
    data = np.ones((32, 32), np.float32)
    data[3, 4] = np.nan
    Image.fromarray(data, mode="F").save(root / "images" / "case_0000.tif")
    index = index_dataset(root)
    refused(lambda: load_case(index.cases[0], index.labels), "case_0000.tif", "1 pixel is NaN")


def test_hidden_and_system_files_are_ignored(tmp_path):
    root = write_pictures(tmp_path / "p", n_cases=3)
    apple_double = b"\x00\x05\x16\x07" + bytes(60)
    for folder in ("images", "masks"):
        (root / folder / "._case_0000.png").write_bytes(apple_double)
        (root / folder / ".DS_Store").write_bytes(bytes(10))
    (root / "images" / ".hidden.png").write_bytes(bytes(10))
    (root / "images" / "Thumbs.db").write_bytes(bytes(10))
    (root / "images" / "desktop.ini").write_text("[.ShellClassInfo]\n")
    (root / "images" / "__MACOSX").mkdir()
    (root / "images" / "__MACOSX" / "._case_0001.png").write_bytes(apple_double)
    index = index_dataset(root)
    assert index.case_ids == ["case_0000", "case_0001", "case_0002"]
    assert len(load_cases(index)) == 3
    assert index_input(root / "images").case_ids == index.case_ids


@pytest.mark.parametrize("folder", ["images", "masks", "plain"])
def test_one_case_in_two_formats_is_ambiguous(tmp_path, folder):
    root = write_pictures(tmp_path / "p", n_cases=3)
    where = root / ("images" if folder == "plain" else folder)
    Image.open(where / "case_0001.png").convert("RGB").save(where / "case_0001.jpg")
    call = (lambda: index_input(where)) if folder == "plain" else (lambda: index_dataset(root))
    refused(call, "case_0001.png", "case_0001.jpg", "keep one")


@pytest.mark.parametrize(("first", "second"), [("a.nii", "a.nii.gz"), ("a.nii.gz", "a_0000.nii.gz")])
def test_one_volume_in_two_files_is_ambiguous(tmp_path, first, second):
    for name in (first, second):
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), tmp_path / name)
    refused(lambda: index_input(tmp_path), first, second, "keep one")


def save_picture(path, mode: str):
    """Save a picture of `mode` at `path`; return the `(C, H, W)` array it must read back as."""
    gray, rgb = GRAY, colour()
    if mode in ("P", "P+transparency"):
        Image.fromarray(gray).convert("P").save(path, **({"transparency": 0} if "+" in mode else {}))
        return gray[None]
    if mode == "P colour":
        Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(path)
        return np.moveaxis(np.asarray(Image.open(path).convert("RGB")), -1, 0)
    if mode in ("LA", "RGBA"):
        source = gray if mode == "LA" else rgb
        Image.fromarray(source).convert(mode).save(path)
        return source[None] if mode == "LA" else np.moveaxis(rgb, -1, 0)
    if mode == "I;16":
        Image.fromarray(gray.astype(np.uint16) * 250).save(path)
        return gray[None].astype(np.uint16) * 250
    if mode == "1":
        Image.fromarray(gray).convert("1", dither=Image.Dither.NONE).save(path)
        return np.where(gray[None] >= 128, 255, 0)
    Image.fromarray(rgb).convert("CMYK").save(path, quality=100)
    return np.moveaxis(rgb, -1, 0)


@pytest.mark.parametrize("mode", ["P", "P+transparency", "P colour", "LA", "RGBA", "I;16", "1", "CMYK"])
def test_picture_modes_read_as_gray_or_colour(tmp_path, mode):
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    expected = save_picture(path, mode)
    image = read_image2d(path)
    assert image.shape == expected.shape
    tolerance = 12 if mode == "CMYK" else 0
    assert np.abs(image.astype(np.int64) - expected).max() <= tolerance


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_picture_and_mask_are_read_as_their_exif_orientation_shows_them(tmp_path, suffix):
    """Orientation 6: stored unrotated, shown turned 90 degrees clockwise."""
    gray = np.repeat(np.arange(0, 240, 40, dtype=np.uint8)[:, None], 9, axis=1)  # (6, 9), rows differ
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    Image.fromarray(gray).save(tmp_path / f"x.{suffix}", exif=exif, quality=100)
    Image.fromarray(LABELS).save(tmp_path / "m.png", exif=exif)
    image = read_image2d(tmp_path / f"x.{suffix}")
    assert image.shape == (1, 9, 6)
    assert np.abs(image[0].astype(int) - np.rot90(gray, -1)).max() <= 3
    np.testing.assert_array_equal(read_mask2d(tmp_path / "m.png"), np.rot90(LABELS, -1))


@pytest.mark.parametrize("transparency", [False, True])
def test_palette_mask_gives_its_indices_not_its_colours(tmp_path, transparency):
    mask = Image.fromarray(LABELS, mode="P")
    mask.putpalette([0, 0, 0, 200, 30, 30, 30, 200, 30])
    mask.save(tmp_path / "m.png", **({"transparency": 0} if transparency else {}))
    np.testing.assert_array_equal(read_mask2d(tmp_path / "m.png"), LABELS)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA"])
def test_gray_mask_saved_in_colour_modes_reads_as_its_values(tmp_path, mode):
    Image.fromarray(LABELS * 100).convert(mode).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask2d(tmp_path / "m.png"), LABELS * 100)


def test_colour_mask_is_refused(tmp_path):
    Image.fromarray(np.stack([LABELS * 100, LABELS * 50, LABELS], -1)).save(tmp_path / "m.png")
    refused(lambda: read_mask2d(tmp_path / "m.png"), "m.png", "colour mask")


def test_label_sets_no_mask_holds_are_refused(tmp_path):
    labels = {"0": "background", "1": "a", "2": "b", "3": "c"}
    root = write_msd(tmp_path / "d", n_cases=2, labels=labels)
    index = index_dataset(root)
    cases = load_cases(index)
    check_label_sets(index, cases, ((1,), (2,)))
    check_label_sets(index, cases, ((1, 3),))
    refused(lambda: check_label_sets(index, cases, ((1,), (3,))), root, "label 3", "'1;3'", "[1, 2]")


def test_label_sets_naming_undeclared_labels_are_refused(msd, pictures):
    index = index_dataset(msd)
    cases = load_cases(index)
    refused(lambda: check_label_sets(index, cases, ((1,), (5,))), msd / "dataset.json", "[5]", "[0, 1, 2]")
    pictures_index = index_dataset(pictures)
    pictures_cases = load_cases(pictures_index)
    refused(lambda: check_label_sets(pictures_index, pictures_cases, ((2,),)), pictures / "masks", "[2]")


def test_train_refuses_label_sets_no_mask_holds(tmp_path):
    from relunet.training.train_workflow import train_fold

    root = write_msd(tmp_path / "d", n_cases=6, labels={"0": "bg", "1": "a", "2": "b", "3": "c"})
    with pytest.raises(InputError, match="label 3"):
        train_fold(
            root,
            tmp_path / "run",
            device="cpu",
            data_cfg=DataConfig(label_sets=((1,), (3,))),
            train=TINY_TRAIN,
        )


def entries(*names: str) -> list[dict]:
    return [{"image": f"./imagesTr/{n}.nii.gz", "label": f"./labelsTr/{n}.nii.gz"} for n in names]


BAD_META = {
    "training not a list": ({"training": {"image": "x"}}, "'training' must be a list"),
    "entry not an object": ({"training": ["./imagesTr/case_000.nii.gz"]}, "entry 1 is not an object"),
    "entry without image": ({"training": [{"label": "./labelsTr/case_000.nii.gz"}]}, "entry 1 is not"),
    "path not a string": ({"training": [{"image": 5}]}, "'image' must be a path"),
    "label not a string": ({"training": [{"image": "imagesTr/case_000.nii.gz", "label": ["x"]}]}, "'label'"),
    "absolute path": ({"training": [{"image": "ABSOLUTE"}]}, "is absolute"),
    "path out of the dataset": ({"training": [{"image": "../outside.nii.gz"}]}, "leads out of"),
    "path not an image name": ({"training": [{"image": "./imagesTr"}]}, "not a NIfTI"),
    "channels not a list": ({"training": [{"image": "imagesTr/x.nii.gz", "channels": "a"}]}, "'channels'"),
    "case listed twice": ({"training": entries("case_000", "case_000")}, "listed twice"),
    "labels a list": ({"training": entries("case_000"), "labels": ["background", "a"]}, "'labels' must"),
    "labels not integers": ({"training": entries("case_000"), "labels": {"bg": 0, "a": 1.5}}, "'labels'"),
    "not an object": ([entries("case_000")], "not a JSON object"),
}


@pytest.mark.parametrize("case", BAD_META)
def test_bad_dataset_json_is_one_line(msd, case):
    meta, said = BAD_META[case]
    shutil.copy(msd / "imagesTr" / "case_000.nii.gz", msd.parent / "outside.nii.gz")
    text = json.dumps(meta).replace("ABSOLUTE", str(msd / "imagesTr" / "case_000.nii.gz"))
    (msd / "dataset.json").write_text(text)
    refused(lambda: load_cases(index_dataset(msd)), msd / "dataset.json", said)


@pytest.mark.parametrize("content", [b'{"training": "\xff"}', b"[" * 100_000, b"{"])
def test_undecodable_dataset_json_is_one_line(msd, content):
    (msd / "dataset.json").write_bytes(content)
    refused(lambda: index_dataset(msd), msd / "dataset.json", "not an MSD dataset.json")


def spoil_file(path, how: str) -> None:
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "folder":
        path.unlink()
        path.mkdir()
    else:
        path.unlink()
        path.symlink_to(path.parent / "gone.png")


@pytest.mark.parametrize(
    ("how", "said"),
    [("empty", "empty file"), ("truncated", "cannot read"), ("folder", "a folder"), ("link", "broken link")],
)
@pytest.mark.parametrize("layout", ["folder2d", "plain", "msd"])
def test_damaged_file_is_one_line(tmp_path, layout, how, said):
    if layout == "msd":
        root = write_msd(tmp_path / "d", n_cases=2)
        path = root / "imagesTr" / "case_001.nii.gz"
    else:
        root = write_pictures(tmp_path / "p", n_cases=2)
        path = root / "images" / "case_0001.png"
    spoil_file(path, how)
    index = index_input(root / "images") if layout == "plain" else index_dataset(root)
    refused(lambda: load_cases(index, with_label=layout != "plain"), path, said)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_header_declaring_a_huge_volume_is_refused_before_reading(tmp_path, suffix):
    header = nib.Nifti1Header()
    header.set_data_shape((32767, 32767, 32767))
    header.set_data_dtype(np.float32)
    header["vox_offset"] = 352
    content = header.binaryblock + bytes(4 + 4000)
    path = tmp_path / f"huge{suffix}"
    path.write_bytes(gzip.compress(content) if suffix == ".nii.gz" else content)
    refused(lambda: read_nifti(path), path, "declares", "truncated or damaged")


def test_picture_over_the_pixel_limit_is_refused(pictures, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = pictures / "images" / "case_0000.png"
    refused(lambda: read_image2d(path), path, "too many pixels", "downscale")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    refused(lambda: read_image2d(path), path, "(32 x 32)", "downscale")


@pytest.mark.parametrize("dims", [(0, 4, 4), (-3, 2**40, 2**40)])
def test_nifti_header_declaring_no_voxels_is_refused_without_warnings(tmp_path, dims):
    header = nib.Nifti2Header()
    header.set_data_shape((4, 4, 4))
    header.set_data_dtype(np.float32)
    header["vox_offset"] = 544
    header["dim"][1:4] = dims
    path = tmp_path / "none.nii"
    path.write_bytes(header.binaryblock + bytes(4 + 256))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refused(lambda: read_nifti(path), path, "no voxels")


def test_damaged_nifti_header_adds_no_line_to_stderr(tmp_path, capfd):
    path = tmp_path / "odd.nii"
    nib.save(nib.Nifti1Image(np.ones((4, 5, 3), np.float32), np.eye(4)), path)
    content = bytearray(path.read_bytes())
    content[80:84] = np.float32(np.inf).tobytes()  # pixdim[1]: the qform affine overflows
    content[252:256] = np.array([1, 29186], "<i2").tobytes()  # qform_code 1, sform_code invalid
    path.write_bytes(bytes(content))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data, _ = read_nifti(path)
    assert data.shape == (4, 5, 3)
    assert capfd.readouterr().err == ""
