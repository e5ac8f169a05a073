"""results.md's table of the Relation U-Net's recipes, one row per cross-validation."""

import json

from relunet.reporting.recipes import recipe_name, render_recipes


def _publish(folder, settings, relation=None, flagged=None):
    """A published cross-validation: its calls.json, summary.json and optionally scores.json."""
    folder.mkdir(parents=True)
    (folder / "calls.json").write_text(json.dumps([{"settings": {"dims": 2}}, {"settings": settings}]))
    summary = {"unet": {"n_folds": 5}}
    if relation is not None:
        summary["relation_self_pair"] = relation
    (folder / "summary.json").write_text(json.dumps(summary))
    if flagged is not None:
        entries = [
            {"method": "relation_self_pair", "score": "C_soft", "flagged": 0.5},
            {"method": "relation_self_pair", "score": "C", "flagged": flagged},
        ]
        (folder / "scores.json").write_text(json.dumps({"entries": entries}))


def _relation(dice, spearman, s1s2=None):
    summary = {
        "n_folds": 5,
        "dice_seg_a_mean_mean": dice,
        "dice_seg_a_mean_std": 0.004,
        "pooled_spearman": spearman,
        "pooled_eaurc": 0.0117,
    }
    if s1s2 is not None:
        summary.update(dice_s1s2_mean_mean=s1s2, dice_s1s2_mean_std=0.003)
    return summary


def test_recipe_names_only_the_training_settings_unlike_the_defaults():
    assert recipe_name({"dims": 2, "image_size": 128}) == "the `relunet train` defaults"
    assert recipe_name({"dims": 2, "epochs": 100, "augment": False}) == "the `relunet train` defaults"
    assert (
        recipe_name({"epochs": 40, "lr_step": 8, "augment": True, "pairing": "independent"})
        == "40 epochs, lr halved every 8, augmented, independent pairs"
    )
    assert recipe_name({"features": [32, 64], "loss": "bce"}) == "widths 32-64, loss bce"


def test_rows_per_dataset_with_dice_ranking_and_review_share(tmp_path):
    _publish(tmp_path / "plain", {"dims": 2}, _relation(0.881, 0.519), flagged=0.012)
    _publish(tmp_path / "aug", {"dims": 2, "augment": True}, _relation(0.892, 0.405, s1s2=0.894))
    _publish(tmp_path / "no_relation", {"dims": 2})
    lines = render_recipes(tmp_path, {"plain": "Hippo", "aug": "Hippo", "no_relation": "Hippo"})
    rows = [line for line in lines if line.startswith("| Hippo")]
    assert rows == [
        "| Hippo | [aug](crossval/aug/README.md) | augmented | 5 | 0.892 ± 0.004 | 0.894 ± 0.003 | 0.405 "
        "| 0.0117 | — |",
        "| Hippo | [plain](crossval/plain/README.md) | the `relunet train` defaults | 5 | 0.881 ± 0.004 | — "
        "| 0.519 | 0.0117 | 1.2% |",
    ]


def test_no_table_without_a_finished_relation_unet(tmp_path):
    _publish(tmp_path / "unet_only", {"dims": 2})
    assert render_recipes(tmp_path, {"unet_only": "Hippo", "never_run": "Hippo"}) == []
