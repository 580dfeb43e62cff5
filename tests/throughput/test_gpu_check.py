"""What scripts/gpu_check.sh runs on a GPU machine, run here on the CPU so that a device session is not the
first to find it broken: every random-weight embedder of benchmarks/random_embedders.py (the GPU tests'
builders) builds and embeds, and benchmarks/bench_gpu.py completes with no failed embedder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import random_embedders  # noqa: E402

from bench.embedders.base import EmbedderUnavailable  # noqa: E402


@pytest.mark.parametrize("name", sorted(random_embedders.BUILDERS))
def test_random_embedder_builds_and_embeds(name, tmp_path):
    """The builders write checkpoints the embedders accept (a file under a published name would be
    checksum-verified and refused) and the result embeds clips of two lengths to finite frames."""
    try:
        emb = random_embedders.build(name, "cpu", tmp_path, batch_size=2)
    except (ImportError, EmbedderUnavailable) as exc:  # not CheckpointMismatch: that is the bug to catch
        pytest.skip(f"{name}: {exc}")
    sr = emb.audio.sample_rate
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(int(sr * s))).astype(np.float32) for s in (1.2, 2.5)]
    out = emb.embed_batch(clips)
    assert len(out) == 2
    for o in out:
        frames = o["emb"]
        assert frames.ndim == 2 and frames.shape[0] >= 1 and frames.shape[1] > 0
        assert np.isfinite(frames).all()


@pytest.mark.slow
def test_bench_gpu_runs_on_cpu(tmp_path):
    """The throughput benchmark end to end at a tiny size: exit 0, every phase measured, nothing failed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "OUT": ""}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--device", "cpu", "--embedders",
           "vggish,clap", "--files", "3", "--legacy-files", "2", "--seconds", "1.5", "--batch-size", "2",
           "--workers", "2", "--out-dir", str(tmp_path), "--name", "smoke"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = json.loads((tmp_path / "smoke.json").read_text())["rows"]
    assert [r["embedder"] for r in rows] == ["vggish", "clap"]
    for r in rows:
        assert "error" not in r
        for phase in ("model_only", "end_to_end", "legacy", "new_subset"):
            assert r[phase]["x_realtime"] > 0, (r["embedder"], phase)
        assert r["end_to_end"]["embedded"] == 3 and r["legacy"]["embedded"] == r["new_subset"]["embedded"] == 2
    table = (tmp_path / "smoke.md").read_text()
    assert "| vggish |" in table and "| clap |" in table and "n/a | n/a | n/a" not in table


def test_cross_stack_benchmark_is_exact_on_one_stack(tmp_path, monkeypatch):
    """benchmarks/cross_stack.py (scripts/device_sim.sh runs it across two stacks): on one stack the second
    pass reproduces the first bit for bit, with the same ids (cache keys)."""
    import cross_stack

    monkeypatch.setattr(cross_stack, "build_weights", lambda folder: {})  # logmel and chroma need no weights
    assert cross_stack.main(["write", str(tmp_path / "d"), "--only", "logmel,chroma"]) == 0
    assert cross_stack.main(["compare", str(tmp_path / "d"), "--only", "logmel,chroma", "--out-dir",
                             str(tmp_path / "out")]) == 0
    rows = json.loads((tmp_path / "out" / "cross_stack.json").read_text())["rows"]
    assert [r["embedder"] for r in rows] == ["logmel", "chroma"]
    for r in rows:
        assert r["same_id"] and r["frames_rel"] == 0.0 and r["fad_rel"] == 0.0 and r["kad_rel"] == 0.0
        assert r["fad_a"] > 0 and r["kad_a"] != 0


def test_cross_stack_boards_finds_a_moved_cell(tmp_path):
    """``cross_stack.py boards``: the largest relative difference between two long leaderboards, and
    disagreement on a status."""
    import cross_stack

    head = "model,embedder,embedder_id,reference_hash,metric,value,ci_low,ci_high,status\n"
    a = head + "m,e,e-1,h,fad,2.0,1.5,2.5,ok\nm,e,e-1,h,kad,,,,unavailable\n"
    (tmp_path / "a.csv").write_text(a)
    (tmp_path / "b.csv").write_text(a.replace("2.0,1.5", "2.0002,1.5"))
    res = cross_stack.compare_boards(tmp_path / "a.csv", tmp_path / "b.csv")
    assert res["matched"] == 2 and res["ok_cells"] == 1 and res["same_status"] and res["value_same_missing"]
    assert res["value_max_rel"] == pytest.approx(1e-4) and res["ci_low_max_rel"] == 0.0
    (tmp_path / "c.csv").write_text(a.replace("unavailable", "ok"))
    assert not cross_stack.compare_boards(tmp_path / "a.csv", tmp_path / "c.csv")["same_status"]
