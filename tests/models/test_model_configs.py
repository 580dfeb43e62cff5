"""Every model config composes, passes validation, and builds its adapter (or reports it unavailable offline
with a how-to naming its config key)."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

import bench
from bench.models.base import ModelUnavailable
from bench.pipeline import validate

HUB_MODELS = ["musicgen", "musicgen_medium", "audioldm", "audioldm2", "stable_audio_open", "riffusion"]


def _node(key: str, *extra: str):
    cfg = bench.compose([f"model=[{key}]", "prompts=[demo]", "reference=[]", "embedder=[]", "metric=[]", *extra])
    validate(cfg)  # every key is a constructor parameter
    return OmegaConf.to_container(cfg.model[key], resolve=True)


@pytest.mark.parametrize("key", HUB_MODELS)
def test_hub_models_offline_without_cache_are_unavailable(key, tmp_path, monkeypatch):
    pytest.importorskip("diffusers")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    node = _node(key)
    assert node["name"] == key and node["seed"] == 0
    with pytest.raises(Exception) as info:  # hydra wraps it; the pipeline unwraps ModelUnavailable
        instantiate(node)
    cause = info.value.__cause__ or info.value
    assert isinstance(cause, ModelUnavailable), repr(cause)
    assert node["model_id"] in str(cause) and f"model.{key}.checkpoint" in str(cause)


def test_folder_and_callable_configs(tmp_path):
    folder = instantiate(_node("folder", f"model.folder.path={tmp_path}"))
    assert folder.params()["pattern"] == "{id}.wav"
    call = instantiate(_node("callable", "model.callable.duration_s=0.25"))
    (w,) = call.generate([bench.prompts.Prompt("a", "piano")], [1])
    assert w.shape == (4000,)


def test_musiccaps_folder_experiment_composes(tmp_path):
    cfg = bench.compose(
        ["experiment=musiccaps_folder", f"model.folder.path={tmp_path}", f"reference.folder.path={tmp_path}"]
    )
    validate(cfg)
    assert list(cfg.model) == ["synth", "folder"] and list(cfg.prompts) == ["musiccaps"]
    assert cfg.prompts.musiccaps.reference_dir == str(tmp_path) and list(cfg.metric) == ["fad", "kl"]
