"""The verdict tables at the top of docs/results.md, from a small synthetic docs/crossval tree."""

import csv
import json

import numpy as np
import pytest

from relunet.analysis.review_promise import oracle_flagged, share_flagged
from relunet.errors import InputError
from relunet.reporting import verdict
from relunet.reporting.crossval_settings import published_settings
from relunet.reporting.verdict import expert_share, render_verdict, verdict_rows, verdict_sentences

FOLDS = 5
CASES = 44  # per fold: 220 pooled, enough to calibrate on 100 and test on the rest


def publish(docs, name, methods, table="Lesions", passes=None):
    """A published cross-validation whose every method scores each case with `methods[m](dice, fold)`."""
    folder = docs / name
    folder.mkdir(parents=True)
    verdict_line = f"verdict: {table}\n" if table else ""
    (folder / "settings.yaml").write_text(f"purpose: test\ndata_folder: pics\n{verdict_line}")
    rng = np.random.default_rng(0)
    dice = rng.uniform(0.5, 1.0, (FOLDS, CASES))
    for method, score_of in methods.items():
        for fold in range(FOLDS):
            fold_dir = folder / "methods" / method / f"fold_{fold}"
            fold_dir.mkdir(parents=True)
            with (fold_dir / "per_case.csv").open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["case_id", "dice_seg_a", "C"])
                for i, d in enumerate(dice[fold]):
                    writer.writerow([f"case_{fold}_{i:02d}", d, score_of(d, fold, i)])
    summary = {m: {"forward_passes_mean": (passes or {}).get(m, 1.0)} for m in methods}
    (folder / "summary.json").write_text(json.dumps(summary))


def exact(d, fold, i):
    return d


def noisy(d, fold, i):
    """A score that ranks the cases worse than `exact`, except on fold 0, where it is exact."""
    return d if fold == 0 else d + 0.3 * np.sin(7 * i + fold)


@pytest.fixture(autouse=True)
def few_splits(monkeypatch):
    monkeypatch.setattr(verdict, "SPLITS", 20)


def test_rows_are_the_methods_at_their_largest_count_the_self_pair_first(tmp_path):
    docs = tmp_path / "crossval"
    methods = {"unet": noisy, "relation_self_pair": exact, "mcdropout_n20": noisy, "mcdropout_n200": noisy}
    publish(docs, "lesions", methods, passes={"mcdropout_n200": 200.0})
    publish(docs, "ablation", {"relation_self_pair": noisy}, table=None)  # names no verdict table
    (docs / "lesions" / "methods" / "ensemble_5" / "fold_0").mkdir(parents=True)  # unfinished: no row
    tables = verdict_rows(docs, published_settings(docs))
    assert list(tables) == ["Lesions"]
    rows = tables["Lesions"]
    assert [r.method for r in rows] == ["relation_self_pair", "mcdropout_n200", "unet"]
    mine, mc = rows[0], rows[1]
    assert mine.crossval == "lesions" and mc.passes == 200.0
    assert mine.spearman == pytest.approx(1.0) and mine.eaurc == pytest.approx(0.0)
    assert mine.wins == {} and mc.wins == {"spearman": (0, 5), "eaurc": (0, 5)}
    fold_means = [
        np.mean(np.random.default_rng(0).uniform(0.5, 1.0, (FOLDS, CASES))[k]) for k in range(FOLDS)
    ]
    assert mine.dice == pytest.approx((np.mean(fold_means), np.std(fold_means)))


def test_the_table_marks_the_best_of_each_column_and_counts_fold_wins(tmp_path):
    docs = tmp_path / "crossval"

    def better_on_fold_0(d, fold, i):
        return d if fold == 0 else noisy(d, fold, i)

    def worse_on_fold_0(d, fold, i):
        return noisy(d, 1, i) if fold == 0 else d

    publish(
        docs,
        "lesions",
        {"relation_self_pair": worse_on_fold_0, "ensemble_5": better_on_fold_0},
        passes={"ensemble_5": 5.0},
    )
    rows = verdict_rows(docs, published_settings(docs))["Lesions"]
    ensemble = rows[1]
    assert ensemble.wins["spearman"] == (1, 5) and ensemble.wins["eaurc"] == (1, 5)
    lines = render_verdict({"Lesions": rows}, published_settings(docs))
    assert "The rows come from [lesions](crossval/lesions/README.md): test." in " ".join(lines)
    table = [line for line in lines if line.startswith("| `")]
    assert table[0].startswith("| `relation_self_pair` | [lesions](crossval/lesions/README.md) | **1** |")
    assert "| 5 |" in table[1] and " (1/5)" in table[1] and "(1/5)" not in table[0]
    assert f"**{rows[0].spearman:.3f}**" in table[0]  # the self-pair ranks 4 folds of 5 exactly
    assert lines.index("### Lesions") < lines.index(
        next(line for line in lines if line.startswith("**Verdict.**"))
    )


def test_the_verdict_says_where_the_self_pair_wins_and_loses_and_against_the_ensemble(tmp_path):
    docs = tmp_path / "crossval"
    publish(
        docs, "a", {"relation_self_pair": exact, "ensemble_5": noisy}, table="A", passes={"ensemble_5": 5.0}
    )
    publish(
        docs, "b", {"relation_self_pair": noisy, "ensemble_5": exact}, table="B", passes={"ensemble_5": 5.0}
    )
    (sentences,) = verdict_sentences(verdict_rows(docs, published_settings(docs)))
    assert sentences.count(". ") == 2 and sentences.startswith("**Verdict.**")
    assert "On A, the self-pair (one forward pass) ranks cases best (pooled e-AURC 0.0000)" in sentences
    assert "On B, the self-pair (one forward pass) ranks cases below `ensemble_5` (pooled e-AURC" in sentences
    assert sentences.endswith(
        "Where it loses, the winner costs more forward passes per case: `ensemble_5` 5."
    )


def test_a_method_in_two_cross_validations_of_one_table_is_an_error(tmp_path):
    docs = tmp_path / "crossval"
    publish(docs, "first", {"relation_self_pair": exact, "unet": noisy})
    publish(docs, "second", {"unet": noisy})
    with pytest.raises(InputError, match="unet is already a row of the Lesions verdict, from first"):
        verdict_rows(docs, published_settings(docs))


def test_no_table_without_a_cross_validation_naming_one_with_every_fold(tmp_path):
    docs = tmp_path / "crossval"
    publish(docs, "plain", {"relation_self_pair": exact}, table=None)
    publish(docs, "started", {}, table="Lesions")
    assert verdict_rows(docs, published_settings(docs)) == {}
    assert render_verdict({}, {}) == []


def test_expert_share_is_the_oracle_and_the_calibrated_share_of_review_promise():
    rng = np.random.default_rng(1)
    dice = rng.uniform(0.5, 1.0, 260)
    score = dice + rng.normal(0, 0.1, 260)
    shares = expert_share(score, dice, 0.8)
    expected, high = "checked (100 cal., expected)", "checked (100 cal., high-probability)"
    assert list(shares) == ["checked (oracle)", expected, high]
    assert shares["checked (oracle)"] == oracle_flagged(score, dice, 0.1, 0.8)
    assert shares[expected] == share_flagged(score, dice, 100, "expected", 0.8, 0.1, 0.1, verdict.SPLITS)
    assert shares["checked (oracle)"] <= shares[high] <= 1 and shares[expected] <= shares[high]
    assert expert_share(score[:150], dice[:150], 0.8)[expected] is None  # 50 left to test
