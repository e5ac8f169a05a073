import numpy as np

from relunet.analysis.shift import measure, resized, variants
from relunet.evaluation.batch_shift import STATISTICS
from relunet.types import Case


def fake_versions(n: int, shift: float) -> dict:
    rng = np.random.default_rng(0)
    score = rng.uniform(0.6, 1.0, n)
    base = {"score": score, "dice": np.clip(score + rng.normal(0, 0.05, n), 0, 1)}
    stats = {s: rng.normal(0, 1, n) for s in STATISTICS}
    moved = {s: v + shift for s, v in stats.items()}
    return {"unshifted": {**base, **stats}, "moved": {**base, **moved}}


def test_a_moved_batch_is_warned_about_and_an_unshifted_one_rarely():
    result = measure(fake_versions(200, shift=3.0), batch=30, repeats=40)
    assert result["moved"]["warned"] == 1.0
    assert result["unshifted"]["warned"] <= 0.1
    assert set(result["unshifted"]) == {"warned", "promise_broken", "mean_dice", "mean_score"}


def test_shifted_versions_keep_image_and_mask_aligned():
    rng = np.random.default_rng(1)
    case = Case(
        "a",
        rng.uniform(0, 255, (3, 40, 30)).astype(np.float32),
        np.zeros((40, 30), np.int64),
        None,
        "image2d",
    )
    for name, change in variants(3).items():
        shifted = change(case)
        assert shifted.image.shape[1:] == shifted.label.shape, name
        assert np.isfinite(shifted.image).all()
    assert "colour balance" not in variants(1)
    assert resized(case).image.shape[1:] == (24, 18)
