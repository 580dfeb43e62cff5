"""Model configs compose and pass validation (the offline message of each is a contract test:
tests/contract/test_contracts.py)."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import OmegaConf

import bench
from bench.pipeline import validate


def _node(key: str, *extra: str):
    cfg = bench.compose([f"model=[{key}]", "prompts=[demo]", "reference=[]", "embedder=[]", "metric=[]", *extra])
    validate(cfg)  # every key is a constructor parameter
    return OmegaConf.to_container(cfg.model[key], resolve=True)


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
