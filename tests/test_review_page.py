"""The review worklist page, built from tiny fake prediction folders and driven in real Chromium."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from relunet.errors import InputError
from relunet.reporting.review_page import render_header, write_review_page

CHROMIUM = Path("/usr/lib/chromium/chromium")
PROMISE = {"target_dice": 0.8, "risk": 0.1, "delta": 0.1, "coverage": 0.9, "threshold": 0.93}
SHIFT = {"warn": True, "message": "scores differ", "score_pvalue": 0.0021, "image_pvalue": 0.31}
#: JavaScript: the fraction of a WebGL canvas's pixels brighter than its dark background
NIIVUE_BRIGHT = """() => {
  const nv = window.reviewViewer;
  if (!nv || document.body.dataset.loaded !== document.body.dataset.current) return 0;
  nv.drawScene();
  const gl = nv.gl, w = gl.drawingBufferWidth, h = gl.drawingBufferHeight;
  const px = new Uint8Array(w * h * 4);
  gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
  let bright = 0, contour = 0, disagree = 0;
  for (let i = 0; i < px.length; i += 4) {
    const [r, g, b] = [px[i], px[i + 1], px[i + 2]];
    if (r + g + b > 90) bright++;
    if (r < 90 && g > 160 && b > 180) contour++;
    if (r > 180 && g < 110 && b > 120) disagree++;
  }
  return bright > 0.05 * w * h && contour > 20 && disagree > 20 ? bright / (w * h) : 0;
}"""
#: JavaScript: non-blank pixels of the current 2D picture and of its overlay
PICTURE_PIXELS = """() => {
  const count = (img, test) => {
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 0; i < px.length; i += 4) if (test(px[i], px[i + 1], px[i + 2], px[i + 3])) n++;
    return n;
  };
  const overlay = document.getElementById("picture-overlay");
  return {
    image: count(document.getElementById("picture-image"), (r, g, b) => r + g + b > 30),
    contour: count(overlay, (r, g, b, a) => a === 255 && r < 50 && g > 200),
    disagree: count(overlay, (r, g, b, a) => a && a < 255 && r > 200),
  };
}"""


def _disc(shape: tuple[int, ...], centre: tuple[float, ...], radius: float) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"))
    return np.sqrt(((grid - np.array(centre).reshape(-1, *[1] * len(shape))) ** 2).sum(0)) < radius


def _case_2d(images: Path, pred: Path, case_id: str, i: int) -> tuple[Path, str, str]:
    shape, centre = (40, 48), (20 + i % 3, 24 - i % 4)
    mask = _disc(shape, centre, 9 + i % 4)
    ring = _disc(shape, centre, 12 + i % 4) & ~_disc(shape, centre, 7)
    rgb = np.stack([mask * 120 + 80, mask * 60 + 60, 200 - mask * 90], -1).astype(np.uint8)
    image = images / f"{case_id}.{'jpg' if i % 2 else 'png'}"
    Image.fromarray(rgb).save(image)
    for folder, values in (("masks", mask), ("disagreement", ring)):
        Image.fromarray(values.astype(np.uint8) * 255).save(pred / folder / f"{case_id}.png")
    return image, f"masks/{case_id}.png", f"disagreement/{case_id}.png"


def _case_3d(images: Path, pred: Path, case_id: str, i: int) -> tuple[Path, str, str]:
    shape, affine = (24, 28, 20), np.diag([1.5, 1.2, 2.0, 1.0])
    centre = (12 + i, 14 - i, 10)
    mask = _disc(shape, centre, 6 + i)
    ring = _disc(shape, centre, 8 + i) & ~_disc(shape, centre, 4 + i)
    rng = np.random.default_rng(i)
    volume = (400 * _disc(shape, centre, 9 + i) + 300 * mask + rng.normal(200, 20, shape)).astype(np.float32)
    image = images / f"{case_id}.nii.gz"
    nib.save(nib.Nifti1Image(volume, affine), image)
    for folder, values in (("masks", mask), ("disagreement", ring)):
        nib.save(nib.Nifti1Image(values.astype(np.uint8), affine), pred / folder / f"{case_id}.nii.gz")
    return image, f"masks/{case_id}.nii.gz", f"disagreement/{case_id}.nii.gz"


def write_prediction(root: Path, n_cases: int, dims: int = 2, shift: dict | None = None) -> Path:
    """A calibrated prediction folder as `relunet predict` writes it, most doubtful first."""
    pred, images = root / "pred", root / "images"
    for folder in (images, pred / "masks", pred / "disagreement", pred / "cases"):
        folder.mkdir(parents=True)
    rows = []
    for i in range(n_cases):
        case_id = f"case_{(7 * i) % n_cases:03d}"
        image, mask, disagreement = (_case_2d if dims == 2 else _case_3d)(images, pred, case_id, i)
        c = 0.5 + 0.5 * i / n_cases
        flagged = c < PROMISE["threshold"]
        row = {
            "case_id": case_id,
            "C": c,
            "score": c,
            "estimated_dice": c - 0.05,
            "dice_low": c - 0.2,
            "dice_high": min(1.0, c + 0.05),
            "review": flagged if dims == 3 else str(flagged).lower(),  # predict: True; contract: true
            "foreground_voxels": 100,
            "mask": mask,
            "disagreement": disagreement,
        }
        rows.append(row)
        digest = hashlib.sha256(image.read_bytes()).hexdigest()
        record = {**row, "image": [str(image)], "image_sha256": [digest], "model": {"fold": 0}}
        (pred / "cases" / f"{case_id}.json").write_text(json.dumps(record))
    with (pred / "cases.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    record = {
        "calibrated": True,
        "promise": PROMISE,
        "n_cases": n_cases,
        "n_flagged": sum(str(r["review"]).lower() == "true" for r in rows),
        "shift": shift or {"warn": False, "message": "no difference found", "score_pvalue": 0.6},
    }
    (pred / "prediction.json").write_text(json.dumps(record))
    return pred


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium through Playwright; a failure, not a skip, when CI is set."""
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "the playwright package is not installed (make test installs it)"
    if reason is None and not CHROMIUM.is_file():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser):
    """Open a written page in a fresh browser context (its own localStorage); page errors fail the test."""
    contexts, errors = [], []

    def opened(path: Path):
        context = browser.new_context(accept_downloads=True, viewport={"width": 1360, "height": 860})
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(path.as_uri())
        _wait_loaded(page)
        return page

    yield opened
    for context in contexts:
        context.close()
    assert not errors


def _wait_loaded(page, timeout: float = 30_000) -> None:
    page.wait_for_function(
        "document.body.dataset.loaded && document.body.dataset.loaded === document.body.dataset.current",
        timeout=timeout,
    )


def _rows(page) -> list[dict]:
    return page.eval_on_selector_all(
        "#worklist tbody tr",
        "rows => rows.map(r => ({id: r.dataset.case, flagged: r.classList.contains('flagged'), "
        "current: r.classList.contains('current'), decision: r.querySelector('.decision').textContent}))",
    )


def _csv_ids(pred: Path) -> list[str]:
    with (pred / "cases.csv").open(newline="") as handle:
        return [r["case_id"] for r in csv.DictReader(handle)]


def test_2d_page_lists_cases_most_doubtful_first_with_flags_warning_and_overlays(tmp_path, open_page):
    pred = write_prediction(tmp_path, n_cases=10, shift=SHIFT)
    page_path = write_review_page(pred)
    assert page_path == pred / "review.html"
    page = open_page(page_path)
    rows = _rows(page)
    assert [r["id"] for r in rows] == _csv_ids(pred)
    assert [r["flagged"] for r in rows] == [True] * 9 + [False]
    assert page.inner_text("#n-flagged") == "9"
    # a record from before --guarantee: the high-probability promise
    assert (
        "at most 10% of the cases not flagged have Dice below 0.8, with probability 90%"
        in page.inner_text(".promise")
    )
    assert "an expert checks the 9 flagged cases and the other 1 go through unchecked" in page.inner_text(
        ".buys"
    )
    warning = page.inner_text(".warning")
    assert "may not keep its promise" in warning and "p = 0.0021" in warning and "p = 0.31" in warning
    pixels = page.evaluate(PICTURE_PIXELS)
    assert pixels["image"] > 1000 and pixels["contour"] > 200 and pixels["disagree"] > 1000
    assert "niivue" not in page.evaluate("Object.keys(window)")  # no viewer bundle in a 2D page


@pytest.mark.parametrize("distinct, warned", [(1, True), (4, False)])
def test_header_warns_when_every_case_has_the_same_score(tmp_path, distinct, warned):
    pred = write_prediction(tmp_path, n_cases=4)
    record = {**json.loads((pred / "prediction.json").read_text()), "distinct_scores": distinct}
    header = render_header(pred, record, [{"flagged": False}] * 4)
    assert ('role="alert"' in header and "order says nothing" in header) == warned


def test_header_states_the_expected_promise(tmp_path):
    pred = write_prediction(tmp_path, n_cases=4)
    record = json.loads((pred / "prediction.json").read_text())
    record["promise"]["guarantee"] = "expected"
    header = render_header(pred, record, [{"flagged": True}] + [{"flagged": False}] * 3)
    assert "on average over calibrations, at most 10% of the cases not flagged have Dice below 0.8" in header
    assert "checks the 1 flagged case and the other 3 go through unchecked" in header
    everything = render_header(pred, record, [{"flagged": True}] * 4)
    assert "an expert checks every case; under this promise none can go through unchecked" in everything


def test_keyboard_moves_and_marks_cases_marks_survive_reload_and_export_as_csv(tmp_path, open_page):
    pred = write_prediction(tmp_path, n_cases=5)
    ids = _csv_ids(pred)
    page = open_page(write_review_page(pred, tmp_path / "out" / "worklist.html"))
    current = lambda: page.evaluate("document.body.dataset.current")  # noqa: E731
    assert current() == ids[0]
    for key, expected in (("j", 1), ("ArrowDown", 2), ("k", 1), ("ArrowUp", 0), ("ArrowUp", 0)):
        page.keyboard.press(key)
        assert current() == ids[expected], key
    page.keyboard.press("a")
    page.keyboard.press("j")
    page.keyboard.press("c")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("a")
    page.keyboard.press("u")  # cleared again
    decisions = [r["decision"] for r in _rows(page)]
    assert decisions == ["✓ accept", "✎ needs correction", "", "", ""]
    assert "2 of 5 reviewed" in page.inner_text("#progress")
    page.reload()
    _wait_loaded(page)
    assert [r["decision"] for r in _rows(page)] == decisions
    assert current() == ids[3] and _rows(page)[3]["current"]
    with page.expect_download() as download:
        page.click("#export")
    exported = list(csv.DictReader(Path(download.value.path()).read_text().splitlines()))
    assert [r["case_id"] for r in exported] == ids
    assert [r["decision"] for r in exported] == ["accept", "needs correction", "", "", ""]
    assert [r["flagged"] for r in exported] == ["true"] * 5
    assert float(exported[0]["score"]) == 0.5 and float(exported[0]["estimated_dice"]) == pytest.approx(0.45)


def test_3d_page_shows_volume_mask_and_disagreement_in_niivue_and_loads_the_case_viewed(tmp_path, open_page):
    pred = write_prediction(tmp_path, n_cases=3, dims=3)
    page_path = write_review_page(pred)
    page = open_page(page_path)
    ids = _csv_ids(pred)
    assert page.evaluate("window.reviewViewer.volumes.map(v => v.name)") == [
        f"{ids[0]}.nii.gz",
        "disagreement.nii.gz",
        "mask.nii.gz",
    ]
    assert page.evaluate(NIIVUE_BRIGHT) > 0.05
    page.keyboard.press("j")
    _wait_loaded(page)
    assert page.evaluate("window.reviewViewer.volumes[0].name") == f"{ids[1]}.nii.gz"
    assert page.evaluate(NIIVUE_BRIGHT) > 0.05
    page.keyboard.press("o")  # overlays off: the volume alone
    assert page.evaluate("window.reviewViewer.volumes.map(v => v.opacity)") == [1, 0, 0]


def test_a_model_without_relation_heads_shows_the_contour_and_no_disagreement(tmp_path, open_page):
    pred = write_prediction(tmp_path, n_cases=2)
    rows = list(csv.DictReader((pred / "cases.csv").read_text().splitlines()))
    columns = [c for c in rows[0] if c != "disagreement"]
    with (pred / "cases.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    page = open_page(write_review_page(pred))
    pixels = page.evaluate(PICTURE_PIXELS)
    assert pixels["contour"] > 200 and pixels["disagree"] == 0
    assert not page.is_visible("#legend-disagree")


def test_an_uncalibrated_folder_is_refused_in_one_line_and_nothing_is_written(tmp_path):
    pred = write_prediction(tmp_path, n_cases=2)
    record = json.loads((pred / "prediction.json").read_text())
    (pred / "prediction.json").write_text(json.dumps(record | {"calibrated": False, "promise": None}))
    with pytest.raises(InputError) as error:
        write_review_page(pred)
    message = str(error.value)
    assert "\n" not in message and str(pred) in message and "relunet calibrate RUN DATA" in message
    assert not (pred / "review.html").exists()


def test_missing_estimate_columns_or_images_are_one_line_naming_the_folder_or_file(tmp_path):
    pred = write_prediction(tmp_path, n_cases=2)
    table = (pred / "cases.csv").read_text()
    (pred / "cases.csv").write_text(table.replace("estimated_dice", "something_else"))
    with pytest.raises(InputError, match="relunet calibrate RUN DATA"):
        write_review_page(pred)
    (pred / "cases.csv").write_text(table)
    image = Path(json.loads((pred / "cases" / f"{_csv_ids(pred)[1]}.json").read_text())["image"][0])
    image.unlink()
    with pytest.raises(InputError) as error:
        write_review_page(pred)
    assert str(error.value).startswith(f"{image}: ") and "\n" not in str(error.value)
    image.write_bytes(b"not a picture")
    with pytest.raises(InputError, match="changed since `relunet predict`"):
        write_review_page(pred)
    assert not (pred / "review.html").exists()
