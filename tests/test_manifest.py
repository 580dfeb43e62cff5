"""bench/manifest.py: the run config's identity (config_hash) is the same on every machine for the same run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import bench
from bench.manifest import config_hash, config_identity
from bench.resources import PACKAGE_DIR


def _resolved(overrides: list[str]) -> dict:
    return OmegaConf.to_container(bench.compose(overrides), resolve=True)


def test_same_run_in_other_home_output_and_cache_folders_has_the_same_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home_a"))
    a = _resolved([])
    ident_a, hash_a = config_identity(a), config_hash(a)  # each run hashes its config where it resolved it
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "elsewhere" / "home_b"))
    b = _resolved([f"output_dir={tmp_path / 'out'}", f"cache_dir={tmp_path / 'c'}", "embed_io.num_workers=0",
                   "progress=false"])
    # the resolved configs name different folders (the demo reference set lives under the bench home) ...
    assert a["reference"]["demo"]["path"] != b["reference"]["demo"]["path"]
    assert a["cache_dir"] != b["cache_dir"]
    # ... and identify the same run
    assert ident_a == config_identity(b)
    assert hash_a == config_hash(b)
    assert ident_a["reference"]["demo"]["path"] == "${bench_home}/demo/reference"
    assert ident_a["datasets_dir"] == "${datasets_dir}"


@pytest.mark.parametrize("override", ["seed=1", "embedder=[musicnn]", "metric.fad.n_bootstrap=10",
                                      "reference.demo.path=/data/other_reference", "batch_size=4"])
def test_what_is_computed_changes_the_hash(override):
    assert config_hash(_resolved([override])) != config_hash(_resolved([]))


def test_a_root_inside_another_keeps_its_own_name():
    roots = {"pkg": "/site/bench", "data": "/site/bench/datasets"}
    ident = config_identity({"a": "/site/bench/datasets/x.csv", "b": ["/site/bench/configs"], "c": "/site/benchmark",
                             "d": "/site/bench"}, roots)
    assert ident == {"a": "${data}/x.csv", "b": ["${pkg}/configs"], "c": "/site/benchmark", "d": "${pkg}"}


def test_the_package_installed_elsewhere_gives_the_same_hash(tmp_path, subprocess_env, helpers):
    """A copy of the package in another folder (another machine's site-packages) composes the default run
    with other absolute paths and the same hash."""
    site = tmp_path / "other-site-packages"
    shutil.copytree(PACKAGE_DIR, site / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import json, bench; from omegaconf import OmegaConf; from bench.manifest import config_hash; "
            "r = OmegaConf.to_container(bench.compose([]), resolve=True); "
            "print(json.dumps([bench.__file__, r['datasets_dir'], config_hash(r)]))")
    env = {**subprocess_env, "PYTHONPATH": str(site), "GENAUDIO_BENCH_HOME": str(tmp_path / "home")}
    out = subprocess.run([helpers.python, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=tmp_path)
    where, datasets_dir, other_hash = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(where).parent == site / "bench" and Path(datasets_dir) == site / "bench" / "datasets"
    assert other_hash == config_hash(_resolved([]))
