"""Synthetic run folders for the report tests (the files the pipeline writes, built by hand).

Each model has per-prompt scores for two metrics: ``fad@vggish`` (lower is better) and
``clap@clap`` (higher is better), each metric value being the mean of its per-prompt scores, so
the replicates are the means over the real prompt resamples of
:func:`bench.metrics.bootstrap.prompt_resamples` (seed 0) — exactly what the pipeline pairs.

Known structure: ``alpha`` is clearly best on both metrics; ``beta`` and ``gamma`` are a
statistical tie (gamma = beta + tiny shift + zero-mean noise: slightly worse FAD, slightly better
CLAP); ``delta`` is clearly worst. The ``two_runs`` fixture puts ``alpha`` and ``beta`` in run A,
``gamma`` in run B (same prompts, same seed: paired across runs).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from bench.metrics.bootstrap import percentile_ci, prompt_resamples
from bench.report.leaderboard import LONG_COLUMNS, long_frame, write_csv

PROMPTS = [f"p{i:02d}" for i in range(24)]
N_BOOT = 200
SEED = 0
EMBEDDER_IDS = {"vggish": "vggish-aaaa", "clap": "clap-bbbb"}
METRICS = {"fad": ("vggish", True), "clap": ("clap", False)}  # metric -> (embedder, lower_is_better)


def model_scores(name: str) -> dict[str, np.ndarray]:
    """Per-prompt scores (24,) per metric of the synthetic models."""
    rng = np.random.default_rng(1234)
    base_fad = rng.normal(5.0, 1.0, len(PROMPTS))
    base_clap = rng.normal(0.30, 0.05, len(PROMPTS))
    noise = np.random.default_rng(99).normal(0.0, 0.02, len(PROMPTS))
    noise -= noise.mean()
    if name == "alpha":
        return {"fad": base_fad - 2.0, "clap": base_clap + 0.15}
    if name == "beta":
        return {"fad": base_fad, "clap": base_clap}
    if name == "gamma":  # statistically tied with beta: tiny shift plus zero-mean noise
        return {"fad": base_fad + 10 * noise + 0.01, "clap": base_clap + noise + 0.001}
    if name == "delta":  # clearly worst
        return {"fad": base_fad + 1.0, "clap": base_clap - 0.05}
    raise KeyError(name)


def replicates_of(scores: np.ndarray) -> np.ndarray:
    idx = prompt_resamples(PROMPTS, N_BOOT, SEED)  # (B, P) into sorted(PROMPTS) == PROMPTS
    return scores[idx].mean(axis=1)


def make_run(
    root: Path,
    run_id: str,
    models: list[str],
    finished: str = "2026-01-01T00:00:00+00:00",
    embedder_ids: dict[str, str] | None = None,
    reference_hash: str = "refhash-1",
    with_audio: bool = True,
    with_curves: bool = True,
) -> Path:
    """Write ``root/run_id`` with every file a pipeline run leaves; returns the folder."""
    embedder_ids = {**EMBEDDER_IDS, **(embedder_ids or {})}
    rdir = root / run_id
    rdir.mkdir(parents=True)
    long_rows, per_item, reps, curves, audio = [], [], [], [], {}
    base = {"run_id": run_id, "config_hash": f"cfg-{run_id}", "prompt_set": "demo", "reference_set": "ref"}
    for m in models:
        scores = model_scores(m)
        for metric, (emb, lower) in METRICS.items():
            cell = {**base, "model": m, "embedder": emb, "embedder_id": embedder_ids[emb],
                    "reference_hash": reference_hash, "metric": metric, "lower_is_better": lower}
            r = replicates_of(scores[metric])
            lo, hi = percentile_ci(r)
            long_rows.append({**cell, "value": float(scores[metric].mean()), "ci_low": lo, "ci_high": hi,
                              "n": len(PROMPTS), "status": "ok", "reason": ""})
            keys6 = {k: cell[k] for k in ("run_id", "model", "prompt_set", "reference_set", "embedder", "metric")}
            per_item += [{**keys6, "item_id": p, "value": float(v)} for p, v in zip(PROMPTS, scores[metric])]
            reps += [{**keys6, "replicate": b, "value": float(v)} for b, v in enumerate(r)]
            if metric == "fad" and with_curves:
                inf = float(scores[metric].mean()) - 1.0
                curves += [{**keys6, "n": n, "value": inf + 24.0 / n} for n in (6, 12, 18, 24)]
        # a bookkeeping extra and an unavailable metric, as the pipeline writes them
        long_rows.append({**base, "model": m, "embedder": "vggish", "embedder_id": embedder_ids["vggish"],
                          "reference_hash": reference_hash, "metric": "fad.n_frames", "value": 240.0, "n": 24,
                          "lower_is_better": True, "status": "ok", "reason": ""})
        long_rows.append({**base, "model": m, "embedder": "mert", "embedder_id": "", "reference_hash": reference_hash,
                          "metric": "fad", "value": float("nan"), "n": 0, "lower_is_better": True,
                          "status": "unavailable", "reason": "embedder unavailable: MERT weights not found"})
        if with_audio:
            adir = rdir / "audio" / m
            adir.mkdir(parents=True)
            audio[m] = {"demo": {}}
            for i, p in enumerate(PROMPTS):
                t = np.arange(22050) / 22050  # 1 s
                sf.write(adir / f"{p}.wav", 0.3 * np.sin(2 * np.pi * (220 + 20 * i) * t), 22050)
                audio[m]["demo"][p] = f"audio/{m}/{p}.wav"
    long = long_frame(long_rows)
    assert tuple(long.columns) == LONG_COLUMNS
    write_csv(long, rdir / "leaderboard_long.csv")
    write_csv(pd.DataFrame(per_item), rdir / "per_item.csv")
    write_csv(pd.DataFrame(reps), rdir / "replicates.csv")
    if curves:
        write_csv(pd.DataFrame(curves), rdir / "curves.csv")
    pd.DataFrame([{"stage": "gather", "model": models[0], "set": "demo", "item_id": "p99", "path": "x.wav",
                   "reason": "cannot decode"}]).to_csv(rdir / "errors.csv", index=False)
    manifest = {
        "run_id": run_id, "config_hash": f"cfg-{run_id}", "started": finished, "finished": finished,
        "config": {"seed": SEED, "run_name": run_id}, "versions": {"torch": "2.9.1"},
        "prompt_sets": {"demo": {"name": "demo", "n_prompts": len(PROMPTS)}},
        "reference_sets": {"ref": {"hash": reference_hash}},
        "embedders": {k: {"id": v} for k, v in embedder_ids.items()},
        "audio": audio,
    }
    (rdir / "manifest.json").write_text(json.dumps(manifest))
    return rdir


@pytest.fixture
def run_factory():
    """:func:`make_run` (conftest modules are not importable under ``--import-mode=importlib``)."""
    return make_run


def _two_runs(root: Path) -> tuple[Path, Path]:
    a = make_run(root / "results", "run_a", ["alpha", "beta"], finished="2026-01-01T10:00:00+00:00")
    b = make_run(root / "results", "run_b", ["gamma"], finished="2026-01-02T10:00:00+00:00")
    return a, b


@pytest.fixture
def two_runs(tmp_path) -> tuple[Path, Path]:
    """Run A (alpha, beta) and run B (gamma), comparable and paired (fresh copy per test)."""
    return _two_runs(tmp_path)


@pytest.fixture(scope="module")
def two_runs_shared(tmp_path_factory) -> tuple[Path, Path]:
    """Like ``two_runs`` but shared by a module's tests: do not modify."""
    return _two_runs(tmp_path_factory.mktemp("shared_runs"))
