"""relunet.analysis.paired_dice and its script: where one method gains or loses Dice, case by case."""

import numpy as np
import pytest
from conftest import crossval_self_pair_and_unet, run_benchmark, write_pictures

from relunet.analysis import paired_dice
from relunet.errors import InputError


def test_paired_counts_agree_with_the_evaluated_dice(tmp_path):
    data = write_pictures(tmp_path / "pics", n_cases=10)
    crossval_self_pair_and_unet(data, tmp_path / "cv", [], epochs=1)
    rows = paired_dice.paired_cases(tmp_path / "cv", "relation_self_pair", "unet")
    assert len(rows) == 5 and {r["fold"] for r in rows} == {0}
    for row in rows:
        for method in ("relation_self_pair", "unet"):
            c = row[method]
            assert c["tp"] + c["fn"] == c["true"] and c["tp"] + c["fp"] == c["predicted"]
            if c["true"] + c["predicted"]:
                assert np.isclose(2 * c["tp"] / (c["true"] + c["predicted"]), c["dice"], atol=1e-6)

    stats = paired_dice.compare(rows, "relation_self_pair", "unet", "cv")
    diff = [r["relation_self_pair"]["dice"] - r["unet"]["dice"] for r in rows]
    assert np.isclose(stats["mean_difference"], np.mean(diff))
    assert sum(part["cases"] for part in stats["by_fifth"]) == 5
    assert stats["first_better"] + stats["second_better"] <= 1
    assert "| all | 5 |" in paired_dice.render(stats)

    fewer = write_pictures(tmp_path / "fewer", n_cases=2)
    with pytest.raises(InputError, match="has no case"):
        paired_dice.paired_cases(tmp_path / "cv", "relation_self_pair", "unet", data=fewer)


def test_a_folder_without_models_is_one_line(tmp_path):
    args = [tmp_path / "nothing", "relation_self_pair", "unet", "--docs", tmp_path / "docs"]
    result = run_benchmark("paired_dice", *args)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert not (tmp_path / "docs").exists()
