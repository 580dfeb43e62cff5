"""The package as users get it: build the wheel, install it into an empty target folder and run the
everyday path from a directory outside the checkout, with no YAML written by the user. A config group or
prompt manifest missing from the package data fails here.

    bench model=[folders] model.folders.path=<3 sub-folders> prompts=[musiccaps] \\
          reference=[folder] reference.folder.path=<audio>

The generated audio: 3 s excerpts of fadtk's sample clips (tests/golden/fadtk_samples, MIT), named
by their MusicCaps row (``mg-483.opus``) as fadtk ships them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy.signal import butter, sosfilt

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests" / "golden" / "fadtk_samples"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The wheel built from a copy of the package sources, installed with ``pip install --target``."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO / "bench", src / "bench", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for f in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / f, src / f)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", str(src), "-w", str(tmp / "dist")],
                   check=True, capture_output=True, timeout=300, cwd=tmp)
    wheel = next((tmp / "dist").glob("genaudio_bench-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp / "site"), str(wheel)],
                   check=True, capture_output=True, timeout=300, cwd=tmp)
    return tmp / "site"


def _env(site: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GENAUDIO_BENCH_CONFIGS")}
    env.update(PYTHONPATH=str(site), GENAUDIO_BENCH_HOME=str(home), GENAUDIO_BENCH_OFFLINE="1", HF_HUB_OFFLINE="1",
               OMP_NUM_THREADS="1")
    return env


def test_wheel_ships_configs_and_prompt_manifests(site):
    pkg = site / "bench"
    for rel in ("configs/config.yaml", "configs/model/folders.yaml", "configs/prompts/files.yaml",
                "configs/experiment/demo.yaml", "datasets/demo/prompts.csv", "datasets/musiccaps/musiccaps-public.csv",
                "datasets/musiccaps/musiccaps-refined-fadtk.csv", "datasets/audiocaps/audiocaps-test.csv",
                "datasets/audiocaps/LICENSE", "datasets/musiccaps/README.md"):
        assert (pkg / rel).is_file(), rel
    shipped = {p.relative_to(REPO / "bench" / "configs") for p in (REPO / "bench" / "configs").rglob("*.yaml")}
    assert shipped == {p.relative_to(pkg / "configs") for p in (pkg / "configs").rglob("*.yaml")}


def test_everyday_path_from_the_installed_wheel(site, tmp_path):
    out, ref, work = tmp_path / "outputs", tmp_path / "real", tmp_path / "empty_dir"
    for name in ("mg", "mlm"):
        (out / name).mkdir(parents=True)
        for f in SAMPLES.glob(f"{name}-*.opus"):
            shutil.copy(f, out / name / f.name)
    (out / "mg_lowpass").mkdir()  # a third system: low-passed MusicGen outputs for rows 483 and 974
    sos = butter(6, 2000, fs=48000, output="sos")
    for row in (483, 974):
        x, sr = sf.read(SAMPLES / f"mg-{row}.opus", dtype="float32")
        sf.write(out / "mg_lowpass" / f"mg_lowpass-{row}.wav", sosfilt(sos, x).astype(np.float32), sr)
    ref.mkdir()
    for f in SAMPLES.glob("mubert-*.opus"):
        shutil.copy(f, ref / f.name)
    work.mkdir()
    exe = site / "bin" / "bench"
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-c", "from bench.cli import main; main()"]
    args = ["model=[folders]", f"model.folders.path={out}", "prompts=[musiccaps]", "reference=[folder]",
            f"reference.folder.path={ref}"]
    res = subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=work, env=_env(site, tmp_path / "home"),
                         timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    run = work / "results" / "demo"  # run_name defaults to demo; relative output_dir: the working directory
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config"]["datasets_dir"].startswith(str(site))  # the manifests came from the wheel
    board = pd.read_csv(run / "leaderboard.csv")
    assert sorted(board["model"]) == ["mg", "mg_lowpass", "mlm"]
    assert (board["n_samples"] == 2).all() and board["same_n"].all()  # rows 483 and 974: one prompt set for all
    assert pd.to_numeric(board["fad@musicnn"]).notna().all() and pd.to_numeric(board["kad@musicnn"]).notna().all()
    impossible = {"clap_score@musicnn", "kl@vggish", "kl@clap", "clap_score@vggish", "kl.kl_ref_gen@musicnn"}
    assert not impossible & set(board.columns)
    assert manifest["coverage"]["musiccaps"] == {"mode": "intersect", "n_prompts": 5521,
                                                 "covered": {"mg": 3, "mg_lowpass": 2, "mlm": 3}, "n_common": 2}
    missing = pd.read_csv(run / "missing.csv", keep_default_na=False)
    assert set(missing.loc[missing["status"] == "excluded", "model"]) == {"mg", "mlm"}
    assert len(missing) == 3 * 5521 - (3 + 3 + 2) + 2  # every model's missing ids, plus the excluded 66 and 1619
    errors = pd.read_csv(run / "errors.csv", keep_default_na=False)
    gather = errors[errors["stage"] == "gather"]
    assert len(gather) == 3 and gather["reason"].str.startswith("no file for").all()
    assert "mg 3, mg_lowpass 2, mlm 3 of 5,521 prompts; scoring the 2 common ids" in res.stdout + res.stderr
