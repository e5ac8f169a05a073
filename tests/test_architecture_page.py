"""docs/architecture.md is the page `benchmarks/architecture_page.py` generates from the code."""

from __future__ import annotations

from conftest import load_benchmark

architecture_page = load_benchmark("architecture_page")


def test_committed_page_is_the_generated_one():
    assert architecture_page.PAGE.read_text(encoding="utf-8") == architecture_page.render(), (
        "docs/architecture.md is stale; run .venv/bin/python benchmarks/architecture_page.py"
    )
