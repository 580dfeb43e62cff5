"""Every option file in bench/configs/ composes, and instantiates offline or says clearly why it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

import bench
from bench.checkpoints import CheckpointUnavailable
from bench.embedders.base import Embedder, EmbedderUnavailable
from bench.metrics.base import Metric
from bench.models.base import Model, ModelUnavailable
from bench.pipeline import ConfigError, validate
from bench.prompts import PromptSet
from bench.references import ReferenceSet

CONFIGS = Path(bench.__file__).resolve().parent / "configs"
GROUPS = {"model": Model, "prompts": PromptSet, "reference": ReferenceSet, "embedder": Embedder, "metric": Metric}
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONFIGS / g).glob("*.yaml"))]
#: what an option may raise offline; each carries a how-to message
EXPECTED = (EmbedderUnavailable, CheckpointUnavailable, ModelUnavailable, FileNotFoundError, MissingMandatoryValue)


def test_default_config_is_the_offline_demo():
    cfg = bench.compose([])
    validate(cfg)
    assert cfg.run_name == "demo"
    assert list(cfg.model) == ["oracle", "synth", "noise"]
    assert "musicnn" in cfg.embedder and "fad" in cfg.metric


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml")))
def test_experiments_compose_and_override_top_level_values(experiment, tmp_path):
    cfg = bench.compose([f"experiment={experiment}"])
    # experiments may leave user paths mandatory (???): fill those before validating
    for group in ("model", "reference"):
        for _key, node in (cfg.get(group) or {}).items():
            if OmegaConf.is_missing(node, "path"):
                node.path = str(tmp_path)
    validate(cfg)
    assert cfg.run_name == experiment


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}/{o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates_or_explains(group, option):
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    cfg = bench.compose([f"{group}=[{option}]"])
    node = cfg[group][option]  # nested under its own key, as the multi-select convention requires
    assert "_target_" in node
    try:
        obj = instantiate(node, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        assert isinstance(cause, EXPECTED), f"{group}/{option}: unexpected {type(cause).__name__}: {cause}"
        msg = str(cause)
        assert len(msg) > 20, msg
        return
    except MissingMandatoryValue as exc:  # e.g. folder paths the user must set
        assert "???" in OmegaConf.to_yaml(node) or "missing" in str(exc).lower()
        return
    assert isinstance(obj, GROUPS[group]), type(obj)


def test_unknown_top_level_key_lists_valid_keys():
    cfg = OmegaConf.to_container(bench.compose([]), resolve=False)
    cfg.pop("hydra", None)
    cfg["embeder"] = {}
    with pytest.raises(ConfigError, match="valid keys"):
        validate(OmegaConf.create(cfg))
