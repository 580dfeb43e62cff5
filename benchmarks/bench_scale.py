"""Scale benchmark: wall time and peak memory of a run as the number of files grows.

For each N, synthesises N short "generated" clips (tones over noise) and N/2 reference clips as
16 kHz WAVs, then runs gather + embed + score (the oracle baseline collects the generated clips,
logmel embedder, FAD without bootstrap) in a fresh subprocess, twice: cold (empty cache) and warm
(everything cached). Peak RSS is the child's ``ru_maxrss`` from ``os.wait4``. Results go to a
table on stdout and ``benchmarks/results/scale.json``.

    .venv/bin/python benchmarks/bench_scale.py                       # N = 1000, 10000; 0.5 s clips
    .venv/bin/python benchmarks/bench_scale.py --sizes 200 --clip-s 1  # a quick look

Memory should stay roughly flat in N: FAD streams frames into float64 accumulators and the run
keeps only paths, keys and per-clip scalars per file (embeddings are read back from the cache
through a byte-bounded LRU).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
CHILD = """
import json, sys
import bench
bench.run(json.load(open(sys.argv[1])))
"""


def synthesise(folder: Path, n: int, seconds: float, seed: int, sr: int = 16000) -> list[Path]:
    """``n`` clips ``(seconds * sr,)`` of 2-4 decaying harmonic notes over faint noise, as 16-bit WAVs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    m = int(round(seconds * sr))
    t = np.arange(m) / sr
    paths = []
    for i in range(n):
        x = 0.01 * rng.standard_normal(m)
        for k in range(int(rng.integers(2, 5))):
            f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
            x += np.exp(-t * rng.uniform(2, 6)) * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3)) / (k + 1)
        p = folder / f"c{i:06d}.wav"
        sf.write(str(p), (0.4 * x / np.max(np.abs(x))).astype(np.float32), sr, subtype="PCM_16")
        paths.append(p)
    return paths


def make_config(work: Path, n: int, clip_s: float) -> dict:
    gen = synthesise(work / "data" / "generated", n, clip_s, seed=1)
    synthesise(work / "data" / "reference", max(2, n // 2), clip_s, seed=2)
    with open(work / "data" / "prompts.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "reference"])
        for i, p in enumerate(gen):
            w.writerow([f"p{i:06d}", "a short tonal clip", str(p)])
    return {
        "run_name": f"scale_{n}",
        "output_dir": str(work / "results"),
        "cache_dir": str(work / "cache"),
        "datasets_dir": str(work / "data"),
        "device": "cpu",
        "batch_size": 16,
        "seed": 0,
        "on_error": "skip",
        "progress": False,
        "stages": ["gather", "embed", "score"],
        "shard": {"index": 0, "count": 1},
        "report_formats": [],
        "prepare_demo": False,
        "model": {"oracle": {"_target_": "bench.models.baselines.OracleModel"}},
        "prompts": {
            "scale": {
                "_target_": "bench.prompts.PromptSet.from_csv",
                "name": "scale",
                "path": str(work / "data" / "prompts.csv"),
                "reference_column": "reference",
            }
        },
        "reference": {
            "scale": {
                "_target_": "bench.references.ReferenceSet.from_folder",
                "name": "scale",
                "path": str(work / "data" / "reference"),
                "pattern": "*.wav",
            }
        },
        "embedder": {
            "logmel": {
                "_target_": "bench.embedders.logmel.LogMelEmbedder",
                "n_mels": 64,
                "segment_s": 0.1,
                "device": "cpu",
                "batch_size": 16,
            }
        },
        "metric": {"fad": {"_target_": "bench.metrics.fad.FAD", "n_bootstrap": 0, "per_sample": True}},
    }


def run_child(cfg_path: Path, threads: int) -> dict:
    """Run ``bench.run`` in a fresh interpreter; wall time (s) and peak RSS (MiB) of that process."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "GENAUDIO_BENCH_OFFLINE": "1",
        "OMP_NUM_THREADS": str(threads),
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(cfg_path)], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.run failed with exit code {proc.returncode}")
    rss_kib = usage.ru_maxrss  # KiB on Linux
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(rss_kib / 1024, 1)}


def baseline_rss(threads: int) -> float:
    """Peak RSS (MiB) of a child that only imports the pipeline (torch, torchaudio, pandas ...)."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "import bench.pipeline, bench.embedders.logmel, torchaudio"], env=env
    )
    _, _, usage = os.wait4(proc.pid, 0)
    return round(usage.ru_maxrss / 1024, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--clip-s", type=float, default=0.5, help="clip length in seconds")
    ap.add_argument("--threads", type=int, default=1, help="OMP/torch threads in the run")
    ap.add_argument("--workdir", type=Path, default=None, help="keep data and results here (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "scale.json")
    args = ap.parse_args(argv)

    rows = []
    base = baseline_rss(args.threads)
    for n in args.sizes:
        work = (args.workdir / f"n{n}") if args.workdir else Path(tempfile.mkdtemp(prefix=f"bench_scale_{n}_"))
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        t0 = time.perf_counter()
        cfg = make_config(work, n, args.clip_s)
        synth_s = time.perf_counter() - t0
        cfg_path = work / "config.json"
        cfg_path.write_text(json.dumps(cfg))
        cold = run_child(cfg_path, args.threads)
        run_dir = Path(cfg["output_dir"]) / cfg["run_name"]
        m_cold = json.loads((run_dir / "manifest.json").read_text())
        warm = run_child(cfg_path, args.threads)
        m_warm = json.loads((run_dir / "manifest.json").read_text())
        with open(run_dir / "leaderboard.csv", newline="") as f:
            fad = float(next(csv.DictReader(f))["fad@logmel"])
        n_files = n + max(2, n // 2)
        rows.append(
            {
                "n_generated": n,
                "n_reference": max(2, n // 2),
                "n_files": n_files,
                "clip_s": args.clip_s,
                "synthesise_s": round(synth_s, 1),
                "cold": {**cold, "timings": m_cold["timings"], "counters": m_cold["counters"]},
                "warm": {**warm, "timings": m_warm["timings"], "counters": m_warm["counters"]},
                "cold_ms_per_file": round(1000 * cold["wall_s"] / n_files, 2),
                "fad": fad,
            }
        )
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    result = {
        "benchmark": "bench_scale",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "threads": args.threads,
        "import_only_peak_rss_mib": base,
        "runs": rows,
        "note": "wall includes interpreter start and imports; peak RSS is the run's process (ru_maxrss)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"import-only peak RSS: {base} MiB   (threads={args.threads}, clip {args.clip_s} s)")
    head = (
        f"{'N gen':>7} {'files':>7} {'cold s':>8} {'ms/file':>8} {'cold MiB':>9} {'warm s':>7} {'warm MiB':>9}  "
        f"{'embed s':>8} {'score s':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['n_generated']:>7} {r['n_files']:>7} {r['cold']['wall_s']:>8} {r['cold_ms_per_file']:>8} "
            f"{r['cold']['peak_rss_mib']:>9} {r['warm']['wall_s']:>7} {r['warm']['peak_rss_mib']:>9}  "
            f"{r['cold']['timings'].get('embed', 0):>8} {r['cold']['timings'].get('score', 0):>8}"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
