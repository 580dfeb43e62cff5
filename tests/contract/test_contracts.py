"""Contract tests over every option file: what each embedder and metric promises, checked once for all.

Embedders (``bench/configs/embedder/*.yaml``): offline, with no weights anywhere, the error names the
config key to set; every constructor argument is in the id, declared as not changing outputs, or
recorded through a resolved alias (a weights path by its digest); every backend -- weight-free, weights
shipped as wheels, or random weights of its official architecture in the released layout
(``tests/tiny_embedders.py``) -- gives finite float32 ``(T, D)`` frames, ``embed_batch`` equals ``embed``,
classifiers one probability per class name, and its id moves with every value-affecting argument. Metrics (``bench/configs/metric/*.yaml``): the
same identity contract. Model adapters (``bench/configs/model/*.yaml``; generators on tiny random
checkpoints of their official architectures, ``tests/tiny_generators.py``): the offline message, the
identity contract, and ``gather``: one decodable file per item, generators at their rate and length,
a resumed run generates nothing, per-item seeds make outputs independent of batch composition, weights
come with sha256 digests. Backend-specific behaviour (parity with reference code) stays in the
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


#: settings that keep a contract check short (the shipped CREPE "full" takes ~45 s on 2 CPU cores here;
#: its parity with torchcrepe is tests/embedders/test_crepe.py)
QUICK = {("embedder", "crepe"): {"model": "tiny"}}


def _cfg(group: str, key: str) -> dict:
    node = OmegaConf.load(index(group)[key].path)[key]
    cfg = OmegaConf.to_container(OmegaConf.merge({"device": "cpu", "batch_size": 2, "seed": 0}, {"x": node}),
                                 resolve=True)["x"]
    return {**cfg, **QUICK.get((group, key), {})}


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


def _changed(name: str, value):
    """Another value of the same kind (derived params may compute with it)."""
    if name == "device":
        return "cpu:0"
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "_changed"
    if isinstance(value, dict):
        return {**value, "changed": 1}
    return ("changed", value)


def _id_moves_with_every_value_argument(obj) -> None:
    params = obj.params()
    json.dumps(params)
    for name in obj.value_params():
        other = copy.copy(obj)
        setattr(other, name, _changed(name, getattr(obj, name)))
        assert other.params() != params, f"{type(obj).__name__}.{name} does not reach the id"
    for arg, target in obj.param_aliases.items():
        unset = getattr(obj, arg, 0) is None  # an optional call argument is recorded once it is set
        assert target in params or unset or arg == "pca_checkpoint", f"alias {arg} -> {target} missing from params()"
    for name in obj.non_value_params:
        if name in init_params(type(obj))[0] and hasattr(obj, name):
            other = copy.copy(obj)
            setattr(other, name, _changed(name, getattr(obj, name)))
            assert other.params() == params, f"{name} is declared non-value but changes the id"


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 23000)]


@pytest.mark.parametrize("key", EMBEDDERS)
def test_embedder_output_and_identity_contract(key, clips, single_thread, tiny_embedder_overrides):
    emb = instantiate({**_cfg("embedder", key), **tiny_embedder_overrides(key)})
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


# -- model adapters ---------------------------------------------------------------------------------
MODELS = sorted(index("model"))
PROMPTS = [("p1", "slow sad piano song"), ("p2", "fast techno beat with drums and bass")]


def _has_weights(key: str) -> bool:
    cls = index("model")[key].load()
    return isinstance(cls, type) and "checkpoint" in init_params(cls)[0]


@pytest.mark.parametrize("key", [k for k in MODELS if _has_weights(k)])
def test_model_offline_message_names_its_config_key(key, monkeypatch, tmp_path):
    from bench.models.base import ModelUnavailable

    _no_weights_anywhere(monkeypatch, tmp_path)
    node = _cfg("model", key)
    with pytest.raises(Exception) as info:  # hydra wraps it; the pipeline unwraps ModelUnavailable
        instantiate(node)
    cause = info.value.__cause__ or info.value
    assert isinstance(cause, ModelUnavailable), repr(cause)
    assert node["model_id"] in str(cause) and f"model.{key}.checkpoint" in str(cause)


@pytest.fixture(scope="module")
def model_inputs(tmp_path_factory):
    """Prompts with paired clips (for the oracle) and a folder of "generated" clips named by prompt id."""
    import soundfile as sf

    from bench.prompts import Prompt

    root = tmp_path_factory.mktemp("model_inputs")
    (root / "outputs" / "gen").mkdir(parents=True)
    rng = np.random.default_rng(0)
    prompts = []
    for pid, text in PROMPTS:
        x = (0.1 * rng.standard_normal(8000)).astype(np.float32)
        sf.write(root / f"ref_{pid}.wav", x, 16000)
        sf.write(root / "outputs" / "gen" / f"{pid}.wav", x, 16000)
        prompts.append(Prompt(pid, text, str(root / f"ref_{pid}.wav")))
    return prompts, root / "outputs"


def _model(key: str, tiny_checkpoint, outputs, **override):
    from tests.tiny_generators import FAST

    node = _cfg("model", key)
    if key in FAST:
        kind, fast = FAST[key]
        node.update(checkpoint=str(tiny_checkpoint(kind)), **fast)
    elif key in ("folder", "folders"):
        node["path"] = str(outputs if key == "folders" else outputs / "gen")
    elif "duration_s" in node:
        node["duration_s"] = 0.25
    model = instantiate({**node, **override})
    if isinstance(model, dict):  # folders: one model per sub-folder
        ((_, model),) = model.items()
    return model


@pytest.mark.parametrize("key", MODELS)
def test_model_gather_and_identity_contract(key, tiny_checkpoint, model_inputs, tmp_path, single_thread):
    import soundfile as sf

    from bench.errors import ErrorLog
    from bench.models.base import Model

    prompts, outputs = model_inputs
    model = _model(key, tiny_checkpoint, outputs)
    errors = ErrorLog()
    out = model.gather(prompts, tmp_path / "a", errors, "set", progress=False)
    assert sorted(out) == ["p1", "p2"] and not errors.rows, errors.rows
    _id_moves_with_every_value_argument(model)
    if type(model).gather is not Model.gather:  # collects existing files
        assert all(sf.info(str(p)).frames > 0 for p in out.values())
        return
    assert model.n_generated == 2
    for path in out.values():
        info = sf.info(str(path))
        assert (info.samplerate, info.frames) == (model.sample_rate, round(model.duration_s * model.sample_rate))
    again = _model(key, tiny_checkpoint, outputs)
    assert again.gather(prompts, tmp_path / "a", errors, "set", progress=False) == out
    assert again.n_generated == 0 and not errors.rows  # resumed: nothing generated, no weights loaded
    alone = _model(key, tiny_checkpoint, outputs, batch_size=1)
    out1 = alone.gather(prompts, tmp_path / "b", errors, "set", progress=False)
    for iid in out:  # per-item seeds: a clip does not depend on the batch it was generated in
        np.testing.assert_allclose(sf.read(str(out1[iid]))[0], sf.read(str(out[iid]))[0], atol=1e-3)
    for role, ck in model.checkpoints().items():
        assert len(ck["sha256"]) == 64 and int(ck["sha256"], 16) >= 0, role


@pytest.mark.parametrize("key", EMBEDDERS)
def test_embedder_rate_is_its_own_or_refused_naming_the_key(key, tiny_embedder_overrides, single_thread):
    """A backend either works at any ``audio.sample_rate`` or refuses any rate but its network's, in one
    ValueError that names ``audio.sample_rate`` and the rate to set (``Embedder.require_rate``)."""
    cfg = {**_cfg("embedder", key), **tiny_embedder_overrides(key)}
    cfg["audio"] = {**(cfg.get("audio") or {}), "sample_rate": 11025}
    try:
        emb = instantiate(cfg)
    except Exception as exc:
        cause = exc.__cause__ or exc
        assert isinstance(cause, ValueError) and "audio.sample_rate=11025 (set audio.sample_rate: " in str(cause), (
            repr(cause)[:300])
        return
    assert emb.audio.sample_rate == 11025
    out = emb.embed((0.1 * np.random.default_rng(0).standard_normal(11025)).astype(np.float32))
    assert np.all(np.isfinite(out["emb"]))
