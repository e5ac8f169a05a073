"""Each published cross-validation declares its settings once, beside its results, and they are
the settings its results were made with."""

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from relunet.config import BEFORE_IT_EXISTED, DataConfig, TrainConfig
from relunet.errors import InputError
from relunet.reporting.crossval_settings import SETTINGS_NAME, published_settings, read_calls, read_settings

CROSSVAL_DOCS = Path(__file__).resolve().parents[1] / "docs" / "crossval"
PUBLISHED = sorted(p for p in CROSSVAL_DOCS.iterdir() if p.is_dir())
#: what a setting an older crossval.yaml lacks was: its default then
THEN = {
    "data": json.loads(json.dumps(asdict(DataConfig()))),
    "train": {**json.loads(json.dumps(asdict(TrainConfig()))), **BEFORE_IT_EXISTED["train"]},
}


def _plain(value):
    """Tuples as lists, as JSON and YAML give them back."""
    return json.loads(json.dumps(value))


def _effective(folder: Path) -> dict:
    """Every data and train setting of the folder's settings file, the unpinned at their default."""
    settings = read_settings(folder)
    return {
        "data": _plain(asdict(settings.data_config())),
        "train": _plain(asdict(settings.train_config())),
        "features": _plain(settings.features),
    }


@pytest.mark.parametrize("folder", PUBLISHED, ids=[p.name for p in PUBLISHED])
def test_every_published_cross_validation_declares_its_settings(folder):
    settings = read_settings(folder)
    assert settings.name == folder.name and settings.purpose and settings.data_folder
    assert published_settings(CROSSVAL_DOCS)[folder.name] == settings


@pytest.mark.parametrize("folder", PUBLISHED, ids=[p.name for p in PUBLISHED])
def test_settings_are_those_every_recorded_call_ran_with(folder):
    effective = _effective(folder)
    flat = {**effective["data"], **effective["train"], "features": effective["features"]}
    calls = read_calls(folder)
    assert calls, f"{folder}: no calls.json"
    for call in calls:
        for key, value in call["settings"].items():
            assert _plain(value) == flat[key], (
                f"{folder.name}: a call ran with {key}={value}, settings say {flat[key]}"
            )


@pytest.mark.parametrize("folder", PUBLISHED, ids=[p.name for p in PUBLISHED])
def test_settings_are_those_of_the_crossval_yaml_where_one_was_written(folder):
    path = folder / "crossval.yaml"
    if not path.is_file():
        pytest.skip("made before cross-validations recorded their settings")
    saved, effective = yaml.safe_load(path.read_text()), _effective(folder)
    assert saved.get("features") == effective["features"]
    for section in ("data", "train"):
        for key, value in effective[section].items():
            if key != "path":
                assert saved[section].get(key, THEN[section][key]) == value, f"{folder.name}: {section}.{key}"


@pytest.mark.parametrize("folder", PUBLISHED, ids=[p.name for p in PUBLISHED])
def test_a_setting_whose_default_changed_is_pinned_where_no_record_settles_it(folder):
    """The calls of a folder without crossval.yaml record only what the script pinned: a setting
    whose default changed since (augmentation) must be stated, or a rerun would change it."""
    if (folder / "crossval.yaml").is_file():
        pytest.skip("crossval.yaml records every setting")
    recorded = {key for call in read_calls(folder) for key in call["settings"]}
    stated = yaml.safe_load((folder / SETTINGS_NAME).read_text()).get("train") or {}
    for key in BEFORE_IT_EXISTED["train"]:
        assert key in recorded or key in stated, f"{folder.name}: state train.{key} in its settings.yaml"


def test_the_folds_trained_before_augmentation_existed_pin_it_off():
    for name in ("hippocampus", "hippocampus_2class", "isic", "isic_100_epochs"):
        assert read_settings(CROSSVAL_DOCS / name).train_config().augment is False, name


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SETTINGS_NAME).write_text(text)
    return folder


def test_settings_read_into_the_configs_a_cross_validation_takes(tmp_path):
    folder = _write(
        tmp_path / "two",
        "purpose: two classes\ndata_folder: Task04_Hippocampus\nverdict: Hippocampus\n"
        "data: {dims: 2, label_sets: [[1], [2]]}\ntrain: {epochs: 40, augment: false}\n"
        "features: [32, 32, 64, 128, 256, 32]\n",
    )
    settings = read_settings(folder)
    assert settings.data_config().label_sets == ((1,), (2,))
    assert settings.train_config(epochs=2, samples_per_epoch=None).epochs == 2
    assert settings.train_config().augment is False and settings.features == (32, 32, 64, 128, 256, 32)
    assert settings.recorded() == {
        "dims": 2,
        "label_sets": [[1], [2]],
        "epochs": 40,
        "augment": False,
        "features": [32, 32, 64, 128, 256, 32],
    }
    assert settings.data_label == "Task04_Hippocampus, 2 classes" and settings.verdict == "Hippocampus"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("purpose: x\n", "missing data_folder"),
        ("purpose: x\ndata_folder: d\ntrain: {epoch: 3}\n", "unknown train.epoch"),
        ("purpose: x\ndata_folder: d\nwidths: [1]\n", "unknown widths"),
        ("purpose: x\ndata_folder: d\ntrain: {epochs: 0}\n", "--epochs 0"),
        ("purpose: x\ndata_folder: d\ntrain: {epochs: many}\n", "settings.yaml"),
        ("purpose: [x\n", "not readable YAML"),
        ("- a list\n", "not a mapping"),
    ],
)
def test_a_bad_settings_file_is_one_error_naming_it(tmp_path, text, said):
    folder = _write(tmp_path / "bad", text)
    with pytest.raises(InputError, match="settings.yaml") as caught:
        read_settings(folder)
    assert said in str(caught.value)


def test_a_folder_without_settings_is_an_error_naming_the_file(tmp_path):
    with pytest.raises(InputError, match="no settings file"):
        read_settings(tmp_path)
