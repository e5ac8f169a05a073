"""relunet.analysis.threshold: a cut-off of `seg_a` fitted on training cases, scored on the test fold."""

import numpy as np
from conftest import crossval_self_pair_and_unet, write_pictures

from relunet.analysis import threshold
from relunet.evaluation.crossval_cases import CrossvalCases


def test_cutoff_fitted_on_training_cases_and_scored_on_the_test_fold(tmp_path):
    data = write_pictures(tmp_path / "pics", n_cases=10)
    crossval_self_pair_and_unet(data, tmp_path / "cv", [], epochs=1)
    dataset = CrossvalCases(tmp_path / "cv")
    row = threshold.check_fold(dataset, tmp_path / "cv", "relation_seed0", 0, 3, "cpu")
    assert row["train_cases"] == 3 and row["test_cases"] == 5
    assert row["cutoff"] in threshold.CUTOFFS
    assert row["train_dice_at_cutoff"] >= row["train_dice_at_half"]  # the best on the training cases
    # at 0.5 the test Dice is the evaluated one
    per_case = (tmp_path / "cv/methods/relation_self_pair/fold_0/per_case.csv").read_text().splitlines()[1:]
    evaluated = np.mean([float(line.split(",")[1]) for line in per_case])
    assert np.isclose(row["test_dice_at_half"], evaluated)
    page = threshold.render("cv", [row], "python benchmarks/threshold_check.py runs/crossval/cv")
    assert "| relation_seed0 | 0 |" in page and "| relation_seed0 | mean |" in page
