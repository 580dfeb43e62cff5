"""Embed-stage throughput, before/after in one invocation: the legacy sequential path vs the pipelined one.

    PYTHONPATH=. python benchmarks/bench_pipeline.py [--clip-s 1.0] [--max-clips 600] [--repeats 2]
        [--embedders musicnn,vggish,pann] [--workers N] [--out benchmarks/results/bench_pipeline.json]

Audio: the demo reference and held-out clips (``~/.cache/genaudio-bench/demo``, real music, 48 kHz stereo
FLAC, 70 x 10 s) cut into ``--clip-s`` pieces (700 clips of 1 s by default; ``--max-clips`` keeps the first N).

Phases, each in its own subprocess (so peak RSS and CPU time are the phase's own), alternating
before/after ``--repeats`` times (the machine may be shared: ratios measured side by side are what counts):

- **before**: ``embed_io.legacy=true`` and today's resampler for VGGish/musicnn (``resampy_kaiser_best``):
  per embedder, every file decoded and resampled again, sequentially, then embedded per batch.
- **after**: the pipelined stage (decode once, resample once per rate/resampler, worker threads with
  prefetch) and ``kaiser_best_polyphase`` for VGGish/musicnn (the same filter taps, within 1e-6).

Reported per phase: wall time, files/s (file x embedder items per second), audio seconds per wall second,
CPU utilisation (process CPU seconds over all threads / wall seconds; 2.0 = two cores busy), peak RSS.
Embeddings of the two phases are compared (max abs difference per embedder).

The **demo ratio** phase: musicnn (the demo embedder) on the 70 demo files, cold cache: embed-stage wall
time over the pure network time (``embed_batch`` on waveforms already in memory, same batches), before
and after. Weights: musicnn real (MSD_musicnn wheel); VGGish and PANN random-init official architectures
(benchmarks/random_embedders.py) unless their checkpoints resolve (throughput does not depend on the values).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

OLD_RESAMPLER = {"vggish": "resampy_kaiser_best", "musicnn": "resampy_kaiser_best", "openl3": "resampy_kaiser_best"}


def demo_files() -> list[Path]:
    from bench.demo import demo_dir

    d = demo_dir()
    files = sorted((d / "reference").glob("*.flac")) + sorted((d / "heldout").glob("*.flac"))
    if not files:
        raise SystemExit(f"no demo audio in {d}: run `python -m bench.demo` first")
    return files


def cut_clips(dest: Path, clip_s: float, max_clips: int) -> list[Path]:
    import soundfile as sf

    dest.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    for f in demo_files():
        x, sr = sf.read(str(f), dtype="float32", always_2d=True)
        n = int(round(clip_s * sr))
        for i in range(x.shape[0] // n):
            if len(out) >= max_clips:
                return out
            p = dest / f"{f.stem}_{i:02d}.flac"
            sf.write(p, x[i * n : (i + 1) * n], sr, subtype="PCM_16")
            out.append(p)
    return out


def build(name: str, tmp: Path, mode: str, batch_size: int):
    import random_embedders

    from bench.checkpoints import CheckpointUnavailable

    emb = None
    if name in ("vggish", "pann"):
        try:  # real weights when they resolve offline
            mod = __import__(f"bench.embedders.{name}", fromlist=["x"])
            cls = mod.VGGishEmbedder if name == "vggish" else mod.PANNEmbedder
            emb = cls(device="cpu", batch_size=batch_size)
        except CheckpointUnavailable:
            emb = None
    if emb is None:
        emb = random_embedders.build(name, "cpu", tmp / "weights", batch_size=batch_size)
    if mode == "before" and name in OLD_RESAMPLER:
        emb.audio = dataclasses.replace(emb.audio, resampler=OLD_RESAMPLER[name])
    return emb


def phase(args) -> dict[str, Any]:
    """One measured phase (runs in a subprocess): the embed stage over the clips into an empty cache."""

    from bench.audio import load_audio_report
    from bench.cache import ArrayCache
    from bench.errors import ErrorLog
    from bench.stages.embed import EmbedIO, EmbedState, embed_all

    tmp = Path(args.tmp)
    paths = [Path(p) for p in json.loads(Path(args.paths_file).read_text())]
    names = [n for n in args.embedders.split(",") if n]
    embs = [(n, build(n, tmp, args.mode, args.batch_size)) for n in names]
    io = EmbedIO(legacy=True) if args.mode == "before" else EmbedIO(num_workers=args.workers)
    for _, e in embs:  # warm-up outside the timing: numba JIT of resampy, torch kernel selection
        w = load_audio_report(paths[0], e.audio).wav
        e.embed_batch([w])
    st = EmbedState(ArrayCache(Path(args.cache)), ErrorLog("skip"))
    files = {str(p): [("m", "s", p.stem)] for p in paths}
    c0, t0 = time.process_time(), time.perf_counter()
    embed_all(st, embs, files, progress=False, io=io)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out: dict[str, Any] = {
        "mode": args.mode,
        "embedders": {n: e.id for n, e in embs},
        "files": len(paths),
        "items": len(paths) * len(embs),
        "embedded": st.counters["embedded"],
        "errors": st.errors.n_errors,
        "wall_s": wall,
        "cpu_s": cpu,
        "workers": io.workers if not io.legacy else 0,
    }
    if args.network:  # pure network time on the same waveforms, same batches (demo ratio)
        net = 0.0
        for _, e in embs:
            wavs = [load_audio_report(p, e.audio).wav for p in paths]
            t1 = time.perf_counter()
            for i in range(0, len(wavs), e.batch_size):
                e.embed_batch(wavs[i : i + e.batch_size])
            net += time.perf_counter() - t1
        out["network_s"] = net
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_phase(mode: str, paths: list[Path], tmp: Path, args, tag: str, network: bool = False) -> dict[str, Any]:
    paths_file = tmp / f"paths-{tag}.json"
    paths_file.write_text(json.dumps([str(p) for p in paths]))
    cache = tmp / f"cache-{tag}"
    cmd = [sys.executable, __file__, "--phase", mode, "--paths-file", str(paths_file), "--cache", str(cache),
           "--tmp", str(tmp), "--embedders", args.embedders if not network else "musicnn",
           "--batch-size", str(args.batch_size)]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    if network:
        cmd += ["--network"]
    load = os.getloadavg()[0]
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if res.returncode != 0:
        raise RuntimeError(f"phase {tag} failed:\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out.update({"tag": tag, "cache": str(cache), "loadavg_1m_before": load})
    audio_s = sum(_duration(p) for p in paths)
    out["audio_s"] = audio_s
    out["files_per_s"] = out["items"] / out["wall_s"]
    out["audio_s_per_wall_s"] = audio_s * (out["items"] / out["files"]) / out["wall_s"]
    out["cpu_util"] = out["cpu_s"] / out["wall_s"]
    print(f"  {tag}: {out['wall_s']:.1f} s wall, {out['files_per_s']:.1f} items/s, cpu {out['cpu_util']:.2f}, "
          f"rss {out['peak_rss_mb']:.0f} MB" + (f", network {out['network_s']:.1f} s" if network else ""), flush=True)
    return out


_DUR: dict[str, float] = {}


def _duration(p: Path) -> float:
    if str(p) not in _DUR:
        import soundfile as sf

        info = sf.info(str(p))
        _DUR[str(p)] = info.frames / info.samplerate
    return _DUR[str(p)]


def compare(before: dict[str, Any], after: dict[str, Any], paths: list[Path]) -> dict[str, float]:
    """Max abs difference of the embeddings per embedder between two phases' caches."""
    from bench.cache import ArrayCache, stable_hash
    from bench.stages.embed import file_digest

    out = {}
    for name in before["embedders"]:
        worst = 0.0
        for p in paths:
            d = file_digest(str(p))
            ka = stable_hash({"audio_sha256": d, "embedder": before["embedders"][name]}, 32)
            kb = stable_hash({"audio_sha256": d, "embedder": after["embedders"][name]}, 32)
            a, b = ArrayCache(before["cache"]).get(ka), ArrayCache(after["cache"]).get(kb)
            if a is None or b is None:
                worst = float("nan")
                break
            worst = max(worst, float(np.abs(a["emb"] - b["emb"]).max()))
        out[name] = worst
    return out


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    lines = [
        f"Embed stage, {meta.get('clips')} real clips of {meta['clip_s']:g} s (demo audio cut finer; 48 kHz stereo FLAC) "
        f"x {len(meta['embedders'])} embedders ({', '.join(meta['embedders'])}), CPU only, {meta['cpu_count']} cores "
        f"({meta['machine']}; {meta['note']}). before = legacy sequential path + resampy kaiser_best; after = "
        f"pipelined path ({meta['workers']} worker threads) + kaiser_best_polyphase. items = file x embedder.",
        "",
        "| phase | wall s | items/s | audio s / wall s | CPU util | peak RSS MB | load avg before |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['tag']} | {r['wall_s']:.1f} | {r['files_per_s']:.1f} | {r['audio_s_per_wall_s']:.1f} | "
            f"{r['cpu_util']:.2f} | {r['peak_rss_mb']:.0f} | {r['loadavg_1m_before']:.1f} |"
        )
    if summary.get("ratios"):
        lines += ["", f"after/before wall time per repeat: {', '.join(f'{x:.2f}' for x in summary['ratios'])} "
                  f"(median {summary['ratio_median']:.2f}; target <= 0.6)."]
    if summary.get("max_abs_diff"):
        diffs = ", ".join(f"{k} {v:.2e}" for k, v in summary["max_abs_diff"].items())
        lines.append(f"max |after - before| embedding difference: {diffs}.")
    if summary.get("demo"):
        d = summary["demo"]
        lines.append(
            f"Demo (musicnn, {d['files']} x 10 s, cold cache): embed stage / pure network time "
            f"before {d['before']:.2f}, after {d['after']:.2f} (target <= 1.5)."
        )
    if summary.get("rss_flat"):
        r = summary["rss_flat"]
        lines.append(f"Peak RSS of the after path: {r['half']:.0f} MB with {r['n_half']} clips, {r['full']:.0f} MB "
                     f"with {r['n_full']} clips.")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip-s", type=float, default=1.0)
    ap.add_argument("--max-clips", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--embedders", default="musicnn,vggish,pann")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-demo", action="store_true", help="skip the demo ratio phases")
    ap.add_argument("--no-rss-check", action="store_true", help="skip the after phase on half the clips")
    ap.add_argument("--note", default="machine shared with other jobs")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_pipeline.json"))
    # internal: one phase in a subprocess
    ap.add_argument("--phase", choices=["before", "after"], default=None)
    ap.add_argument("--paths-file"), ap.add_argument("--cache"), ap.add_argument("--tmp")
    ap.add_argument("--network", action="store_true")
    args = ap.parse_args()
    if args.phase:
        args.mode = args.phase
        print(json.dumps(phase(args)))
        return

    import torch

    from bench.stages.embed import default_num_workers

    t_start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    meta: dict[str, Any] = {
        "machine": f"{platform.platform()}, {platform.processor() or platform.machine()}",
        "cpu_count": os.cpu_count(),
        "note": args.note,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "clip_s": args.clip_s,
        "embedders": args.embedders.split(","),
        "batch_size": args.batch_size,
        "workers": args.workers if args.workers is not None else default_num_workers(),
        "repeats": args.repeats,
    }

    def save() -> None:  # after every phase: an interrupted run keeps what it measured
        meta["date_utc"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        meta["runtime_s"] = time.perf_counter() - t_start
        if args.out:
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=2) + "\n")
            out.with_suffix(".md").write_text(markdown(meta, rows, summary))

    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        paths = cut_clips(tmp / "clips", args.clip_s, args.max_clips)
        meta["clips"] = len(paths)
        print(f"{len(paths)} clips of {args.clip_s:g} s", flush=True)
        ratios, pairs = [], []
        for r in range(args.repeats):
            b = run_phase("before", paths, tmp, args, f"before-{r + 1}")
            rows.append(b)
            save()
            a = run_phase("after", paths, tmp, args, f"after-{r + 1}")
            rows.append(a)
            ratios.append(a["wall_s"] / b["wall_s"])
            pairs.append((b, a))
            summary["ratios"] = ratios
            summary["ratio_median"] = float(np.median(ratios))
            save()
        summary["max_abs_diff"] = compare(pairs[0][0], pairs[0][1], paths)
        save()
        if not args.no_demo:
            demo = demo_files()
            db = run_phase("before", demo, tmp, args, "demo-before", network=True)
            rows.append(db)
            da = run_phase("after", demo, tmp, args, "demo-after", network=True)
            rows.append(da)
            summary["demo"] = {"files": len(demo), "before": db["wall_s"] / db["network_s"],
                               "after": da["wall_s"] / da["network_s"]}
            save()
        if not args.no_rss_check:
            half = paths[: len(paths) // 2]
            a_half = run_phase("after", half, tmp, args, "after-half-clips")
            rows.append(a_half)
            summary["rss_flat"] = {"n_half": len(half), "half": a_half["peak_rss_mb"], "n_full": len(paths),
                                   "full": float(np.median([p[1]["peak_rss_mb"] for p in pairs]))}
            save()
    print("\n" + markdown(meta, rows, summary))
    if args.out:
        print(f"wrote {args.out} and {Path(args.out).with_suffix('.md')}")


if __name__ == "__main__":
    main()
