"""Two processes sharing one embedding cache: identical results, no corruption, no duplicated work."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cache import ArrayCache

N = 60  # reference clips; plus 2 x 30 generated noise clips (one set per process, identical content)

pytestmark = pytest.mark.usefixtures("single_thread")

#: each worker imports everything, signals ready, waits for "go", then runs - so the two runs overlap
WORKER = """
import json, os, sys, time
from pathlib import Path
import bench, bench.pipeline, torch
cfg, ready, go = json.load(open(sys.argv[1])), Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.01)
bench.run(cfg)
"""

SLOW_EMBEDDER = '''
import time
from bench.embedders.logmel import LogMelEmbedder


class SlowLogMel(LogMelEmbedder):
    """The real logmel embedder (same cache id), >= 10 ms per clip so that the two runs overlap."""

    def embed_batch(self, wavs):
        time.sleep(0.01 * len(wavs))
        return super().embed_batch(wavs)
'''


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, helpers) -> Path:
    root = tmp_path_factory.mktemp("shared_corpus")
    rng = np.random.default_rng(7)
    for i in range(N):
        helpers.write_clip(root / "reference" / f"r{i:03d}.wav", helpers.tone_clip(rng, 16000, 1.0), 16000)
    return root


def test_two_processes_share_one_cache(tmp_path, corpus, helpers, subprocess_env):
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "slow_logmel_c.py").write_text(SLOW_EMBEDDER)
    env = {**subprocess_env, "PYTHONPATH": str(tmp_path / "mod") + os.pathsep + subprocess_env["PYTHONPATH"]}
    prompts = [{"id": f"q{i:03d}", "text": "noise"} for i in range(30)]
    procs, dirs = [], []
    go = tmp_path / "go"
    for k in (0, 1):
        cfg = helpers.tiny_run_config(
            tmp_path / f"w{k}", corpus,
            cache_dir=str(tmp_path / "shared_cache"),
            model={"noise": {"_target_": "bench.models.baselines.NoiseModel", "sample_rate": 16000,
                             "duration_s": 1.0, "seed": 0}},
            prompts={"q": {"_target_": "bench.prompts.PromptSet.from_list", "name": "q", "prompts": prompts}},
        )
        cfg["embedder"]["logmel"]["_target_"] = "slow_logmel_c.SlowLogMel"
        (tmp_path / f"cfg{k}.json").write_text(json.dumps(cfg))
        dirs.append(tmp_path / f"w{k}" / "results" / "tiny")
        procs.append(subprocess.Popen(
            [helpers.python, "-c", WORKER, str(tmp_path / f"cfg{k}.json"), str(tmp_path / f"ready{k}"), str(go)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        ))
    try:
        deadline = time.monotonic() + 180
        while not all((tmp_path / f"ready{k}").exists() for k in (0, 1)):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), procs[0].stderr.read()[-2000:]
            time.sleep(0.02)
        go.touch()
        errs = [p.communicate(timeout=180)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for e in errs]

    counters = [json.loads((d / "manifest.json").read_text())["counters"] for d in dirs]
    unique = N + 30  # the two runs generate byte-identical noise clips
    assert sum(c["embedded"] for c in counters) == unique  # no entry computed twice (file locks)
    assert all(c["embedded"] + c["embed_cache_hits"] == unique for c in counters)
    assert min(c["embedded"] for c in counters) > 0, counters  # the work was actually shared

    boards = [pd.read_csv(d / "leaderboard.csv").set_index("model")["fad@logmel"] for d in dirs]
    pd.testing.assert_series_equal(boards[0], boards[1], rtol=0, atol=0)
    items = [pd.read_csv(d / "per_item.csv").sort_values("item_id")["value"].to_numpy() for d in dirs]
    np.testing.assert_array_equal(items[0], items[1])

    cache = ArrayCache(tmp_path / "shared_cache" / "embeddings")
    entries = list((tmp_path / "shared_cache" / "embeddings").glob("*/*.npz"))
    assert len(entries) == unique and all(cache.has(p.stem) for p in entries)
    assert not list((tmp_path / "shared_cache").rglob("*.tmp"))
