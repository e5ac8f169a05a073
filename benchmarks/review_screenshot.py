"""Open a review page in Chromium as a reviewer would and save a screenshot of it.

    python benchmarks/review_screenshot.py PRED/review.html docs/review_page.png [--case 2] [--mark a,c]

Waits until the case shown has rendered (2D image or NiiVue volume), optionally moves down
`--case` rows with the keyboard and marks the first rows (`a` accept, `c` needs correction), then
writes the screenshot. Chromium is Debian's (`/usr/lib/chromium/chromium`), driven by Playwright.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

from relunet.errors import InputError, guarded

CHROMIUM = Path("/usr/lib/chromium/chromium")
LOADED = "document.body.dataset.loaded && document.body.dataset.loaded === document.body.dataset.current"


def screenshot(page_path: Path, out: Path, rows_down: int = 0, marks: tuple[str, ...] = ()) -> None:
    """Render `page_path`, mark the first rows with `marks`, move `rows_down` rows, save `out`."""
    if not page_path.is_file():
        raise InputError(f"{page_path}: no review page; run `relunet review PRED` first")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(page_path.resolve().as_uri())
        page.wait_for_function(LOADED, timeout=120_000)
        for key in marks:
            page.keyboard.press(key)
            page.keyboard.press("j")
        for _ in marks:
            page.keyboard.press("k")
        for _ in range(rows_down):
            page.keyboard.press("j")
        page.wait_for_function(LOADED, timeout=120_000)
        page.wait_for_timeout(3000)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--case", type=int, default=0, help="rows to move down before the screenshot")
    parser.add_argument("--mark", default="", help="keys marking the first rows, e.g. 'c,a'")
    args = parser.parse_args()
    screenshot(args.page, args.out, args.case, tuple(k for k in args.mark.split(",") if k))


if __name__ == "__main__":
    guarded(main)
