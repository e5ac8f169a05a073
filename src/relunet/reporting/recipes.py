"""The Relation U-Net's training recipes side by side, one row per published cross-validation.

Reads each cross-validation's `calls.json` (its settings), `summary.json` (Dice and the pooled
ranking of C) and, where published, `scores.json` (`benchmarks/score_check.py`: the share of
cases C sends to review) under docs/crossval/, and names each recipe by how its training
settings differ from `relunet train`'s defaults, so that the trade-off between the segmentation
and the ranking is read in one table and the defaults' own row is marked.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from relunet.config import TrainConfig, default_augment
from relunet.reporting.crossval_settings import crossval_link, read_calls
from relunet.reporting.tables import RELATION

#: the training settings a recipe is named by (the others, such as dims, describe the data)
TRAIN_KEYS = frozenset(f.name for f in fields(TrainConfig)) | {"features"}
#: the model kind whose defaults a recipe is told against
RELATION_KIND = "relation"


def render_recipes(crossval_docs: Path, dataset_of: dict[str, str]) -> list[str]:
    """Markdown lines: a row per cross-validation of `dataset_of` whose Relation U-Net finished.

    `dataset_of` maps a cross-validation's name to the data it ran on, which orders the rows.
    Empty if none finished.
    """
    rows = []
    for name, dataset in sorted(dataset_of.items(), key=lambda item: (item[1], item[0])):
        mine = _relation(crossval_docs / name)
        if mine is not None:
            rows.append(_row(crossval_docs / name, dataset, mine))
    if not rows:
        return []
    return [
        "## The Relation U-Net's recipes",
        "",
        "Each cross-validation's Relation U-Net, named by how its training differs from the "
        f"`relunet train` defaults ({_defaults_in_words()}): Dice of `seg_a` and of the (s1+s2)/2 "
        "map (mean ± std over folds), and how well C ranks the cases by the Dice of `seg_a`, pooled "
        "over all folds' test cases, with the share of cases it sends to review where the score check "
        "ran (risk 0.1 of Dice < 0.8, on its page).",
        "",
        "| dataset | results | recipe | folds | Dice seg_a | Dice (s1+s2)/2 | Spearman (C) "
        "| e-AURC (C) | sent to review (C) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
    ]


def recipe_name(settings: dict) -> str:
    """How `settings` (a calls.json entry's) train the model unlike the defaults, in words."""
    defaults = {f.name: f.default for f in fields(TrainConfig)} | {"augment": default_augment(RELATION_KIND)}
    words = []
    for key, value in settings.items():
        if key not in TRAIN_KEYS or value == defaults.get(key):
            continue
        if key == "epochs":
            words.append(f"{value} epochs")
        elif key == "lr_step":
            words.append(f"lr halved every {value}")
        elif key == "augment":
            words.append("augmented" if value else "not augmented")
        elif key == "pairing":
            words.append(f"{value} pairs")
        elif key == "features":
            words.append("widths " + "-".join(str(v) for v in value))
        else:
            words.append(f"{key} {value}")
    return ", ".join(words) or "the `relunet train` defaults"


def _defaults_in_words() -> str:
    train = TrainConfig()
    augment = "augmented" if default_augment(RELATION_KIND) else "no augmentation"
    return (
        f"{train.epochs} epochs of {train.samples_per_epoch} pairs, learning rate halved every "
        f"{train.lr_step}, {train.pairing} pairs, loss {train.loss}, {augment}"
    )


def _relation(folder: Path) -> dict | None:
    path = folder / "summary.json"
    return json.loads(path.read_text()).get(RELATION) if path.is_file() else None


def _row(folder: Path, dataset: str, mine: dict) -> str:
    """The table row of `folder`, whose Relation U-Net's summary.json entry is `mine`."""
    calls = read_calls(folder)
    recipe = recipe_name(calls[-1]["settings"]) if calls else "—"
    return (
        f"| {dataset} | {crossval_link(folder.name)} | {recipe} | {mine.get('n_folds', '—')} | "
        f"{_pm(mine, 'dice_seg_a')} | {_pm(mine, 'dice_s1s2')} | {_number(mine, 'pooled_spearman', 3)} | "
        f"{_number(mine, 'pooled_eaurc', 4)} | {_sent_to_review(folder)} |"
    )


def _number(summary: dict, key: str, digits: int) -> str:
    return f"{summary[key]:.{digits}f}" if key in summary else "—"


def _pm(summary: dict, dice_key: str) -> str:
    if f"{dice_key}_mean_mean" not in summary:
        return "—"
    return f"{summary[f'{dice_key}_mean_mean']:.3f} ± {summary[f'{dice_key}_mean_std']:.3f}"


def _sent_to_review(folder: Path) -> str:
    """The mean share of cases the self-pair's C flags in the folder's score check, or "—"."""
    path = folder / "scores.json"
    if not path.is_file():
        return "—"
    entries = json.loads(path.read_text())["entries"]
    share = next((e.get("flagged") for e in entries if (e["method"], e["score"]) == (RELATION, "C")), None)
    return "—" if share is None else f"{share:.1%}"
