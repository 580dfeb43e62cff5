"""Benchmark: MAD on the offline demo and the k-means backend difference against mauve-text.

1. Runs the demo (28 prompts, 42 reference clips, musicnn embeddings) with ``metric=[mad]`` twice,
   once with the default numpy k-means backend and once with ``kmeans_backend=faiss`` (which gives
   mauve-text 0.4.0's labels, hence its value, exactly: tests/metrics/test_mad.py), and reports MAD
   with its bootstrap interval per model.
2. Synthetic sets: MAUVE with the numpy backend vs mauve-text's ``compute_mauve`` (faiss) on the same
   embeddings (planted clusters with mode dropping; structureless Gaussians, with faiss' spread over
   8 seeds).

Writes ``benchmarks/results/bench_mad.json`` and ``.md``. Usage::

    .venv/bin/python benchmarks/bench_mad.py [--cache-dir DIR] [--skip-demo]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import bench  # noqa: E402
from bench.metrics.mad import compute_mauve  # noqa: E402


def demo(cache_dir: str | None) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("numpy", "faiss"):
            cfg = bench.compose([
                "embedder=[musicnn]", "metric=[mad]", f"metric.mad.kmeans_backend={backend}", "progress=false",
                f"output_dir={tmp}/{backend}", f"cache_dir={cache_dir or tmp + '/cache'}", "stages=[gather,embed,score]",
            ])
            run_dir = bench.run(cfg)
            long = pd.read_csv(run_dir / "leaderboard_long.csv")
            rows = long[long["metric"] == "mad"]
            out[backend] = {
                r["model"]: {"mad": r["value"], "ci": [r["ci_low"], r["ci_high"]], "n": int(r["n"])}
                for _, r in rows.iterrows()
            }
            extra = long[long["metric"] == "mad.n_clusters"]
            out["n_clusters"] = int(extra["value"].iloc[0])
    return out


def synthetic() -> dict:
    import mauve

    res: dict = {}
    rng = np.random.default_rng(11)
    centers = rng.normal(size=(30, 32)) * 3
    q = centers[rng.integers(0, 30, size=400)] + 0.05 * rng.normal(size=(400, 32))
    p = centers[rng.integers(0, 20, size=400)] + 0.05 * rng.normal(size=(400, 32))
    full = centers[rng.integers(0, 30, size=400)] + 0.05 * rng.normal(size=(400, 32))
    for name, pp in (("clusters_mode_dropping", p), ("clusters_all_modes", full)):
        res[name] = {
            "numpy": compute_mauve(pp, q, num_buckets=30).mauve,
            "mauve_text": float(mauve.compute_mauve(p_features=pp, q_features=q, num_buckets=30).mauve),
        }
    rng = np.random.default_rng(5)
    q = rng.normal(size=(300, 32))
    p = rng.normal(size=(300, 32)) + 0.3 * rng.normal(size=32)
    seeds = [compute_mauve(p, q, backend="faiss", seed=s).mauve for s in range(8)]
    res["gaussians"] = {
        "numpy": compute_mauve(p, q).mauve,
        "mauve_text": float(mauve.compute_mauve(p_features=p, q_features=q).mauve),
        "faiss_seed_range": [min(seeds), max(seeds)],
    }
    return res


def markdown(r: dict) -> str:
    lines = ["# MAD benchmark (benchmarks/bench_mad.py)", ""]
    if "demo" in r:
        d = r["demo"]
        lines += [f"Demo, musicnn embeddings, {d['n_clusters']} clusters (auto), 200 prompt-bootstrap replicates:", "",
                  "| model | MAD (numpy k-means) [95% CI] | MAD (faiss = mauve-text) [95% CI] |", "|---|---|---|"]
        for m in d["numpy"]:
            a, b = d["numpy"][m], d["faiss"][m]
            lines.append(f"| {m} | {a['mad']:.4f} [{a['ci'][0]:.4f}, {a['ci'][1]:.4f}] | "
                         f"{b['mad']:.4f} [{b['ci'][0]:.4f}, {b['ci'][1]:.4f}] |")
        lines.append("")
    lines += ["Synthetic embeddings, MAUVE (numpy backend vs mauve-text 0.4.0 compute_mauve):", "",
              "| data | numpy | mauve-text | note |", "|---|---|---|---|"]
    for k, v in r["synthetic"].items():
        note = f"faiss over 8 seeds: {v['faiss_seed_range'][0]:.3f}-{v['faiss_seed_range'][1]:.3f}" \
            if "faiss_seed_range" in v else ""
        lines.append(f"| {k} | {v['numpy']:.4f} | {v['mauve_text']:.4f} | {note} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args()
    r: dict = {"synthetic": synthetic()}
    if not args.skip_demo:
        r["demo"] = demo(args.cache_dir)
    out = ROOT / "benchmarks" / "results"
    (out / "bench_mad.json").write_text(json.dumps(r, indent=2))
    (out / "bench_mad.md").write_text(markdown(r))
    print(markdown(r))


if __name__ == "__main__":
    main()
