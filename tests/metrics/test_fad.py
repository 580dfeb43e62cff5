from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import linalg

from bench.metrics import fad as fadmod
from bench.metrics.fad import (
    RefGaussian,
    fad_bootstrap,
    fad_from_stats,
    fad_infinity,
    fit_inf,
    frechet_distance,
    per_sample_fad,
    subset_fads,
    trace_sqrt_product,
)
from bench.metrics.stats import GaussianStats


def _stats(x):
    return x.mean(0), np.cov(x, rowvar=False)


def _rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


@pytest.mark.parametrize(("d", "n1", "n2"), [(8, 200, 150), (64, 500, 400), (128, 1000, 1200)])
def test_matches_frechet_audio_distance_full_rank(random_gaussian, peer_fd, d, n1, n2):
    rng = np.random.default_rng(d)
    m1, s1 = _stats(random_gaussian(rng, n1, d))
    m2, s2 = _stats(random_gaussian(rng, n2, d, shift=0.3, scale=1.5))
    assert _rel(frechet_distance(m1, s1, m2, s2), peer_fd(m1, s1, m2, s2)) < 1e-6


@pytest.mark.parametrize(("d", "n1", "n2"), [(64, 30, 500), (64, 500, 20), (96, 40, 50)])
def test_matches_frechet_audio_distance_rank_deficient(random_gaussian, peer_fd, d, n1, n2):
    rng = np.random.default_rng(n1 + n2)
    m1, s1 = _stats(random_gaussian(rng, n1, d))
    m2, s2 = _stats(random_gaussian(rng, n2, d, shift=0.1))
    assert _rel(frechet_distance(m1, s1, m2, s2), peer_fd(m1, s1, m2, s2)) < 1e-6


def test_matches_fadtk_formula(random_gaussian, fadtk_fd):
    rng = np.random.default_rng(5)
    for n in (40, 300):
        m1, s1 = _stats(random_gaussian(rng, n, 32))
        m2, s2 = _stats(random_gaussian(rng, 250, 32, shift=0.5))
        assert _rel(frechet_distance(m1, s1, m2, s2), fadtk_fd(m1, s1, m2, s2)) < 1e-6


def test_fma_pop_statistics_against_peer(fma_pop, peer_fd):
    a = GaussianStats.load_npz(fma_pop, "vggish")
    b = GaussianStats.load_npz(fma_pop, "encodec-emb")
    assert _rel(frechet_distance(a.mu, a.cov, b.mu, b.cov), peer_fd(a.mu, a.cov, b.mu, b.cov)) < 1e-6
    c = GaussianStats.load_npz(fma_pop, "encodec-emb-48k")
    assert _rel(frechet_distance(c.mu, c.cov, b.mu, b.cov), peer_fd(c.mu, c.cov, b.mu, b.cov)) < 1e-6
    # a set against itself: 0 up to rounding of tr(S) = sum of eigenvalues
    assert abs(frechet_distance(a.mu, a.cov, a.mu, a.cov)) < 1e-9 * np.trace(a.cov)


def test_trace_sqrt_cross_checked_with_sqrtm(random_gaussian):
    rng = np.random.default_rng(6)
    s1 = np.cov(random_gaussian(rng, 300, 20), rowvar=False)
    s2 = np.cov(random_gaussian(rng, 300, 20), rowvar=False)
    ref = np.trace(linalg.sqrtm(s1 @ s2)).real
    assert trace_sqrt_product(s1, s2) == pytest.approx(ref, rel=1e-9)
    assert trace_sqrt_product(s2, s1) == pytest.approx(ref, rel=1e-9)


def test_closed_forms():
    rng = np.random.default_rng(7)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    a, b = rng.uniform(0.1, 3, size=10), rng.uniform(0.1, 3, size=10)
    # diagonal covariances: ||mu1 - mu2||^2 + sum (sqrt a - sqrt b)^2
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, rel=1e-12)
    # identical statistics give 0; one-dimensional inputs are accepted
    s = np.cov(rng.normal(size=(100, 10)), rowvar=False)
    assert frechet_distance(mu1, s, mu1, s) == pytest.approx(0.0, abs=1e-12)
    assert frechet_distance(1.0, 4.0, 3.0, 9.0) == pytest.approx(4.0 + 1.0)
    # a zero covariance against N(0, I): ||mu||^2 + D
    assert frechet_distance(np.zeros(4), np.zeros((4, 4)), np.ones(4), np.eye(4)) == pytest.approx(8.0)


def test_input_validation_and_eps_ridge(monkeypatch, caplog):
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.zeros(2), np.array([[1, 0], [0, np.nan]]), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    calls = {"n": 0}
    real = fadmod.trace_sqrt_product

    def flaky(s1, s2):
        calls["n"] += 1
        if calls["n"] == 1:
            raise linalg.LinAlgError("eigh did not converge")
        return real(s1, s2)

    monkeypatch.setattr(fadmod, "trace_sqrt_product", flaky)
    s = np.diag([1.0, 4.0])
    with caplog.at_level(logging.WARNING):
        got = frechet_distance(np.zeros(2), s, np.zeros(2), s, eps=1e-6)
    # with the ridge: tr(S1) + tr(S2) - 2 tr(S + eps I) = -4 eps
    assert got == pytest.approx(-4e-6, abs=1e-12)
    assert "adding" in caplog.text and calls["n"] == 2


def test_fad_from_stats_warns_when_rank_deficient(caplog):
    rng = np.random.default_rng(8)
    a = GaussianStats.from_frames(rng.normal(size=(10, 16)))
    b = GaussianStats.from_frames(rng.normal(size=(100, 16)))
    with caplog.at_level(logging.WARNING):
        v = fad_from_stats(a, b)
    assert "rank deficient" in caplog.text
    assert v == pytest.approx(frechet_distance(a.mu, a.cov, b.mu, b.cov))


def test_per_sample_fad_gram_trick(random_gaussian, peer_fd):
    rng = np.random.default_rng(9)
    ref_x = random_gaussian(rng, 400, 24)
    ref = RefGaussian(*_stats(ref_x))
    clips = [random_gaussian(rng, t, 24, shift=0.2) for t in (2, 3, 10, 24, 40)]
    got = per_sample_fad(clips, ref)
    for g, x in zip(got, clips):
        m, s = _stats(x)
        assert _rel(g, peer_fd(m, s, ref.mu, ref.sigma)) < 1e-6
        assert g == pytest.approx(frechet_distance(m, s, ref.mu, ref.sigma), rel=1e-9)
    # one frame: point mass, ||x - mu||^2 + tr(S_ref)
    x = rng.normal(size=(1, 24))
    assert ref.distance_frames(x) == pytest.approx(((x[0] - ref.mu) ** 2).sum() + np.trace(ref.sigma))


def test_ref_gaussian_rank_deficient_reference(random_gaussian, peer_fd):
    rng = np.random.default_rng(10)
    ref = RefGaussian(*_stats(random_gaussian(rng, 12, 32)))  # rank 11
    assert ref.factor.shape[1] <= 12
    m, s = _stats(random_gaussian(rng, 100, 32))
    assert _rel(ref.distance(m, s), peer_fd(m, s, ref.mu, ref.sigma)) < 1e-6


def test_bootstrap_replicates_equal_resampled_frames(random_gaussian):
    rng = np.random.default_rng(11)
    d = 6
    clips = [random_gaussian(rng, int(rng.integers(1, 6)), d) for _ in range(9)]
    ref = RefGaussian(*_stats(random_gaussian(rng, 200, d)))
    w = rng.integers(0, 3, size=(7, 9)).astype(float)
    w[:, 0] = np.maximum(w[:, 0], 1)
    want = []
    for row in w:
        x = np.concatenate([c for c, k in zip(clips, row) for _ in range(int(k))])
        want.append(frechet_distance(*_stats(x), ref.mu, ref.sigma))
    for max_bytes in (10**9, 1):  # one pass / one replicate and one clip per pass
        got = fad_bootstrap(lambda: iter(clips), w, ref, max_bytes=max_bytes)
        np.testing.assert_allclose(got, want, rtol=1e-8)


def test_fad_inf_fit_and_subsets(random_gaussian, peer_fd):
    ns = [100, 200, 400, 800]
    fit = fit_inf(ns, [3.0 + 50.0 / n for n in ns])
    assert (fit.score, fit.slope, fit.r2) == pytest.approx((3.0, 50.0, 1.0))
    rng = np.random.default_rng(12)
    clips = [random_gaussian(rng, 7, 5, shift=0.2) for _ in range(30)]
    frames = np.concatenate(clips)
    ref = RefGaussian(*_stats(random_gaussian(rng, 500, 5)))
    # fadtk score_inf: frames drawn with replacement, np.cov of the subset, FD against the reference
    idx = [rng.integers(0, len(frames), size=n) for n in (20, 60, 150)]
    counts = [np.bincount(i, minlength=len(frames)) for i in idx]
    got = subset_fads(lambda: iter(clips), ref, counts)
    want = [peer_fd(*_stats(frames[i]), ref.mu, ref.sigma) for i in idx]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    r1 = fad_infinity(lambda: iter(clips), ref, len(frames), steps=5, min_n=50, seed=3)
    r2 = fad_infinity(lambda: iter(clips), ref, len(frames), steps=5, min_n=50, seed=3)
    assert r1 == r2 and len(r1.points) == 5 and r1.points[0][0] == 50 and r1.points[-1][0] == len(frames)
