"""docs/results.md as benchmarks/crossval_results.py renders it from published cross-validations."""

import json
import re
from pathlib import Path

from conftest import load_benchmark

from relunet.results_folder import MARKER

crossval_results = load_benchmark("crossval_results")
#: one runs.json entry as crossval_results.py writes it
RUN = {"command": "python benchmarks/crossval_results.py isic", "seconds": 60.0, "hardware": "x86_64 CPU"}


def summary(dice: float, dice_std: float, pearson_by_fold: list[float]) -> dict:
    """The few keys of one method's summary.json entry that the headline table reads."""
    mean = sum(pearson_by_fold) / len(pearson_by_fold)
    return {
        "dice_seg_a_mean_mean": dice,
        "dice_seg_a_mean_std": dice_std,
        "pearson_mean": mean,
        "pearson_std": 0.01,
        "pearson_by_fold": {str(k): v for k, v in enumerate(pearson_by_fold)},
    }


def publish(docs, name: str, methods: dict, epochs: int | None = 40) -> None:
    """A published cross-validation; `epochs` None: its settings leave the schedule at the default."""
    folder = docs / name
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(methods))
    settings = {} if epochs is None else {"epochs": epochs}
    (folder / "runs.json").write_text(json.dumps([RUN | {"settings": settings}]))


def test_at_a_glance_judges_the_dice_against_the_unets_spread_and_counts_pearson_wins(tmp_path):
    docs = tmp_path / "crossval"
    unet = summary(0.880, 0.007, [0.3, 0.4, 0.5])
    publish(docs, "above", {"unet": unet, "relation_self_pair": summary(0.890, 0.01, [0.6, 0.7, 0.8])})
    publish(docs, "short", {"unet": unet, "relation_self_pair": summary(0.8725, 0.01, [0.2, 0.7, 0.8])})
    rivals = {
        "unet": unet,
        "relation_self_pair": summary(0.875, 0.01, [0.6, 0.7, 0.4]),
        "ensemble_5": summary(0.89, 0.01, [0.5, 0.8, 0.9]),
    }
    publish(docs, "within", rivals, epochs=100)
    publish(docs, "no_relation", {"unet": unet})
    publish(docs, "default_schedule", {"unet": unet, "relation_self_pair": unet}, epochs=None)
    rows = {
        line.split("]")[0].lstrip("| ["): line
        for line in crossval_results._at_a_glance(docs)
        if line.startswith("| [")
    }
    assert sorted(rows) == ["above", "default_schedule", "short", "within"]
    assert "| 100 |" in rows["default_schedule"]  # TrainConfig's epochs where the settings are silent
    assert "| above |" in rows["above"] and "(self-pair higher on 3/3)" in rows["above"]
    assert "no, short by 0.0005" in rows["short"] and "(self-pair higher on 2/3)" in rows["short"]
    assert "| 100 |" in rows["within"] and "| within |" in rows["within"]
    assert "(self-pair higher on 1/3) |" in rows["within"]  # against the ensemble
    assert rows["above"].rstrip(" |").endswith("—")  # no ensemble in that cross-validation


def test_results_page_opens_with_the_headline_and_has_none_without_results(tmp_path):
    docs = tmp_path / "crossval"
    docs.mkdir()
    assert "At a glance" not in crossval_results.render_results(docs)
    publish(
        docs, "isic", {"unet": summary(0.88, 0.01, [0.3]), "relation_self_pair": summary(0.88, 0.01, [0.6])}
    )
    page = crossval_results.render_results(docs)
    assert page.index("## At a glance") < page.index("## isic")


def test_results_page_shows_the_paired_comparison_under_its_dataset(tmp_path):
    folder = tmp_path / "crossval" / "isic"
    (folder / "report").mkdir(parents=True)
    (folder / "report" / "tables.md").write_text("# Cross-validation\n\n## Table 1\n")
    (folder / "paired_relation_self_pair_vs_unet.md").write_text("# Paired Dice: a vs b\n\nmean -0.0072\n")
    page = crossval_results.render_results(tmp_path / "crossval")
    assert page.index("## isic") < page.index("#### Table 1") < page.index("### Paired Dice: a vs b")
    assert "mean -0.0072" in page


DOCS = Path(__file__).resolve().parents[1] / "docs"
#: a markdown link or image `](target)`, or an HTML `src=`/`href=`
LINK = re.compile(r"\]\(([^)\s]+)\)|(?:src|href)=\"([^\"]+)\"")


def links(page: Path) -> list[str]:
    """The local files a page links (no web addresses, anchors or inline data)."""
    found = [a or b for a, b in LINK.findall(page.read_text())]
    return [t.split("#")[0] for t in found if not t.startswith(("http:", "https:", "#", "data:", "mailto:"))]


def test_generated_pages_link_only_real_files():
    pages = [
        DOCS / "results.md",
        *DOCS.glob("crossval/*/report/*.md"),
        *DOCS.glob("crossval/*/report/*.html"),
    ]
    assert len(pages) > 1
    for page in pages:
        for target in links(page):
            path = page.parent / target
            assert path.is_file(), f"{page} links {target}, which does not exist"
            assert not path.name.startswith("."), f"{page} links {target}, a hidden (temporary) file"
            assert path.stat().st_size > 0, f"{page} links {target}, which is empty"


def test_no_hidden_or_temporary_file_in_docs():
    """Only the marker a results folder carries (what wrote it) may be hidden."""
    left = [
        p
        for p in DOCS.rglob("*")
        if (p.name.startswith(".") and p.name != MARKER) or ".tmp" in p.name or p.name.endswith("~")
    ]
    assert not left, f"temporary files left in docs/ (git rm them): {left}"


def test_results_page_lists_only_the_reports_figures(tmp_path):
    figures = tmp_path / "crossval" / "isic" / "report" / "figures"
    figures.mkdir(parents=True)
    for name in ("pearson.png", ".coverage.png._x1.tmp.png", "coverage.png.bak", "notes.png"):
        (figures / name).write_bytes(b"png")
    page = crossval_results.render_results(tmp_path / "crossval")
    assert [line for line in page.splitlines() if line.startswith("![")] == [
        "![pearson](crossval/isic/report/figures/pearson.png)"
    ]


def test_publish_copies_no_temporary_file(tmp_path):
    out, dest = tmp_path / "run", tmp_path / "docs"
    for name in (
        "summary.json",
        "report/tables.md",
        "report/figures/pearson.png",
        "report/report.html",
        "report/figures/.coverage.png._x1.tmp.png",
        "methods/unet/fold_0/per_case.csv",
        "methods/unet/fold_0/.per_case.csv._x2.tmp.csv",
    ):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("x")
    crossval_results._publish(out, dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == [
        "methods/unet/fold_0/per_case.csv",
        "report/figures/pearson.png",
        "report/tables.md",
        "summary.json",
    ]
