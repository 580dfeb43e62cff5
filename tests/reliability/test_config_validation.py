"""Config mistakes fail fast, before any heavy work, with the valid choices in the message."""

from __future__ import annotations

import inspect
import subprocess
import time
from pathlib import Path

import pytest
from hydra.errors import MissingConfigException

import bench
from bench.errors import ConfigError
from bench.pipeline import accepted_params, check_group_overrides, locate_target


def _cli_wired() -> bool:
    import bench.cli

    return "check_group_overrides" in inspect.getsource(bench.cli)


def test_typo_in_top_level_key_lists_valid_keys(tmp_path, run_cfg):
    cfg = run_cfg(tmp_path)
    cfg["batchsize"] = cfg.pop("batch_size")
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['batchsize'\]") as exc:
        bench.run(cfg)
    assert "did you mean 'batch_size'" in str(exc.value) and "'cache_dir'" in str(exc.value)
    assert not (tmp_path / "results").exists()  # failed before writing anything


def test_typo_in_group_option_kwarg_names_the_option_file(tmp_path):
    cfg = bench.compose(["model=[synth]", "embedder=[logmel]", "metric=[fad]", "+model.synth.sampel_rate=16000",
                         f"output_dir={tmp_path}/results", f"cache_dir={tmp_path}/cache", "prepare_demo=false"])
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as exc:
        bench.run(cfg)
    msg = str(exc.value)
    assert "model.synth" in msg and "configs/model/synth.yaml" in msg and "'sampel_rate'" in msg
    assert "did you mean 'sample_rate'" in msg and "valid parameters" in msg and "'duration_s'" in msg
    assert time.perf_counter() - t0 < 10
    assert not (tmp_path / "results").exists()


def test_typo_inside_embedder_audio_spec(tmp_path, run_cfg):
    cfg = run_cfg(tmp_path)
    cfg["embedder"]["logmel"]["audio"] = {"sampel_rate": 16000}
    with pytest.raises(ConfigError, match=r"embedder\.logmel\.audio.*sampel_rate.*did you mean 'sample_rate'"):
        bench.run(cfg)
    cfg["embedder"]["logmel"]["audio"] = {"mono": "avg"}
    with pytest.raises(ConfigError, match=r"mono must be one of \['mean', 'first', 'none'\]"):
        bench.run(cfg)


def test_unknown_target_lists_group_options(tmp_path, run_cfg):
    cfg = run_cfg(tmp_path)
    cfg["embedder"] = {"vgish": {"_target_": "bench.embedders.vgish.VGGishEmbedder"}}
    with pytest.raises(ConfigError, match=r"cannot be imported|has no attribute") as exc:
        bench.run(cfg)
    assert "available embedder options" in str(exc.value) and "'logmel'" in str(exc.value)
    cfg["embedder"] = {"lm": {"_target_": "bench.embedders.logmel.LogMelEmbeder"}}
    with pytest.raises(ConfigError, match="did you mean 'LogMelEmbedder'"):
        bench.run(cfg)


def test_missing_mandatory_value_and_bad_shard(tmp_path, run_cfg):
    cfg = bench.compose(["reference=[folder]", "embedder=[logmel]", "metric=[fad]", f"output_dir={tmp_path}",
                         "prepare_demo=false"])
    with pytest.raises(ConfigError, match=r"mandatory value\(s\) not set: \['reference.folder.path'\]"):
        bench.run(cfg)
    cfg = run_cfg(tmp_path)
    cfg["prompts"]["tiny"]["path"] = "${reference.tiny.folder}"  # interpolation to a key that does not exist
    with pytest.raises(ConfigError, match=r"config does not resolve.*reference\.tiny\.folder"):
        bench.run(cfg)
    with pytest.raises(ConfigError, match=r"shard.index must be in \[0, shard.count\)"):
        bench.run(run_cfg(tmp_path, shard={"index": 2, "count": 2}))
    with pytest.raises(ConfigError, match="unknown shard key"):
        bench.run(run_cfg(tmp_path, shard={"index": 0, "cout": 2}))
    with pytest.raises(ConfigError, match="on_error must be"):
        bench.run(run_cfg(tmp_path, on_error="ignore"))


def test_group_option_typo_lists_options():
    with pytest.raises(ConfigError, match=r"unknown embedder option\(s\) \['vgish'\]") as exc:
        check_group_overrides(["embedder=[vgish,logmel]"])
    assert "did you mean 'vggish'" in str(exc.value) and "'logmel'" in str(exc.value)
    with pytest.raises(ConfigError, match=r"\['nosie'\]"):
        check_group_overrides(["model=[synth],[nosie]"])  # a multirun sweep of lists
    check_group_overrides(["embedder=[logmel]", "model=[]", "metric=fad,kad", "hydra/launcher=joblib", "seed=1"])
    if _cli_wired():
        with pytest.raises(ConfigError, match="available embedder options"):
            bench.compose(["embedder=[vgish]"])
    else:  # Hydra alone only says it could not load the option
        with pytest.raises(MissingConfigException, match="embedder/vgish"):
            bench.compose(["embedder=[vgish]"])


def test_single_valued_group_typo_lists_options_in_hydra():
    with pytest.raises((MissingConfigException, ConfigError), match="logmel"):
        bench.compose(["embedder=vgish"])


def test_accepted_params_follows_kwargs_chain():
    from bench.embedders.logmel import LogMelEmbedder
    from bench.models.baselines import SynthModel
    from bench.references import ReferenceSet

    names, open_kw = accepted_params(SynthModel)
    assert not open_kw and {"sample_rate", "duration_s", "seed", "batch_size", "n_samples_per_prompt"} <= names
    names, open_kw = accepted_params(LogMelEmbedder)
    assert not open_kw and {"n_mels", "segment_s", "audio", "device", "batch_size"} <= names
    names, open_kw = accepted_params(ReferenceSet.from_folder)
    assert names == {"name", "path", "pattern", "limit", "license", "provenance"} and not open_kw
    assert locate_target("bench.references.ReferenceSet.from_folder") == ReferenceSet.from_folder


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["foo=1"], "unknown config key 'foo'"),
        (["+foo=1"], "valid keys"),
        (["embedder=vgish"], "did you mean 'vggish'"),
        (["embedder=[musicnn,vgish]"], "available embedder options"),
        (["+model.synth.sampel_rate=1", "model=[synth]", "metric=[fad]", "embedder=[logmel]"], "configs/model/synth.yaml"),
    ],
)
def test_cli_fails_fast_with_a_helpful_message(tmp_path, helpers, subprocess_env, args, expect):
    exe = Path(helpers.python).parent / "bench"
    cmd = [str(exe)] if exe.is_file() else [helpers.python, "-m", "bench.cli"]
    argv = [*cmd, *args, f"output_dir={tmp_path}/results", f"cache_dir={tmp_path}/cache", "prepare_demo=false"]
    t0 = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=subprocess_env, timeout=120)
    elapsed = time.perf_counter() - t0
    assert res.returncode == 2, res.stderr[-2000:]
    assert expect in res.stderr, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert elapsed < 60  # no model loading, no audio work
    assert not list(tmp_path.rglob("*.wav")) and not (tmp_path / "cache").exists()
