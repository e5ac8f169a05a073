"""docs/results.md as benchmarks/crossval_results.py renders it from published cross-validations."""

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import load_benchmark, run_benchmark, write_pictures

from relunet.errors import InputError
from relunet.reporting.crossval_page import render_crossval_page
from relunet.results_folder import MARKER

crossval_results = load_benchmark("crossval_results")
#: one calls.json entry as crossval_results.py writes it
CALL = {"command": "python benchmarks/crossval_results.py isic", "seconds": 60.0, "hardware": "x86_64 CPU"}


def publish(docs, name: str, settings: str | None = "purpose: a test\ndata_folder: pics\n") -> Path:
    """A published cross-validation with its calls.json and, unless None, its settings file."""
    folder = docs / name
    folder.mkdir(parents=True)
    (folder / "calls.json").write_text(json.dumps([CALL | {"settings": {"epochs": 40}}]))
    if settings is not None:
        (folder / "settings.yaml").write_text(settings)
    return folder


def test_results_page_lists_each_cross_validation_with_its_purpose_and_links_its_page(tmp_path):
    docs = tmp_path / "crossval"
    publish(docs, "isic", "purpose: every method on ISIC\ndata_folder: ISIC2017_Task1_256\n")
    publish(docs, "old", settings=None)
    page = crossval_results.render_results(docs)
    assert "| [isic](crossval/isic/README.md) | ISIC2017_Task1_256 | every method on ISIC |" in page
    assert "| [old](crossval/old/README.md) | — | — |" in page
    assert "## Verdict" not in page  # no cross-validation names a verdict table


def test_each_cross_validation_gets_a_page_with_its_settings_calls_tables_and_analyses(tmp_path):
    folder = publish(
        tmp_path / "crossval", "isic", "purpose: every method\ndata_folder: d\ntrain: {epochs: 40}\n"
    )
    (folder / "report").mkdir()
    (folder / "report" / "tables.md").write_text("# Cross-validation\n\n## Table 1\n")
    (folder / "paired_relation_self_pair_vs_unet.md").write_text("# Paired Dice: a vs b\n\nmean -0.0072\n")
    crossval_results.publish_pages(tmp_path)
    page = (folder / "README.md").read_text()
    assert page.startswith("# isic\n") and "Every method.\n" in page and '`{"epochs": 40}`' in page
    assert "- `python benchmarks/crossval_results.py isic`: 1.0 min on x86_64 CPU" in page
    assert page.index("## How it was run") < page.index("## Table 1") < page.index("## Paired Dice: a vs b")
    assert "mean -0.0072" in page and "Cross-validation" not in page
    assert (tmp_path / "results.md").read_text().startswith("# Results")


def test_the_readme_carries_the_verdict_of_results_md():
    readme, results = (DOCS.parent / "README.md").read_text(), (DOCS / "results.md").read_text()
    verdict = next(line for line in results.splitlines() if line.startswith("**Verdict.**"))
    assert crossval_results.with_verdict(readme, results) == readme
    assert verdict in readme and results.index(verdict) < 4000  # on the page's first screen
    assert len(results.splitlines()) <= 300


def test_the_verdict_replaces_the_old_one_between_the_markers_and_needs_them():
    start, end = crossval_results.README_MARKERS
    readme = f"# x\n{start}\nold\n{end}\nrest\n"
    updated = crossval_results.with_verdict(readme, "# Results\n\n**Verdict.** New.\n")
    assert updated.startswith(f"# x\n{start}\n**Verdict.** New.\n") and "old" not in updated
    assert updated.endswith(f"{end}\nrest\n")
    with pytest.raises(InputError, match="README.md"):
        crossval_results.with_verdict("# x\n", "**Verdict.** New.\n")


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
        *DOCS.glob("crossval/*/README.md"),
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


def test_a_cross_validations_page_lists_only_the_reports_figures(tmp_path):
    figures = tmp_path / "crossval" / "isic" / "report" / "figures"
    figures.mkdir(parents=True)
    for name in ("pearson.png", ".coverage.png._x1.tmp.png", "coverage.png.bak", "notes.png"):
        (figures / name).write_bytes(b"png")
    page = render_crossval_page(tmp_path / "crossval" / "isic", None)
    assert [line for line in page.splitlines() if line.startswith("![")] == [
        "![pearson](report/figures/pearson.png)"
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


def test_a_call_trains_with_the_declared_settings_and_records_them_beside_its_results(tmp_path):
    """`hippocampus` pins augmentation off (its published folds predate it): a new call keeps it off."""
    data = write_pictures(tmp_path / "pics", n_cases=6)
    docs, out = tmp_path / "docs", tmp_path / "cv"
    args = ["hippocampus", "--name", "tiny", "--methods", "unet", "--fold", "0", "--folds", "2"]
    options = ["--epochs", "1", "--samples-per-epoch", "4", "--device", "cpu"]
    result = run_benchmark("crossval_results", *args, *options, "--data", data, "--out", out, "--docs", docs)
    assert result.returncode == 0, result.stderr
    published = docs / "crossval" / "tiny"
    (call,) = json.loads((published / "calls.json").read_text())
    assert call["settings"] == {
        "dims": 2,
        "epochs": 1,
        "lr_step": 8,
        "augment": False,
        "samples_per_epoch": 4,
    }
    trained = yaml.safe_load((out / "crossval.yaml").read_text())["train"]
    assert trained["augment"] is False and trained["lr_step"] == 8
    declared = (DOCS / "crossval" / "hippocampus" / "settings.yaml").read_text()
    assert "verdict: Hippocampus\n" in declared  # the copy does not take the published folds' place
    assert (published / "settings.yaml").read_text() == declared.replace("verdict: Hippocampus\n", "")
    assert (published / "README.md").read_text().startswith("# tiny\n")
    assert "[tiny](crossval/tiny/README.md)" in (docs / "results.md").read_text()
