"""Pairing policies: which second input `x2` each training sample `x1` is paired with.

Every policy is seeded per epoch, so a resumed run draws the same pairs as an uninterrupted one.

- `independent` — the paper's protocol: `x2` drawn uniformly from all training samples.
- `mixed` — as `independent`, but a share `same_fraction` of the pairs are identical
  (`x2 = x1`), the case the network meets at test time in self-pair mode.
- `depth` — as `mixed`, but `x2` comes from a slice at about the same relative depth
  (slices of volumes), so the two masks overlap and the `inter` head sees foreground.
"""

from __future__ import annotations

import numpy as np

POLICIES = ("independent", "mixed", "depth")
DEPTH_BINS = 10


def draw_partners(
    policy: str,
    rng: np.random.Generator,
    first: np.ndarray,
    depth: np.ndarray,
    same_fraction: float,
) -> np.ndarray:
    """Return the partner index of each sample in `first` (indices into the training set).

    Args:
        policy: one of `POLICIES`.
        rng: the epoch's generator.
        first: `(M,)` indices of the first inputs.
        depth: `(N,)` relative depth of every training sample in its volume (0.5 for pictures).
        same_fraction: share of identical pairs for `mixed` and `depth`.
    """
    n = len(depth)
    if policy == "independent":
        return rng.integers(0, n, size=len(first))
    if policy == "mixed":
        partners = rng.integers(0, n, size=len(first))
    elif policy == "depth":
        partners = _same_depth_partners(rng, first, depth)
    else:
        raise ValueError(f"unknown pairing policy {policy!r}; choose one of {POLICIES}")
    same = rng.random(len(first)) < same_fraction
    return np.where(same, first, partners)


def _same_depth_partners(rng: np.random.Generator, first: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """A partner drawn uniformly from the samples in the same depth bin as each first input."""
    bins = np.minimum((depth * DEPTH_BINS).astype(int), DEPTH_BINS - 1)
    by_bin = np.argsort(bins, kind="stable")
    counts = np.bincount(bins, minlength=DEPTH_BINS)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    own_bin = bins[first]
    offset = (rng.random(len(first)) * counts[own_bin]).astype(np.int64)
    return by_bin[starts[own_bin] + offset]
