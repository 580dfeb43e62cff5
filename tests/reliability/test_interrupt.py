"""Interruption: a run SIGKILLed mid-way and restarted recomputes nothing already cached, never
reads a half-written entry, and ends with the same leaderboard as an uninterrupted run; hand-
corrupted cache entries are recomputed, not read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bench
from bench.cache import ArrayCache

pytestmark = pytest.mark.usefixtures("single_thread")

N_PROMPTS = 120
N_REFERENCE = 120


def _big_config(root: Path, corpus: Path, helpers) -> dict:
    prompts = [{"id": f"q{i:04d}", "text": "noise"} for i in range(N_PROMPTS)]
    return helpers.tiny_run_config(
        root, corpus,
        model={"noise": {"_target_": "bench.models.baselines.NoiseModel", "sample_rate": 16000, "duration_s": 1.0,
                         "color": "pink", "seed": 0}},
        prompts={"big": {"_target_": "bench.prompts.PromptSet.from_list", "name": "big", "prompts": prompts}},
    )


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory, helpers) -> Path:
    root = tmp_path_factory.mktemp("big_corpus")
    rng = np.random.default_rng(11)
    for i in range(N_REFERENCE):
        helpers.write_clip(root / "reference" / f"r{i:04d}.wav", helpers.tone_clip(rng, 16000, 1.0), 16000)
    return root


def _valid_entries(cache_root: Path) -> set[str]:
    c = ArrayCache(cache_root / "embeddings")
    return {p.stem for p in (cache_root / "embeddings").glob("*/*.npz") if c.has(p.stem)}


def _fad(run_dir: Path) -> pd.Series:
    return pd.read_csv(run_dir / "leaderboard.csv").set_index("model")["fad@logmel"].astype(float).sort_index()


SLOW_EMBEDDER = '''
import time
from bench.embedders.logmel import LogMelEmbedder


class SlowLogMel(LogMelEmbedder):
    """The real logmel embedder (same name, parameters and cache id) taking >= 20 ms per clip,
    so that the run can be killed part-way on any machine."""

    def embed_batch(self, wavs):
        time.sleep(0.02 * len(wavs))
        return super().embed_batch(wavs)
'''


def test_sigkill_then_restart_recomputes_nothing_cached(tmp_path, big_corpus, helpers, subprocess_env, monkeypatch):
    (tmp_path / "slowmod").mkdir()
    (tmp_path / "slowmod" / "slow_logmel.py").write_text(SLOW_EMBEDDER)
    monkeypatch.syspath_prepend(str(tmp_path / "slowmod"))
    env = {**subprocess_env, "PYTHONPATH": str(tmp_path / "slowmod") + os.pathsep + subprocess_env["PYTHONPATH"]}
    cfg = _big_config(tmp_path / "killed", big_corpus, helpers)
    cfg["embedder"]["logmel"]["_target_"] = "slow_logmel.SlowLogMel"
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg))
    code = "import bench, json, sys; bench.run(json.load(open(sys.argv[1])))"
    proc = subprocess.Popen([helpers.python, "-c", code, str(cfg_path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    emb_dir = tmp_path / "killed" / "cache" / "embeddings"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(emb_dir.glob("*/*.npz"))) >= 40:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed: " + proc.stderr.read().decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    existing = _valid_entries(tmp_path / "killed" / "cache")
    assert 40 <= len(existing) < N_PROMPTS + N_REFERENCE

    d = bench.run(cfg)  # restart
    c = json.loads((d / "manifest.json").read_text())["counters"]
    assert c["embed_cache_hits"] >= len(existing)
    assert c["embedded"] + c["embed_cache_hits"] == N_PROMPTS + N_REFERENCE
    assert c["embedded"] == N_PROMPTS + N_REFERENCE - len(existing)  # nothing cached was recomputed
    assert len(_valid_entries(tmp_path / "killed" / "cache")) == N_PROMPTS + N_REFERENCE
    assert not list((tmp_path / "killed" / "results").rglob("*.tmp"))  # generated audio: no torn files

    ref = bench.run(_big_config(tmp_path / "clean", big_corpus, helpers))  # uninterrupted, own cache
    pd.testing.assert_series_equal(_fad(d), _fad(ref), rtol=1e-10)
    a = pd.read_csv(d / "per_item.csv").sort_values("item_id")["value"].to_numpy()
    b = pd.read_csv(ref / "per_item.csv").sort_values("item_id")["value"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-10)


def test_hand_corrupted_entries_are_recomputed_not_read(tmp_path, run_cfg):
    cfg = run_cfg(tmp_path)
    d = bench.run(cfg)
    before = _fad(d)
    entries = sorted((tmp_path / "cache" / "embeddings").glob("*/*.npz"))
    assert len(entries) == 26
    raw = entries[0].read_bytes()
    entries[0].write_bytes(raw[: len(raw) // 2])  # truncated
    raw = bytearray(entries[1].read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 16):
        raw[i] ^= 0xA5  # flipped bytes
    entries[1].write_bytes(bytes(raw))
    entries[2].write_bytes(b"")  # emptied
    (entries[3].parent / f".{entries[3].name}.deadbeef.tmp").write_bytes(raw[:100])  # a torn temp file
    d = bench.run(cfg)
    c = json.loads((d / "manifest.json").read_text())["counters"]
    assert c["embedded"] == 3 and c["embed_cache_hits"] == 23
    assert c["scored"] == 0  # same embedding keys: the metric values come from the score cache
    pd.testing.assert_series_equal(_fad(d), before, rtol=1e-12)
    assert len(_valid_entries(tmp_path / "cache")) == 26
