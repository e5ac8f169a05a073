"""results.md's table of the self-pair's default score against the strongest baselines."""

import json

from relunet.reporting.score_targets import render_score_targets


def _entry(method, score, spearman, eaurc):
    return {"method": method, "score": score, "spearman": spearman, "eaurc": eaurc}


def _summary(folder, s1s2=None, **dice):
    folder.mkdir(parents=True, exist_ok=True)
    summary = {m: {"dice_seg_a_mean_mean": d[0], "dice_seg_a_mean_std": d[1]} for m, d in dice.items()}
    if s1s2 is not None:
        summary["relation_self_pair"].update(dice_s1s2_mean_mean=s1s2[0], dice_s1s2_mean_std=s1s2[1])
    (folder / "summary.json").write_text(json.dumps(summary))


def _rows_of_plain(docs, entries, wins):
    """The table rows of the cross-validation "plain" after publishing its score check."""
    check = {"default_score": "C", "entries": entries, "fold_wins": wins}
    (docs / "plain" / "scores.json").write_text(json.dumps(check))
    return [line for line in render_score_targets(docs) if line.startswith("| [plain]")]


def test_rows_name_each_rival_its_source_its_fold_wins_and_the_dice_spread(tmp_path):
    _summary(tmp_path / "plain", relation_self_pair=(0.88, 0.005), unet=(0.87, 0.01))
    _summary(tmp_path / "augmented", ensemble_5=(0.90, 0.004), unet=(0.89, 0.005))
    entries = [
        _entry("relation_self_pair", "C", 0.52, 0.0117),
        _entry("relation_self_pair", "C_soft", 0.50, 0.012),
        _entry("unet", "learned", 0.56, 0.0137),
        _entry("unet", "C", 0.55, 0.0140),
        _entry("ensemble_5 (augmented)", "C", 0.35, 0.0141),
    ]
    wins = {
        "relation_self_pair C vs unet learned": {"folds": 5, "spearman": 2, "eaurc": 5},
        "relation_self_pair C vs ensemble_5 (augmented) C": {"folds": 5, "spearman": 5, "eaurc": 4},
    }
    rows = _rows_of_plain(tmp_path, entries, wins)
    assert rows == [
        "| [plain](crossval/plain/README.md) "
        "| ensemble of 5, pairwise Dice (augmented) | 0.520 / 0.350 | 0.0117 / 0.0141 "
        "| 5/5, 4/5 | 0.880 ± 0.005 / 0.900 ± 0.004 | no, short by 0.0160 |",
        "| [plain](crossval/plain/README.md) "
        "| U-Net, learned estimate | 0.520 / 0.560 | 0.0117 / 0.0137 | 2/5, 5/5 "
        "| 0.880 ± 0.005 / 0.870 ± 0.010 | above |",
    ]


def test_nothing_without_a_published_score_check(tmp_path):
    _summary(tmp_path / "plain", relation_self_pair=(0.88, 0.005))
    assert render_score_targets(tmp_path) == []


def test_the_s1s2_segmentation_gets_its_own_rows_with_its_own_dice(tmp_path):
    _summary(tmp_path / "plain", s1s2=(0.90, 0.003), relation_self_pair=(0.85, 0.005))
    _summary(tmp_path / "augmented", ensemble_5=(0.899, 0.003))
    entries = [
        _entry("relation_self_pair", "C", 0.67, 0.0099),
        _entry("relation_self_pair (s1+s2)/2", "C", 0.46, 0.0126),
        _entry("ensemble_5 (augmented)", "C", 0.35, 0.0141),
    ]
    wins = {
        "relation_self_pair C vs ensemble_5 (augmented) C": {"folds": 5, "spearman": 5, "eaurc": 4},
        "relation_self_pair (s1+s2)/2 C vs ensemble_5 (augmented) C": {"folds": 5, "spearman": 4, "eaurc": 3},
    }
    rows = _rows_of_plain(tmp_path, entries, wins)
    assert rows == [
        "| [plain](crossval/plain/README.md) "
        "| ensemble of 5, pairwise Dice (augmented) | 0.670 / 0.350 | 0.0099 / 0.0141 "
        "| 5/5, 4/5 | 0.850 ± 0.005 / 0.899 ± 0.003 | no, short by 0.0460 |",
        "| [plain](crossval/plain/README.md) "
        "(s1+s2)/2 | ensemble of 5, pairwise Dice (augmented) | 0.460 / 0.350 "
        "| 0.0126 / 0.0141 | 4/5, 3/5 | 0.900 ± 0.003 / 0.899 ± 0.003 | above |",
    ]
