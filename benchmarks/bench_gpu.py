"""Does the input path keep the device busy? Model-only vs end-to-end embed-stage throughput per embedder.

    PYTHONPATH=. python benchmarks/bench_gpu.py [--device cuda] [--embedders vggish,clap] [--files 256]
        [--seconds 10] [--batch-size 32] [--workers N] [--out-dir benchmarks/results]

Files: ``--files`` synthetic music-like clips (harmonic notes + noise, 48 kHz stereo FLAC like the demo
audio), written once. Embedders: random-init official architectures (benchmarks/random_embedders.py;
throughput does not depend on the weight values). For each embedder:

- **model-only**: the clips already decoded, mixed down and resampled in memory; timed
  ``embed_batch`` calls of ``--batch-size`` clips (front end + network + device transfers), after a warm-up.
- **end-to-end**: the embed stage (:func:`bench.stages.embed.embed_all`) from the files into an empty cache:
  hashing, decode, mixdown, resampling in ``--workers`` threads with prefetch, batches of
  ``--batch-size`` x ``--seconds`` seconds of audio (``embed_io.batch_audio_s``), cache writes.
- **legacy end-to-end** (``--legacy-files``, a subset): the previous sequential path, for the ratio.

Throughput is audio seconds per wall second. GPU utilisation is sampled with ``nvidia-smi`` every 100 ms
during each phase when available. Results: JSON + Markdown in ``--out-dir`` (and ``$OUT`` if set).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import random_embedders  # noqa: E402

from bench.audio import load_audio_report  # noqa: E402
from bench.cache import ArrayCache  # noqa: E402
from bench.errors import ErrorLog  # noqa: E402
from bench.stages.embed import EmbedIO, embed_all  # noqa: E402


def synth_clip(rng: np.random.Generator, sr: int, seconds: float) -> np.ndarray:
    """``(n, 2)`` float32: a few decaying harmonic notes per channel over faint noise."""
    n = int(sr * seconds)
    t = np.arange(n) / sr
    out = np.zeros((n, 2))
    for ch in range(2):
        for k in range(4):
            f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
            start = int(k * n / 4)
            tt = t[: n - start]
            env = np.exp(-tt * rng.uniform(0.5, 3.0)) * np.minimum(tt / 0.01, 1.0)
            out[start:, ch] += env * sum(0.5 / h * np.sin(2 * np.pi * f0 * h * tt) for h in range(1, 5))
    out += 0.01 * rng.standard_normal(out.shape)
    return (0.4 * out / np.abs(out).max()).astype(np.float32)


def make_files(folder: Path, n: int, seconds: float, sr: int = 48000) -> list[Path]:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = [synth_clip(rng, sr, seconds) for _ in range(min(n, 16))]
    paths = []
    for i in range(n):  # distinct content per file (cache keys are content hashes)
        x = np.roll(base[i % len(base)], 997 * i, axis=0) * (1.0 - 0.001 * (i // len(base)))
        p = folder / f"clip{i:04d}.flac"
        sf.write(p, x, sr, subtype="PCM_16")
        paths.append(p)
    return paths


class GpuSampler:
    """Samples ``nvidia-smi`` utilisation (%) every 100 ms in a background process while active."""

    def __init__(self) -> None:
        self.ok = shutil.which("nvidia-smi") is not None
        self.samples: list[float] = []
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        if self.ok:
            cmd = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "100"]
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self.samples.append(float(line.strip().split(",")[0]))
            except ValueError:
                pass

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=2)

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {"gpu_util_mean": None, "gpu_util_samples": 0}
        return {"gpu_util_mean": float(np.mean(self.samples)), "gpu_util_samples": len(self.samples)}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def model_only(emb, wavs: list[np.ndarray], batch: int, device: str, repeats: int = 2) -> dict[str, Any]:
    emb.embed_batch(wavs[:batch])  # warm-up (kernels, cuDNN autotune, allocator)
    sync(device)
    best, util = None, None
    for _ in range(repeats):
        with GpuSampler() as g:
            t0 = time.perf_counter()
            for i in range(0, len(wavs), batch):
                emb.embed_batch(wavs[i : i + batch])
            sync(device)
            dt_ = time.perf_counter() - t0
        if best is None or dt_ < best:
            best, util = dt_, g.summary()
    audio_s = sum(len(w) for w in wavs) / emb.audio.sample_rate
    return {"wall_s": best, "audio_s": audio_s, "x_realtime": audio_s / best, **(util or {})}


def end_to_end(emb, ekey: str, paths: list[Path], io: EmbedIO, device: str, tmp: Path) -> dict[str, Any]:

    from bench.stages.embed import EmbedState

    cache = tmp / f"cache-{ekey}-{'legacy' if io.legacy else 'new'}-{time.time_ns()}"
    st = EmbedState(ArrayCache(cache), ErrorLog("skip"))
    files = {str(p): [("m", "s", p.stem)] for p in paths}
    cpu0 = time.process_time()
    with GpuSampler() as g:
        t0 = time.perf_counter()
        embed_all(st, [(ekey, emb)], files, progress=False, io=io)
        sync(device)
        wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    shutil.rmtree(cache, ignore_errors=True)
    if st.errors.n_errors:
        raise RuntimeError(f"{st.errors.n_errors} errors, first: {st.errors.rows[0]}")
    audio_s = sum(_duration(p) for p in paths)
    return {"wall_s": wall, "audio_s": audio_s, "x_realtime": audio_s / wall, "files_per_s": len(paths) / wall,
            "cpu_util": cpu / wall, "embedded": st.counters["embedded"], **g.summary()}


def _duration(p: Path) -> float:
    import soundfile as sf

    info = sf.info(str(p))
    return info.frames / info.samplerate


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        f"GPU input-path check, device {meta['device']} ({meta.get('gpu_name') or 'no GPU name'}), "
        f"{meta['cpu_count']} CPU cores, {meta['files']} x {meta['seconds']:g} s 48 kHz stereo FLAC, "
        f"batch {meta['batch_size']} clips, {meta['workers']} input workers; random-init official architectures. "
        "x RT = audio seconds per wall second; e2e/model = end-to-end over model-only throughput.",
        "",
        "| embedder | model-only x RT | GPU util (model) % | end-to-end x RT | GPU util (e2e) % | e2e / model "
        "| files/s | legacy e2e x RT | new / legacy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def f(v, fmt="{:.0f}"):
        return fmt.format(v) if isinstance(v, int | float) else "n/a"

    for r in rows:
        m, e, lg = r.get("model_only") or {}, r.get("end_to_end") or {}, r.get("legacy") or {}
        lines.append(
            f"| {r['embedder']} | {f(m.get('x_realtime'))} | {f(m.get('gpu_util_mean'))} | {f(e.get('x_realtime'))} "
            f"| {f(e.get('gpu_util_mean'))} | {f(r.get('e2e_over_model'), '{:.2f}')} | "
            f"{f(e.get('files_per_s'), '{:.1f}')} | {f(lg.get('x_realtime'))} | {f(r.get('new_over_legacy'), '{:.2f}')} |"
        )
    errs = [f"- {r['embedder']}: {r['error']}" for r in rows if r.get("error")]
    return "\n".join(lines + (["", *errs] if errs else [])) + "\n"


def main() -> int:
    """Run the benchmark; exit status 1 when any embedder failed (its row holds the error)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--embedders", default="vggish,clap")
    ap.add_argument("--files", type=int, default=256)
    ap.add_argument("--legacy-files", type=int, default=64, help="files for the legacy path (0 = skip)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None, help="input workers (default: usable cores, max 8)")
    ap.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--name", default="bench_gpu")
    args = ap.parse_args()

    import torch

    io = EmbedIO(num_workers=args.workers, batch_audio_s=args.batch_size * args.seconds)
    meta: dict[str, Any] = {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "device": args.device,
        "gpu_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "files": args.files,
        "seconds": args.seconds,
        "batch_size": args.batch_size,
        "workers": io.workers,
        "batch_audio_s": io.batch_audio_s,
    }
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        t0 = time.perf_counter()
        paths = make_files(tmp / "audio", args.files, args.seconds)
        meta["synth_s"] = time.perf_counter() - t0
        print(f"wrote {len(paths)} files in {meta['synth_s']:.1f} s", flush=True)
        for name in [n.strip() for n in args.embedders.split(",") if n.strip()]:
            row: dict[str, Any] = {"embedder": name}
            try:
                emb = random_embedders.build(name, args.device, tmp / "weights", batch_size=args.batch_size)
                with ThreadPoolExecutor(io.workers) as ex:
                    wavs = list(ex.map(lambda p, a=emb.audio: load_audio_report(p, a).wav, paths))
                row["model_only"] = model_only(emb, wavs, args.batch_size, args.device)
                del wavs
                print(f"[{name}] model-only {row['model_only']['x_realtime']:.0f}x realtime", flush=True)
                row["end_to_end"] = end_to_end(emb, name, paths, io, args.device, tmp)
                print(f"[{name}] end-to-end {row['end_to_end']['x_realtime']:.0f}x realtime", flush=True)
                row["e2e_over_model"] = row["end_to_end"]["x_realtime"] / row["model_only"]["x_realtime"]
                if args.legacy_files:
                    sub = paths[: args.legacy_files]
                    row["legacy"] = end_to_end(emb, name, sub, EmbedIO(legacy=True), args.device, tmp)
                    new_sub = end_to_end(emb, name, sub, io, args.device, tmp)
                    row["new_subset"] = new_sub
                    row["new_over_legacy"] = new_sub["x_realtime"] / row["legacy"]["x_realtime"]
                    print(f"[{name}] legacy {row['legacy']['x_realtime']:.0f}x, new {new_sub['x_realtime']:.0f}x "
                          f"on {len(sub)} files", flush=True)
                del emb
            except Exception as exc:  # report and go on with the next embedder
                row["error"] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            rows.append(row)
            write(args, meta, rows)  # after every embedder: a timeout later keeps what was measured
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
    print("\n" + markdown(meta, rows), flush=True)
    return 1 if any(r.get("error") for r in rows) else 0


def write(args, meta: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    table = markdown(meta, rows)
    outs = [Path(args.out_dir)] + ([Path(os.environ["OUT"])] if os.environ.get("OUT") else [])
    for d in outs:
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{args.name}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
        (d / f"{args.name}.md").write_text(table)
        print(f"wrote {d / (args.name + '.json')} and .md", flush=True)


if __name__ == "__main__":
    sys.exit(main())
