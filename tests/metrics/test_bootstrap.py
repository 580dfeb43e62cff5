from __future__ import annotations

import zlib

import numpy as np
import pytest

from bench.metrics.bootstrap import (
    bootstrap_by_indices,
    clip_weights,
    percentile_ci,
    prompt_resamples,
    resample_indices,
    weighted_mean_replicates,
)


def test_prompt_resamples_follow_the_documented_generator():
    ids = ["b", "a", "c", "a"]
    got = prompt_resamples(ids, 5, seed=7)
    uniq = ["a", "b", "c"]
    rng = np.random.default_rng([7, zlib.crc32("\n".join(uniq).encode())])
    np.testing.assert_array_equal(got, rng.integers(0, 3, size=(5, 3)))
    assert got.shape == (5, 3) and got.min() >= 0 and got.max() < 3


def test_resamples_depend_only_on_unique_sorted_ids_and_seed():
    a = prompt_resamples(["p3", "p1", "p2"], 50, 0)
    b = prompt_resamples(["p1", "p2", "p3", "p2"], 50, 0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, prompt_resamples(["p1", "p2", "p3"], 50, 1))
    assert not np.array_equal(a, prompt_resamples(["p1", "p2", "p4"], 50, 0))
    assert prompt_resamples(["p1"], 0, 0).shape == (0, 1)


def test_clip_weights_move_samples_of_a_prompt_together():
    ids = ["p2#0", "p1#0", "p2#1", "p3"]
    w = clip_weights(ids, 20, 3)
    r = prompt_resamples(["p2", "p1", "p2", "p3"], 20, 3)  # sorted unique: p1, p2, p3
    for b in range(20):
        counts = np.bincount(r[b], minlength=3)
        np.testing.assert_array_equal(w[b], [counts[1], counts[0], counts[1], counts[2]])
    np.testing.assert_array_equal(w[:, 0], w[:, 2])


def test_weighted_mean_replicates_equal_explicit_resamples():
    rng = np.random.default_rng(0)
    ids = [f"p{i}#{k}" for i in range(7) for k in range(2)]
    v = rng.normal(size=len(ids))
    w = clip_weights(ids, 30, 0)
    fast = weighted_mean_replicates(v, w)
    slow = bootstrap_by_indices(lambda idx: float(v[idx].mean()), w)
    np.testing.assert_allclose(fast, slow, rtol=1e-12)
    assert len(resample_indices(w[0])) == w[0].sum() == len(ids)


def test_percentile_ci():
    r = np.arange(1001, dtype=float)
    lo, hi = percentile_ci(r, 0.9)
    assert (lo, hi) == pytest.approx((np.percentile(r, 5), np.percentile(r, 95)))
    assert percentile_ci([np.nan, 1.0, 1.0]) == (1.0, 1.0)
    with pytest.raises(ValueError):
        percentile_ci(r, 1.5)


def test_basic_interval_reflects_around_the_estimate():
    from bench.metrics.base import MetricResult
    from bench.metrics.bootstrap import attach_bootstrap, bootstrap_ci

    r = np.arange(101, dtype=float) + 10.0  # replicates biased upwards of the estimate 50
    lo, hi = percentile_ci(r, 0.9)
    assert bootstrap_ci(r, 50.0, 0.9, "basic") == pytest.approx((100.0 - hi, 100.0 - lo))
    res = attach_bootstrap(MetricResult(value=50.0), r, 0.9, "percentile")
    assert (res.ci_low, res.ci_high) == pytest.approx((lo, hi)) and len(res.replicates) == 101
    with pytest.raises(ValueError):
        bootstrap_ci(r, 50.0, 0.9, "bca")


def test_shifted_ci_is_centred_on_the_estimate_and_keeps_the_spread():
    from bench.metrics.bootstrap import bootstrap_ci

    reps = np.arange(100, dtype=np.float64) + 50.0  # biased replicates: median 99.5, estimate 10
    lo, hi = bootstrap_ci(reps, 10.0, 0.9, "shifted")
    plo, phi = bootstrap_ci(reps, 10.0, 0.9, "percentile")
    assert lo < 10.0 < hi and not (plo <= 10.0 <= phi)
    assert hi - lo == pytest.approx(phi - plo)
    assert (lo + hi) / 2 == pytest.approx(10.0 + (plo + phi) / 2 - np.median(reps))
