"""Benchmark: our Frechet distance vs frechet_audio_distance (scipy sqrtm) at D = 128 / 512 / 2048.

Both implementations get the same statistics (mean and unbiased covariance of 2*D correlated
Gaussian frames per set, shifted and rescaled for the generated set). Prints a table and writes
``benchmarks/results/bench_fad.json``. Usage::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_fad.py [--dims 128 512 2048] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import scipy  # noqa: E402

from bench.metrics.fad import frechet_distance  # noqa: E402
from benchmarks.peers import fadtk_fd, frechet_audio_distance_fd  # noqa: E402


def make_stats(d: int, n: int, seed: int, shift: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    x = (rng.normal(size=(n, d)) @ a) * scale + shift
    return x.mean(0), np.cov(x, rowvar=False)


def timed(fn, args: tuple, repeats: int) -> tuple[float, float]:
    """(median seconds, value of the last call) of ``fn(*args)``."""
    times, value = [], float("nan")
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = float(np.real(fn(*args)))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", type=int, nargs="+", default=[128, 512, 2048])
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per implementation (median reported)")
    ap.add_argument("--peer-repeats", type=int, default=None, help="repeats for the sqrtm peers (default: --repeats)")
    ap.add_argument(
        "--fadtk",
        nargs="?",
        const="",
        default=None,
        metavar="FAD_PY",
        help="also time fadtk's calc_frechet_distance (sqrtm + eig); optional path to fadtk/fad.py",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_fad.json")
    args = ap.parse_args()
    peer = frechet_audio_distance_fd()
    tk = None
    if args.fadtk is not None:
        try:
            tk = fadtk_fd(args.fadtk or None)
        except ImportError as exc:
            print(f"fadtk unavailable: {exc}")
    rows = []
    header = f"{'D':>5} {'ours_s':>9} {'fad_lib_s':>10} {'speedup':>8} {'ours':>16} {'frechet_audio_dist':>18} {'rel_diff':>9}"
    if tk:
        header += f" {'fadtk_s':>9} {'fadtk_rel':>9}"
    print(header)
    for d in args.dims:
        n = 2 * d
        m1, s1 = make_stats(d, n, 1, 0.0, 1.0)
        m2, s2 = make_stats(d, n, 2, 0.1, 1.2)
        stats = (m1, s1, m2, s2)
        t_ours, v_ours = timed(frechet_distance, stats, args.repeats)
        t_peer, v_peer = timed(peer, stats, args.peer_repeats or args.repeats)
        row = {
            "dim": d,
            "n_frames": n,
            "ours_s": t_ours,
            "frechet_audio_distance_s": t_peer,
            "speedup": t_peer / t_ours,
            "ours_value": v_ours,
            "frechet_audio_distance_value": v_peer,
            "rel_diff": abs(v_ours - v_peer) / abs(v_peer),
        }
        line = (
            f"{d:>5} {t_ours:>9.4f} {t_peer:>10.4f} {row['speedup']:>7.1f}x {v_ours:>16.8f} {v_peer:>18.8f} "
            f"{row['rel_diff']:>9.1e}"
        )
        if tk:
            t_tk, v_tk = timed(tk, stats, args.peer_repeats or args.repeats)
            row.update({"fadtk_s": t_tk, "fadtk_value": v_tk, "fadtk_rel_diff": abs(v_ours - v_tk) / abs(v_tk)})
            line += f" {t_tk:>9.4f} {row['fadtk_rel_diff']:>9.1e}"
        print(line, flush=True)
        rows.append(row)
    meta = {
        "machine": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "repeats": args.repeats,
        "note": "median wall-clock seconds per call; same statistics for both implementations",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
