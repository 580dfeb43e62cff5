from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from bench.metrics.prdc import PRDCCache, knn_radii, prdc


def brute_force_prdc(real, fake, k):
    """clovaai/generative-evaluation-prdc ``compute_prdc``, transcribed with full scipy distance matrices."""

    def radii(x):
        d = cdist(x, x)
        return np.sort(d, axis=1)[:, k]  # (k+1)-th smallest, self included

    rr, fr = radii(real), radii(fake)
    d = cdist(real, fake)
    return {
        "precision": (d < rr[:, None]).any(0).mean(),
        "recall": (d < fr[None, :]).any(1).mean(),
        "density": (1.0 / k) * (d < rr[:, None]).sum(0).mean(),
        "coverage": (d.min(1) < rr).mean(),
    }


@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_brute_force(k):
    rng = np.random.default_rng(k)
    real = rng.normal(size=(150, 6))
    fake = rng.normal(size=(120, 6)) * 1.2 + 0.3
    got = prdc(real, fake, k, block=17)
    want = brute_force_prdc(real, fake, k)
    assert got == pytest.approx(want, abs=1e-12)


def test_hand_derived_1d_case():
    real = np.arange(5.0)[:, None]  # radii (k=1) all 1
    fake = np.array([[0.5], [10.0]])
    got = prdc(real, fake, k=1)
    # precision: 0.5 lies in the balls of 0 and 1, 10 in none; density = (2 + 0) / (1 * 2)
    # coverage: reals 0 and 1 have a fake within their radius; recall: fake radii are 9.5, every real is covered
    assert got == pytest.approx({"precision": 0.5, "recall": 1.0, "density": 1.0, "coverage": 0.4})


def test_identical_and_disjoint_sets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    same = prdc(x, x.copy(), 5)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = prdc(x, x + 100.0, 5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_multiplicities_equal_expanded_set_and_cache():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(80, 4))
    fake = rng.normal(size=(50, 4)) + 0.2
    rr = knn_radii(real, 3, block=13)
    cache = PRDCCache(real, fake, 3, rr, block=11)
    for _ in range(4):
        c = rng.integers(0, 3, size=50)
        want = brute_force_prdc(real, np.repeat(fake, c, axis=0), 3)
        assert prdc(real, fake, 3, c, rr, block=7) == pytest.approx(want, abs=1e-12)
        assert cache.evaluate(c) == pytest.approx(want, abs=1e-12)


def test_too_few_points():
    with pytest.raises(ValueError):
        prdc(np.zeros((3, 2)), np.ones((10, 2)), k=5)
