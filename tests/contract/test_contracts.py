"""Contract tests over every option file: what each embedder and metric promises, checked once for all.

Embedders (``bench/configs/embedder/*.yaml``): offline, with no weights anywhere, the error names the
config key to set; every constructor argument is in the id, declared as not changing outputs, or
recorded through a resolved alias (a weights path by its digest); backends that build here (weight-free
or weights shipped as wheels) give finite float32 ``(T, D)`` frames, ``embed_batch`` equals ``embed``,
and their id moves with every value-affecting argument. Metrics (``bench/configs/metric/*.yaml``): the
same identity contract. Backend-specific behaviour (parity with reference code) stays in the
per-backend test files.
"""

from __future__ import annotations

import copy
import json
import os

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from bench.identity import init_params
from bench.registry import index

EMBEDDERS = sorted(index("embedder"))
METRICS = sorted(index("metric"))


def _cfg(group: str, key: str) -> dict:
    node = OmegaConf.load(index(group)[key].path)[key]
    return OmegaConf.to_container(OmegaConf.merge({"device": "cpu", "batch_size": 2, "seed": 0}, {"x": node}),
                                  resolve=True)["x"]


def _no_weights_anywhere(monkeypatch, tmp_path) -> None:
    """Every weights location empty: bench's home and cache, the HF / torch caches, $HOME, the env overrides."""
    for var in [v for v in os.environ if v.startswith("GENAUDIO_BENCH_")]:
        monkeypatch.delenv(var)
    for var in ("GENAUDIO_BENCH_HOME", "HF_HOME", "HF_HUB_CACHE", "TORCH_HOME", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setenv("GENAUDIO_BENCH_OFFLINE", "1")


@pytest.mark.parametrize("key", EMBEDDERS)
def test_embedder_offline_message_names_its_config_key(key, monkeypatch, tmp_path):
    _no_weights_anywhere(monkeypatch, tmp_path)
    try:
        emb = instantiate(_cfg("embedder", key))
    except Exception as exc:
        chain = [exc, exc.__cause__, exc.__context__]
        assert any(e is not None and f"embedder.{key}." in str(e) for e in chain), str(exc)[:300]
        return
    pytest.skip(f"{type(emb).__name__} needs no downloaded weights (weight-free or shipped as a wheel)")


@pytest.mark.parametrize("key", EMBEDDERS)
def test_embedder_constructor_arguments_are_accounted_for(key):
    cls = index("embedder")[key].load()
    names, _ = init_params(cls)
    assert "audio" in names and "device" in names
    stale = set(cls.param_aliases) - set(names)
    assert not stale, f"{cls.__name__}.param_aliases names no constructor argument: {sorted(stale)}"
    assert not set(cls.non_value_params) & set(cls.param_aliases)


def _built(group: str, key: str):
    try:
        return instantiate(_cfg(group, key))
    except Exception as exc:
        pytest.skip(f"{key} cannot be built here: {str(exc.__cause__ or exc)[:120]}")


def _id_moves_with_every_value_argument(obj) -> None:
    params = obj.params()
    json.dumps(params)
    for name in obj.value_params():
        other = copy.copy(obj)
        setattr(other, name, ("changed", getattr(obj, name)))
        assert other.id != obj.id, f"{type(obj).__name__}.{name} does not reach the id"
    for arg, target in obj.param_aliases.items():
        assert target in params or arg == "pca_checkpoint", f"alias {arg} -> {target} missing from params()"
    for name in obj.non_value_params:
        if name in init_params(type(obj))[0] and hasattr(obj, name):
            other = copy.copy(obj)
            setattr(other, name, ("changed", getattr(obj, name)))
            assert other.id == obj.id, f"{name} is declared non-value but changes the id"


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 23000)]


@pytest.mark.parametrize("key", EMBEDDERS)
def test_embedder_output_and_identity_contract(key, clips, single_thread):
    emb = _built("embedder", key)
    sr = emb.audio.sample_rate
    wavs = [w if sr == 16000 else np.resize(w, int(len(w) * sr / 16000)) for w in clips]
    one = [emb.embed(w) for w in wavs]
    many = emb.embed_batch(wavs)
    assert len(many) == len(wavs)
    for a, b in zip(one, many):
        e = a["emb"]
        assert e.ndim == 2 and e.shape[0] >= 1 and e.dtype == np.float32 and np.all(np.isfinite(e))
        assert set(a) == set(b)
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-5)
        if emb.class_names is not None and "probs" in a:
            assert a["probs"].shape == (len(emb.class_names),)
    _id_moves_with_every_value_argument(emb)


@pytest.mark.parametrize("key", METRICS)
def test_metric_identity_contract(key):
    metric = _built("metric", key)
    assert metric.name == key and metric.id.startswith(f"{key}-")
    assert not set(metric.param_aliases)  # metrics keep every value argument under its own name
    _id_moves_with_every_value_argument(metric)
