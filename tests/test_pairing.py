import numpy as np
import pytest

from relunet.data.pairing import DEPTH_BINS, draw_partners


def _draw(policy, seed=0, same_fraction=0.25, n=1000):
    depth = np.tile(np.linspace(0, 1, 50), n // 50)
    first = np.random.default_rng(seed).permutation(n)
    partners = draw_partners(policy, np.random.default_rng(seed), first, depth, same_fraction)
    return first, partners, depth


@pytest.mark.parametrize("policy", ["independent", "mixed", "depth"])
def test_policies_are_seeded(policy):
    assert np.array_equal(_draw(policy, seed=3)[1], _draw(policy, seed=3)[1])
    assert not np.array_equal(_draw(policy, seed=3)[1], _draw(policy, seed=4)[1])


def test_independent_pairs_are_rarely_identical():
    first, partners, _ = _draw("independent")
    assert np.mean(first == partners) < 0.01


def test_mixed_has_the_asked_share_of_identical_pairs():
    first, partners, _ = _draw("mixed", same_fraction=0.25)
    assert 0.2 < np.mean(first == partners) < 0.3


def test_depth_partners_share_the_depth_bin():
    first, partners, depth = _draw("depth", same_fraction=0.0)
    bins = np.minimum((depth * DEPTH_BINS).astype(int), DEPTH_BINS - 1)
    assert np.array_equal(bins[first], bins[partners])
    assert np.mean(first == partners) < 0.05


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="choose one of"):
        _draw("random")
