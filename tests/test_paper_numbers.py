from pathlib import Path

import pytest

from relunet.reporting.paper import COLUMNS, paper_seg_a_dice, published, render_beside_paper

ROOT = Path(__file__).resolve().parents[1]
PAPER_MD = ROOT.parent / "shared" / "PAPER_NUMBERS.md"


def _markdown_table(text: str, title: str) -> dict[str, dict[str, list[float]]]:
    block = text.split(title)[1].split("\n## ")[0]
    rows = [line for line in block.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    cells = ([c.strip() for c in line.strip("|").split("|")] for line in rows[2:])
    return {
        row[0]: {h: [float(x) for x in c.split("±")] for h, c in zip(header[1:], row[1:], strict=True)}
        for row in cells
    }


@pytest.mark.skipif(not PAPER_MD.is_file(), reason="the paper's tables are not on this machine")
def test_transcribed_numbers_are_the_papers():
    text = PAPER_MD.read_text()
    table1, table2 = _markdown_table(text, "## Table 1"), _markdown_table(text, "## Table 2")
    ours = published()["datasets"]
    assert set(ours) == set(table1) == set(table2)
    for dataset, printed in ours.items():
        row1, row2 = table1[dataset], table2[dataset]
        assert [printed[k] for k in ("unet", "s1", "s2", "mean", "union", "inter")] == list(row1.values())
        assert printed["unet"] == row2["U-Net"]
        assert printed["mcdropout_n200"] == list(row2.values())[1]
        assert printed["anchors_train_n200"] == list(row2.values())[3]
        assert printed["anchors_test_n200"] == list(row2.values())[4]


def test_render_puts_ours_in_percent_beside_the_paper():
    paper = published()
    summary = {
        "unet": {"dice_seg_a_mean_mean": 0.8722, "dice_seg_a_mean_std": 0.0136},
        "relation_self_pair": {"dice_seg_a_mean_mean": 0.9, "dice_seg_a_mean_std": 0.01},
    }
    page = render_beside_paper(paper, {"mine": ("Hippocampus", summary)})
    assert "| Hippocampus | ours: [mine](crossval/mine/README.md) | 87.22 ± 1.36 | 90.00 ± 1.00 | — |" in page
    assert "| LiTS | ours: not run |" in page and "| BraTS | ours: not run |" in page
    assert "| Hippocampus | paper | 82.76 ± 0.42 |" in page
    header = next(line for line in page.splitlines() if line.startswith("| dataset"))
    assert header.count("|") == len(COLUMNS) + 3


def test_per_dataset_tables_take_the_papers_seg_a_numbers_for_the_same_data_only():
    hippocampus = paper_seg_a_dice("Task04_Hippocampus")
    assert hippocampus["unet"] == pytest.approx(0.8276)
    assert hippocampus["relation_self_pair"] == pytest.approx(0.8288)
    assert hippocampus["relation_anchors_test_n200"] == pytest.approx(0.8312)
    assert paper_seg_a_dice("ISIC2017_Task1_256") == {}  # the paper used ISIC 2018
