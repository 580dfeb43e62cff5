"""Scale-out: shards of the gather/embed work run in parallel by Hydra launchers (joblib locally,
submitit's local executor standing in for SLURM), then one normal run merges them: it recomputes
nothing and matches an unsharded run's leaderboard."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import bench

pytestmark = pytest.mark.usefixtures("single_thread")


def _overrides(root: Path, corpus: Path) -> list[str]:
    """A tiny experiment as Hydra overrides (noise + synth, 1 s clips, logmel, FAD without bootstrap)."""
    return [
        "model=[noise,synth]", "model.noise.duration_s=1", "model.synth.duration_s=1", "model.synth.sample_rate=16000",
        "prompts=[demo]", f"prompts.demo.path={corpus / 'prompts.csv'}", "prompts.demo.reference_column=reference",
        "prompts.demo.reference_template=null",
        "reference=[folder]", f"reference.folder.path={corpus / 'reference'}", "reference.folder.pattern=*.wav",
        "embedder=[logmel]", "embedder.logmel.n_mels=32", "embedder.logmel.segment_s=0.1",
        f"output_dir={root / 'results'}", f"cache_dir={root / 'cache'}", "run_name=sharded",
        "prepare_demo=false", "progress=false", "device=cpu", "report_formats=[]",
    ]


def _final_run(root: Path, corpus: Path) -> Path:
    cfg = bench.compose([*_overrides(root, corpus), "metric=[fad]", "metric.fad.n_bootstrap=0",
                         "stages=[gather,embed,score]"])
    return bench.run(cfg)


def _fad(run_dir: Path) -> pd.Series:
    return pd.read_csv(run_dir / "leaderboard.csv").set_index("model")["fad@logmel"].astype(float).sort_index()


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory, tiny_audio_dir, single_thread) -> pd.Series:
    return _fad(_final_run(tmp_path_factory.mktemp("unsharded"), tiny_audio_dir))


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_parallel_shards_then_merge(tmp_path, tiny_audio_dir, unsharded, helpers, subprocess_env, launcher):
    exe = Path(helpers.python).parent / "bench"
    cmd = [str(exe)] if exe.is_file() else [helpers.python, "-m", "bench.cli"]
    extra = ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else ["hydra.launcher.timeout_min=5"]
    argv = [*cmd, "-m", "shard.count=2", "shard.index=0,1", "stages=[gather,embed]", "metric=[]",
            f"hydra/launcher={launcher}", *extra, *_overrides(tmp_path, tiny_audio_dir)]
    res = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=subprocess_env, timeout=300)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]

    run_dir = tmp_path / "results" / "sharded"
    shards = [json.loads((run_dir / "shards" / f"{i}-of-2" / "manifest.json").read_text()) for i in (0, 1)]
    assert [s["shard"] for s in shards] == [{"index": 0, "count": 2}, {"index": 1, "count": 2}]
    gen = [s["counters"]["generated"] for s in shards]
    emb = [s["counters"]["embedded"] for s in shards]
    assert sum(gen) == 12 and min(gen) > 0  # 2 models x 6 prompts, split between the shards
    assert sum(emb) == 12 + 6 + 8 and min(emb) > 0  # + paired clips + reference clips
    assert len(list((run_dir / "audio").rglob("*.wav"))) == 12  # both shards wrote into the final run folder
    assert not (run_dir / "leaderboard.csv").exists()

    d = _final_run(tmp_path, tiny_audio_dir)
    assert d == run_dir
    c = json.loads((d / "manifest.json").read_text())["counters"]
    assert c["generated"] == 0 and c["embedded"] == 0 and c["embed_cache_hits"] == 26
    pd.testing.assert_series_equal(_fad(d), unsharded, rtol=1e-10)


def test_submitit_executor_calls_bench_run_directly(tmp_path, run_cfg, unsharded):
    """The same split with submitit's Python API (what a SLURM user without Hydra would write)."""
    import submitit

    ex = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="local")
    ex.update_parameters(timeout_min=5)
    cfgs = [run_cfg(tmp_path, stages=["gather", "embed"], shard={"index": i, "count": 2}) for i in (0, 1)]
    jobs = [ex.submit(bench.run, c) for c in cfgs]
    dirs = [j.result() for j in jobs]
    assert dirs[0] == dirs[1] == tmp_path / "results" / "tiny"
    d = bench.run(run_cfg(tmp_path, model={k: v for k, v in run_cfg(tmp_path)["model"].items() if k != "oracle"}))
    c = json.loads((d / "manifest.json").read_text())["counters"]
    assert c["embedded"] == 0 and c["generated"] == 0
    pd.testing.assert_series_equal(_fad(d), unsharded, rtol=1e-10)  # same models, clips and embedder settings
