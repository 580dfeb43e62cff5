"""Benchmark: blockwise KAD at 10k x 10k (D=512) vs kadtk's full-matrix formula.

Times the median-heuristic bandwidth, the full KAD (three blockwise kernel sums) in float64 and
float32 (CPU, and CUDA when present), optionally the 200 bootstrap replicates, and kadtk's
``calc_kernel_audio_distance`` computation transcribed with full ``n x n`` torch matrices
(float32, as kadtk). Reports values, relative differences and peak resident memory. Writes
``benchmarks/results/bench_kad.json``. Usage::

    .venv/bin/python benchmarks/bench_kad.py [--n 10000] [--m 10000] [--dim 512] [--bootstrap 200] [--no-direct]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.metrics.bootstrap import clip_weights  # noqa: E402
from bench.metrics.kad import kad_replicates, kernel_audio_distance, median_pairwise_distance  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def kadtk_full_matrix(x: np.ndarray, y: np.ndarray, bandwidth: float, device: str) -> float:
    """kadtk's calc_kernel_audio_distance (gaussian, no stats cache): full m x m, n x n, m x n matrices."""
    x_t = torch.as_tensor(x, dtype=torch.float32, device=device)
    y_t = torch.as_tensor(y, dtype=torch.float32, device=device)
    m, n = x_t.shape[0], y_t.shape[0]
    gamma = 1 / (2 * bandwidth**2 + 1e-8)
    xx = x_t @ x_t.T
    x_sq = torch.diagonal(xx)
    k_xx = torch.exp(-gamma * (x_sq.unsqueeze(1) + x_sq.unsqueeze(0) - 2 * xx))
    k_xx = k_xx - torch.diag(torch.diagonal(k_xx))
    k_xx_mean = k_xx.sum() / (m * (m - 1))
    del xx, k_xx
    yy = y_t @ y_t.T
    y_sq = torch.diagonal(yy)
    k_yy = torch.exp(-gamma * (y_sq.unsqueeze(1) + y_sq.unsqueeze(0) - 2 * yy))
    k_yy = k_yy - torch.diag(torch.diagonal(k_yy))
    k_yy_mean = k_yy.sum() / (n * (n - 1))
    del yy, k_yy
    k_xy = torch.exp(-gamma * (x_sq.unsqueeze(1) + y_sq.unsqueeze(0) - 2 * x_t @ y_t.T))
    return float((k_xx_mean + k_yy_mean - 2 * k_xy.mean()) * 100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="reference rows")
    ap.add_argument("--m", type=int, default=10_000, help="generated rows")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--block", type=int, default=2048)
    ap.add_argument("--bootstrap", type=int, default=0, help="also time this many bootstrap replicates (float32)")
    ap.add_argument("--no-direct", action="store_true", help="skip kadtk's full-matrix computation")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_kad.json")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    ref = rng.normal(size=(args.n, args.dim)).astype(np.float32)
    gen = (rng.normal(size=(args.m, args.dim)) * 1.05 + 0.02).astype(np.float32)
    rows: list[dict] = []
    rss_data = peak_rss_mb()
    t0 = time.perf_counter()
    bw = median_pairwise_distance(ref)
    t_bw = time.perf_counter() - t0
    print(f"median heuristic ({args.n} rows, <=1e7 pairs): {t_bw:.2f}s  bandwidth={bw:.6f}", flush=True)

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    values: dict[str, float] = {}
    print(f"{'impl':<28} {'device':>6} {'seconds':>9} {'KAD':>14} {'peak_rss_MB':>12}")
    for dev in devices:
        for dtype in ("float64", "float32"):
            t0 = time.perf_counter()
            v = kernel_audio_distance(ref, gen, bw, block=args.block, device=dev, dtype=dtype)
            if dev == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            name = f"blockwise {dtype}"
            values[f"{name}/{dev}"] = v
            rows.append({"impl": name, "device": dev, "seconds": dt, "value": v, "peak_rss_mb": peak_rss_mb()})
            print(f"{name:<28} {dev:>6} {dt:>9.2f} {v:>14.8f} {peak_rss_mb():>12.0f}", flush=True)
        if args.bootstrap:
            ids = [f"p{i}" for i in range(args.m)]
            w = clip_weights(ids, args.bootstrap, 0)
            t0 = time.perf_counter()
            reps = kad_replicates(ref, gen, w, bw, block=args.block, device=dev, dtype="float32")
            dt = time.perf_counter() - t0
            name = f"{args.bootstrap} replicates float32"
            rows.append(
                {
                    "impl": name,
                    "device": dev,
                    "seconds": dt,
                    "value": float(np.mean(reps)),
                    "peak_rss_mb": peak_rss_mb(),
                }
            )
            print(f"{name:<28} {dev:>6} {dt:>9.2f} {np.mean(reps):>14.8f} {peak_rss_mb():>12.0f}", flush=True)
    if not args.no_direct:
        for dev in devices:
            t0 = time.perf_counter()
            v = kadtk_full_matrix(ref, gen, bw, dev)
            dt = time.perf_counter() - t0
            values[f"kadtk/{dev}"] = v
            rows.append(
                {
                    "impl": "kadtk full-matrix float32",
                    "device": dev,
                    "seconds": dt,
                    "value": v,
                    "peak_rss_mb": peak_rss_mb(),
                }
            )
            print(
                f"{'kadtk full-matrix float32':<28} {dev:>6} {dt:>9.2f} {v:>14.8f} {peak_rss_mb():>12.0f}", flush=True
            )
    ref64 = values["blockwise float64/cpu"]
    for r in rows:
        if not r["impl"].endswith("replicates float32"):
            r["rel_diff_vs_float64"] = abs(r["value"] - ref64) / abs(ref64)
    meta = {
        "n_ref": args.n,
        "n_gen": args.m,
        "dim": args.dim,
        "block": args.block,
        "bandwidth": bw,
        "bandwidth_seconds": t_bw,
        "peak_rss_mb_after_imports_and_data": rss_data,
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "note": "peak_rss_mb is the process high-water mark after each step (monotonic)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
