"""User config folders outside the package: --config-dir, hydra.searchpath, $GENAUDIO_BENCH_CONFIGS and
./bench_configs are searched, their options pass the unknown-option check, and an option that repeats a
packaged option's name is rejected naming both files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import bench
from bench.config import group_options, use_config_dirs
from bench.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "configs"  # the worked example of a user config folder


@pytest.fixture(autouse=True)
def _reset_dirs(monkeypatch):
    monkeypatch.delenv("GENAUDIO_BENCH_CONFIGS", raising=False)
    yield
    use_config_dirs(())


def _user_dir(root: Path, name: str = "mine") -> Path:
    (root / "model").mkdir(parents=True)
    (root / "model" / f"{name}.yaml").write_text(
        f"{name}:\n  _target_: bench.models.folder.FolderModel\n  name: {name}\n  path: ???\n  pattern: '%id.wav'\n"
    )
    return root


def test_every_way_of_naming_a_user_folder(tmp_path, monkeypatch):
    d = _user_dir(tmp_path / "conf")
    with pytest.raises(ConfigError, match=r"unknown model option\(s\) \['mine'\]"):
        bench.compose(["model=[mine]"])
    assert list(bench.compose(["model=[mine,synth]"], config_dir=d).model) == ["mine", "synth"]
    assert list(bench.compose(["model=[mine]", f"hydra.searchpath=[file://{d}]"]).model) == ["mine"]
    monkeypatch.setenv("GENAUDIO_BENCH_CONFIGS", str(d))
    assert bench.compose(["model=[mine]"]).model.mine.pattern == "%id.wav"
    monkeypatch.delenv("GENAUDIO_BENCH_CONFIGS")
    work = tmp_path / "work"
    _user_dir(work / "bench_configs", "cwd_model")
    monkeypatch.chdir(work)
    assert list(bench.compose(["model=[cwd_model]"]).model) == ["cwd_model"]
    assert "cwd_model" in group_options("model") and "synth" in group_options("model")


def test_missing_user_folder_and_duplicate_option_names(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUDIO_BENCH_CONFIGS", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match=r"config folder .*nope \(\$GENAUDIO_BENCH_CONFIGS\) does not exist"):
        bench.compose([])
    monkeypatch.delenv("GENAUDIO_BENCH_CONFIGS")
    d = _user_dir(tmp_path / "conf", "synth")
    with pytest.raises(ConfigError) as exc:
        bench.compose(["model=[synth]"], config_dir=d)
    msg = str(exc.value)
    assert "option model/synth is defined twice" in msg and str(d / "model" / "synth.yaml") in msg
    assert "bench/configs/model/synth.yaml" in msg and "\n" not in msg


def test_worked_example_folder_composes_and_validates(tmp_path):
    cfg = bench.compose(["experiment=my_comparison", f"model.my_system.path={tmp_path}",
                         f"reference.folder.path={tmp_path}"], config_dir=EXAMPLE)
    from bench.config import validate

    validate(cfg)
    assert list(cfg.model) == ["my_system", "synth"] and cfg.prompts.musiccaps_eval.limit == 200


def test_cli_user_folder_option_check_and_error_names_the_user_file(tmp_path, helpers, subprocess_env):
    d = _user_dir(tmp_path / "conf")
    (d / "model" / "mine.yaml").write_text(
        "mine:\n  _target_: bench.models.folder.FolderModel\n  path: /x\n  patern: '%id.wav'\n")
    exe = Path(helpers.python).parent / "bench"
    for args in (["--config-dir", str(d)], [f"hydra.searchpath=[file://{d}]"]):
        res = subprocess.run([str(exe), *args, "model=[mine]", "embedder=[logmel]", "metric=[fad]",
                              f"output_dir={tmp_path}/out", "prepare_demo=false"],
                             capture_output=True, text=True, cwd=tmp_path, env=subprocess_env, timeout=120)
        assert res.returncode == 2, res.stderr[-2000:]
        assert "unknown parameter(s) ['patern']" in res.stderr and str(d / "model" / "mine.yaml") in res.stderr
        assert "did you mean 'pattern'" in res.stderr and "Traceback" not in res.stderr
