from __future__ import annotations

import logging

import numpy as np
import pytest

from bench.metrics.stats import GaussianStats, fadtk_stats_path, rank_deficient, stats_keys, warn_if_rank_deficient


def _chunks(rng, x, max_len=37):
    i = 0
    while i < len(x):
        t = int(rng.integers(1, max_len))
        yield x[i : i + t]
        i += t


def test_streaming_equals_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 12)) @ rng.normal(size=(12, 12)) + 3.0
    st = GaussianStats(buffer_rows=100)
    for c in _chunks(rng, x):
        st.update(c.astype(np.float32))
    x32 = x.astype(np.float32).astype(np.float64)
    assert st.n == 5000
    np.testing.assert_allclose(st.mu, x32.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(st.cov, np.cov(x32, rowvar=False), rtol=1e-10, atol=1e-12)


def test_merge_of_shards_equals_whole():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3001, 6)) * [1, 2, 3, 4, 5, 6] + 10
    shards = [x[:1], x[1:900], x[900:900], x[900:]]
    total = GaussianStats()
    for s in shards:
        part = GaussianStats(dim=6)
        if len(s):
            part.update(s)
        total.merge(part)
    np.testing.assert_allclose(total.mu, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(total.cov, np.cov(x, rowvar=False), rtol=1e-10)
    assert total.n == 3001


def test_weights_equal_repeated_frames():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 4))
    w = rng.integers(0, 4, size=50)
    st = GaussianStats.from_frames(x, w)
    rep = np.repeat(x, w, axis=0)
    assert st.n == w.sum()
    np.testing.assert_allclose(st.cov, np.cov(rep, rowvar=False), rtol=1e-10)
    np.testing.assert_allclose(st.mu, rep.mean(0), rtol=1e-12)


def test_large_offset_is_stable():
    # naive sum-of-squares loses everything at mean 1e6, std 1; the pairwise update does not
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20000, 3)) + 1e6
    st = GaussianStats(buffer_rows=512)
    for c in np.array_split(x, 97):
        st.update(c)
    ref = np.cov(x - x.mean(0), rowvar=False)
    np.testing.assert_allclose(st.cov, ref, rtol=1e-8, atol=1e-8)


def test_npz_roundtrip_ours_and_fadtk_layout(tmp_path):
    rng = np.random.default_rng(4)
    st = GaussianStats.from_frames(rng.normal(size=(40, 5)))
    p = tmp_path / "ref.npz"
    st.save_npz(p)
    back = GaussianStats.load_npz(p)
    np.testing.assert_array_equal(back.mu, st.mu)
    np.testing.assert_array_equal(back.cov, st.cov)
    assert back.n == 40
    multi = tmp_path / "multi.npz"
    st.save_npz(multi, key="vggish")
    GaussianStats.from_frames(rng.normal(size=(10, 3))).save_npz(multi, key="clap")
    assert stats_keys(multi) == ["clap", "vggish"]
    np.testing.assert_array_equal(GaussianStats.load_npz(multi, "vggish").cov, st.cov)
    with pytest.raises(ValueError, match="several models"):
        GaussianStats.load_npz(multi)
    with pytest.raises(KeyError):
        GaussianStats.load_npz(multi, "mert")
    # fadtk's per-folder cache layout
    d = tmp_path / "stats" / "vggish"
    d.mkdir(parents=True)
    np.save(d / "mu.npy", st.mu)
    np.save(d / "cov.npy", st.cov)
    np.testing.assert_array_equal(GaussianStats.load_npz(d).cov, st.cov)


def test_sigma_key_and_unknown_n(tmp_path):
    p = tmp_path / "s.npz"
    np.savez(p, mu=np.zeros(3), sigma=np.eye(3))
    st = GaussianStats.load_npz(p)
    assert st.n == 0
    np.testing.assert_array_equal(st.cov, np.eye(3))
    with pytest.raises(ValueError):
        st.update(np.zeros((2, 3)))


def test_load_fadtk_fma_pop(fma_pop):
    keys = stats_keys(fma_pop)
    assert "vggish" in keys and "clap-laion-audio" in keys
    st = GaussianStats.load_npz(fma_pop, "vggish")
    assert st.mu.shape == (128,) and st.cov.shape == (128, 128)
    with np.load(fma_pop) as z:
        np.testing.assert_array_equal(st.cov, z["vggish.cov"])
        np.testing.assert_array_equal(st.mu, z["vggish.mu"])


def test_fadtk_stats_path_is_none_or_file():
    p = fadtk_stats_path()
    assert p is None or p.is_file()


def test_rank_deficiency_warning(caplog):
    assert rank_deficient(10, 128) and not rank_deficient(129, 128) and not rank_deficient(0, 128)
    with caplog.at_level(logging.WARNING):
        assert warn_if_rank_deficient(50, 128, "generated set")
    assert "rank deficient" in caplog.text
    with pytest.raises(ValueError, match="at least 2"):
        _ = GaussianStats.from_frames(np.zeros((1, 3))).cov
