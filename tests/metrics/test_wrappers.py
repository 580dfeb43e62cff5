"""Metric wrappers on in-memory embedding sets: values equal the pure functions on the same data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.metrics import REGISTRY, build_metric, metric_class, refcache
from bench.metrics.base import EmbeddingSet, Metric, MetricInput, MetricUnavailable
from bench.metrics.bootstrap import clip_weights, resample_indices
from bench.metrics.fad import FAD, FADInf, frechet_distance
from bench.metrics.kad import KAD, kad_replicates, kernel_audio_distance, median_pairwise_distance
from bench.metrics.prdc import PRDC, prdc
from bench.metrics.stats import GaussianStats

CONFIGS = Path(__file__).resolve().parents[2] / "bench" / "configs" / "metric"


def emb_set(name: str, emb: dict[str, np.ndarray]) -> EmbeddingSet:
    return EmbeddingSet(name, sorted(emb), load=lambda i: {"emb": emb[i]})


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    d = 6
    gen = {
        f"p{i}#{k}": (rng.normal(size=(int(rng.integers(2, 5)), d)) + 0.3).astype(np.float32)
        for i in range(12)
        for k in range(2)
    }
    ref = {f"r{i}": rng.normal(size=(3, d)).astype(np.float32) for i in range(40)}
    return gen, ref


@pytest.fixture(autouse=True)
def _fresh_refcache():
    refcache.clear()
    yield
    refcache.clear()


def _stack(emb):
    return np.concatenate([emb[k].astype(np.float64) for k in sorted(emb)])


def _means(emb):
    return np.stack([emb[k].astype(np.float64).mean(0) for k in sorted(emb)])


def test_fad_wrapper(data):
    gen, ref = data
    g, r = _stack(gen), _stack(ref)
    want = frechet_distance(g.mean(0), np.cov(g, rowvar=False), r.mean(0), np.cov(r, rowvar=False))
    inp = MetricInput(gen=emb_set("gen", gen), ref=emb_set("ref", ref), seed=3)
    res = FAD(n_bootstrap=20)(inp)
    assert res.value == pytest.approx(want, rel=1e-9)
    assert res.n == 24 and res.extras["n_frames"] == len(g) and res.extras["rank_deficient"] == 0
    clip = gen["p3#1"].astype(np.float64)
    per = frechet_distance(clip.mean(0), np.cov(clip, rowvar=False), r.mean(0), np.cov(r, rowvar=False))
    assert res.per_item["p3#1"] == pytest.approx(per, rel=1e-9)
    # replicate 0 = FAD of the frames of the resampled clips
    ids = sorted(gen)
    idx = resample_indices(clip_weights(ids, 20, 3)[0])
    x = np.concatenate([gen[ids[i]].astype(np.float64) for i in idx])
    rep0 = frechet_distance(x.mean(0), np.cov(x, rowvar=False), r.mean(0), np.cov(r, rowvar=False))
    assert res.replicates[0] == pytest.approx(rep0, rel=1e-8)
    assert len(res.replicates) == 20 and res.ci_low <= res.ci_high
    json.dumps(res.to_dict())
    # the same reference given as statistics only
    st = GaussianStats.from_frames(r)
    inp.ref = EmbeddingSet("ref-stats", [], stats=st.to_dict())
    assert FAD(n_bootstrap=0, per_sample=False)(inp).value == pytest.approx(want, rel=1e-9)


def test_fad_flags_rank_deficiency(data, caplog):
    gen, ref = data
    small = {k: gen[k] for k in sorted(gen)[:1]}  # <= 4 frames for a 6-dim covariance
    with caplog.at_level("WARNING"):
        res = FAD(n_bootstrap=0)(MetricInput(gen=emb_set("gen", small), ref=emb_set("ref", ref)))
    assert res.extras["rank_deficient"] == 1.0 and "rank deficient" in caplog.text


def test_fad_inf_wrapper(data):
    gen, ref = data
    inp = MetricInput(gen=emb_set("gen", gen), ref=emb_set("ref", ref))
    a, b = FADInf(steps=6, min_n=20)(inp), FADInf(steps=6, min_n=20)(inp)
    assert a.value == b.value and np.isfinite(a.value)
    assert set(a.extras) == {"slope", "r2", "n_frames"}


def test_kad_wrapper(data):
    gen, ref = data
    inp = MetricInput(gen=emb_set("gen", gen), ref=emb_set("ref", ref), seed=1)
    res = KAD(n_bootstrap=15, device="cpu")(inp)
    rm, gm = _means(ref), _means(gen)
    assert res.extras["bandwidth"] == pytest.approx(median_pairwise_distance(rm))
    assert res.value == pytest.approx(kernel_audio_distance(rm, gm, device="cpu"), rel=1e-10)
    w = clip_weights(sorted(gen), 15, 1)
    assert res.replicates[4] == pytest.approx(kad_replicates(rm, gm, w[4:5], res.extras["bandwidth"])[0], rel=1e-9)
    uniq = np.flatnonzero(w[4])  # copies aside, replicate 4 scores the distinct clips it drew
    assert kad_replicates(rm, gm, (w[4:5] > 0).astype(float), res.extras["bandwidth"])[0] == pytest.approx(
        kernel_audio_distance(rm, gm[uniq], device="cpu"), rel=1e-9
    )
    frames = KAD(pooling="frames", n_bootstrap=0, device="cpu")(inp)
    assert frames.value == pytest.approx(kernel_audio_distance(_stack(ref), _stack(gen), device="cpu"), rel=1e-10)
    fixed = KAD(bandwidth=2.0, n_bootstrap=0, device="cpu")(inp)
    assert fixed.value == pytest.approx(kernel_audio_distance(rm, gm, 2.0, device="cpu"), rel=1e-10)


@pytest.mark.parametrize("metric", [KAD(device="cpu"), PRDC()])
def test_embedding_metrics_reject_statistics_only_reference(data, metric):
    gen, ref = data
    st = GaussianStats.from_frames(_stack(ref)).to_dict()
    inp = MetricInput(gen=emb_set("gen", gen), ref=EmbeddingSet("ref", [], stats=st))
    with pytest.raises(MetricUnavailable, match="needs reference embeddings, not statistics"):
        metric(inp)
    with pytest.raises(MetricUnavailable, match="reference set"):
        metric(MetricInput(gen=emb_set("gen", gen)))


def test_prdc_wrapper(data):
    gen, ref = data
    inp = MetricInput(gen=emb_set("gen", gen), ref=emb_set("ref", ref), seed=2)
    res = PRDC(k=3, n_bootstrap=10)(inp)
    want = prdc(_means(ref), _means(gen), 3)
    assert res.value == pytest.approx(want["coverage"]) and res.extras == pytest.approx(want)
    slow = PRDC(k=3, n_bootstrap=10, cache_max_bytes=0)(inp)
    assert slow.replicates == pytest.approx(res.replicates)
    assert PRDC(k=3, value="density", n_bootstrap=0)(inp).value == pytest.approx(want["density"])


def test_reference_memo_is_keyed_by_content(data):
    gen, ref = data
    other = {k: v + 1.0 for k, v in ref.items()}  # same name and ids, other embedder
    a = FAD(n_bootstrap=0)(MetricInput(gen=emb_set("gen", gen), ref=emb_set("ref", ref)))
    b = FAD(n_bootstrap=0)(MetricInput(gen=emb_set("gen", gen), ref=emb_set("ref", other)))
    assert a.value != pytest.approx(b.value)


def test_registry_and_configs():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    files = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
    assert files == sorted(REGISTRY)
    for key in files:
        cfg = OmegaConf.merge({"device": "cpu", "batch_size": 2}, OmegaConf.load(CONFIGS / f"{key}.yaml"))
        assert list(OmegaConf.load(CONFIGS / f"{key}.yaml")) == [key]
        m = instantiate(cfg[key])
        assert isinstance(m, metric_class(key)) and isinstance(m, Metric)
        assert m.name == key
        json.dumps(m.params())
        assert m.id == build_metric(key, **{k: v for k, v in cfg[key].items() if k != "_target_"}).id
    with pytest.raises(KeyError):
        metric_class("fid")


def test_registry_rejects_a_key_defined_twice(tmp_path):
    from bench.errors import ConfigError
    from bench.registry import build_index

    (tmp_path / "a.yaml").write_text("fad:\n  _target_: bench.metrics.fad.FAD\n")
    (tmp_path / "b.yaml").write_text("fad:\n  _target_: bench.metrics.kad.KAD\n")
    (tmp_path / "c.yaml").write_text("kad:\n  n_bootstrap: 0\n")
    assert build_index([tmp_path / "a.yaml"])["fad"].load() is metric_class("fad")
    with pytest.raises(ConfigError, match=r"'fad' is defined twice: in .*b\.yaml and first in .*a\.yaml"):
        build_index([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    with pytest.raises(ConfigError, match="'kad' has no _target_"):
        build_index([tmp_path / "c.yaml"])
