"""Do the numbers depend on the software stack? Every embedder option, the same weights and audio, two stacks.

    A$ PYTHONPATH=. .venv/bin/python benchmarks/cross_stack.py write DIR     # e.g. the CI lock (requirements.txt)
    B$ PYTHONPATH=. other/python benchmarks/cross_stack.py compare DIR       # e.g. the GPU image's (device_sim.sh)

``write`` (stack A) builds the random checkpoints of the official architectures that the contract tests use
(``tests/tiny_embedders.py``; musicnn, aiSFX and CREPE use their shipped real weights) into ``DIR/weights``,
writes 6 synthetic 48 kHz stereo clips (tones over noise, 1.3-4.1 s, 32-bit float WAV) into ``DIR/audio``,
and for every option of ``bench/configs/embedder`` records: each clip's embedding frames, decoded and
resampled from the file as a run does (``load_audio_report`` with the embedder's audio spec); text
embeddings for joint text-audio models; FAD and KAD between the first and last three clips. ``compare``
(stack B) does the same with A's weights and files and reports, per embedder, ``max |B - A| / max |A|`` of
the frames (and of the text embeddings) and the relative difference of FAD and KAD. Weights are built once,
in A: random initialisation is not guaranteed to match across library versions, the forward pass should be.
Results: ``benchmarks/results/cross_stack.{json,md}``.

``boards A.csv B.csv`` compares two ``leaderboard_long.csv`` of the same run made on the two stacks (e.g. the
demo, each with a fresh cache): cells matched by model, embedder and metric; the largest relative difference
of value and interval bounds, whether statuses, embedder ids and reference hashes agree. JSON on stdout and in
``--out-dir``/cross_stack_boards.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.audio import load_audio_report  # noqa: E402
from bench.manifest import package_versions  # noqa: E402
from bench.registry import index  # noqa: E402

TEXTS = ["a dog barks in the rain", "slow sad piano song", "fast techno beat with drums and bass"]
#: quick settings as in the contract tests (CREPE "full" takes ~45 s on 2 cores)
QUICK = {"crepe": {"model": "tiny"}}


def make_audio(folder: Path) -> list[Path]:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sr, paths = 48000, []
    for i, seconds in enumerate((1.3, 2.2, 4.1, 1.7, 3.0, 2.6)):
        t = np.arange(int(sr * seconds)) / sr
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        tone = sum(0.4 / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3)) for h in range(1, 6))
        x = np.stack([tone, np.roll(tone, 37)], 1) * np.exp(-t * rng.uniform(0.2, 1.5))[:, None]
        x = 0.5 * x / np.abs(x).max() + 0.02 * rng.standard_normal(x.shape)
        p = folder / f"clip{i}.wav"
        sf.write(p, x.astype(np.float32), sr, subtype="FLOAT")
        paths.append(p)
    return paths


def build_weights(folder: Path) -> dict[str, str]:
    """Every checkpoint kind the embedder options need, built once here: ``kind -> path``."""
    from tests import tiny_embedders

    kinds = sorted({str(v) for spec in tiny_embedders.EMBEDDERS.values() for v in spec.values()
                    if isinstance(v, tiny_embedders.Built)})
    out = {}
    for kind in kinds:
        sub = folder / kind
        sub.mkdir(parents=True, exist_ok=True)
        out[kind] = str(tiny_embedders.BUILDERS[kind](sub))
    return out


def embedder(key: str, weights: dict[str, str]):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from tests import tiny_embedders

    node = OmegaConf.load(index("embedder")[key].path)[key]
    cfg = OmegaConf.to_container(OmegaConf.merge({"device": "cpu", "batch_size": 2, "seed": 0}, {"x": node}),
                                 resolve=True)["x"]
    cfg.update(QUICK.get(key, {}))
    cfg.update(tiny_embedders.overrides(key, lambda kind: Path(weights[kind])))
    return instantiate(cfg)


def measure(key: str, weights: dict[str, str], paths: list[Path]) -> dict[str, Any]:
    """Frames per clip, text embeddings, FAD / KAD of clips 0-2 vs 3-5 (all float64 for the comparison)."""
    from bench.metrics.fad import frechet_distance
    from bench.metrics.kad import kernel_audio_distance
    from bench.metrics.stats import GaussianStats

    emb = embedder(key, weights)
    wavs = [load_audio_report(p, emb.audio).wav for p in paths]
    frames = [np.asarray(o["emb"], np.float64) for o in emb.embed_batch(wavs)]
    out: dict[str, Any] = {"id": emb.id, "frames": frames}
    if emb.has_text:
        out["text"] = np.asarray(emb.embed_text(TEXTS), np.float64)
    a, b = np.concatenate(frames[:3]), np.concatenate(frames[3:])
    ga, gb = GaussianStats().update(a), GaussianStats().update(b)
    out["fad"] = frechet_distance(ga.mu, ga.cov, gb.mu, gb.cov)
    out["kad"] = kernel_audio_distance(a, b)
    return out


def run_all(weights: dict[str, str], paths: list[Path], only: list[str] | None = None) -> dict[str, dict[str, Any]]:
    import torch

    torch.set_num_threads(1)  # reductions in one thread: a stack's own thread count is not what is compared
    res = {}
    for key in only or sorted(index("embedder")):
        t0 = time.perf_counter()
        try:
            res[key] = measure(key, weights, paths)
            print(f"[{key}] {time.perf_counter() - t0:.1f} s", flush=True)
        except Exception as exc:  # report and go on
            res[key] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"[{key}] {res[key]['error']}", flush=True)
    return res


def save(res: dict[str, dict[str, Any]], path: Path, meta: dict[str, Any]) -> None:
    arrays, info = {}, {}
    for key, r in res.items():
        info[key] = {k: v for k, v in r.items() if k not in ("frames", "text")}
        for i, f in enumerate(r.get("frames", [])):
            arrays[f"{key}/frames/{i}"] = f
        if "text" in r:
            arrays[f"{key}/text"] = r["text"]
    np.savez(path, **arrays)
    path.with_suffix(".json").write_text(json.dumps({"meta": meta, "embedders": info}, indent=1) + "\n")


def rel(b: np.ndarray, a: np.ndarray) -> float:
    """``max |b - a| / max |a|`` (the parity tests' measure); inf when the shapes differ."""
    from tests.parity import max_error

    return max_error(b, a)[1] if a.shape == b.shape else float("inf")


def compare(a_dir: Path, res: dict[str, dict[str, Any]], meta_b: dict[str, Any], out_dir: Path) -> int:
    saved = np.load(a_dir / "stack_a.npz")
    info_a = json.loads((a_dir / "stack_a.json").read_text())
    rows = []
    for key, rb in res.items():
        ra = info_a["embedders"].get(key, {})
        row: dict[str, Any] = {"embedder": key}
        if "error" in ra or "error" in rb:
            row["error"] = ra.get("error") or rb.get("error")
            rows.append(row)
            continue
        row["same_id"] = ra["id"] == rb["id"]
        row["frames_rel"] = max(rel(f, saved[f"{key}/frames/{i}"]) for i, f in enumerate(rb["frames"]))
        if "text" in rb:
            row["text_rel"] = rel(rb["text"], saved[f"{key}/text"])
        for m in ("fad", "kad"):
            row[f"{m}_a"], row[f"{m}_b"] = ra[m], rb[m]
            row[f"{m}_rel"] = abs(rb[m] - ra[m]) / max(abs(ra[m]), 1e-12)
        rows.append(row)
    meta = {"date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": platform.platform(),
            "stack_a": info_a["meta"]["versions"], "stack_b": meta_b["versions"]}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "cross_stack.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    (out_dir / "cross_stack.md").write_text(markdown(meta, rows))
    print(markdown(meta, rows))
    return 1 if any("error" in r for r in rows) else 0


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    a, b = meta["stack_a"], meta["stack_b"]
    differ = [k for k in a if a[k] != b.get(k)]
    lines = [
        "# The same embedders, weights and audio on two software stacks (benchmarks/cross_stack.py)", "",
        f"{meta['date_utc']}, {meta['machine']}, CPU, one torch thread.", "",
        "| package | stack A | stack B |", "|---|---|---|",
        *[f"| {k} | {a[k] or '-'} | {b.get(k) or '-'} |" for k in differ], "",
        "Random-weight official architectures (tests/tiny_embedders.py; musicnn, aiSFX, CREPE: shipped weights), "
        "6 clips decoded and resampled from 48 kHz files as a run does. Columns: max |B - A| / max |A| over "
        "every frame of every clip (and over the text embeddings), FAD and KAD of 3 clips vs 3 clips, relative "
        "difference (with this few frames the covariances are rank-deficient, which amplifies frame differences "
        "in FAD); same id: the cache keys agree.", "",
        "| embedder | same id | frames | text | FAD (A) | FAD rel. diff | KAD rel. diff |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['embedder']} | error: {r['error'][:120]} | | | | | |")
            continue
        text = f"{r['text_rel']:.1e}" if "text_rel" in r else ""
        lines.append(f"| {r['embedder']} | {'yes' if r['same_id'] else 'NO'} | {r['frames_rel']:.1e} | {text} | "
                     f"{r['fad_a']:.4g} | {r['fad_rel']:.1e} | {r['kad_rel']:.1e} |")
    return "\n".join(lines) + "\n"


def compare_boards(a_csv: Path, b_csv: Path) -> dict[str, Any]:
    """Cell-by-cell agreement of two long leaderboards (see the module docstring)."""
    import pandas as pd

    na = {c: [""] for c in ("value", "ci_low", "ci_high")}
    a, b = (pd.read_csv(p, keep_default_na=False, na_values=na) for p in (a_csv, b_csv))
    key = ["model", "embedder", "metric"]
    m = a.merge(b, on=key, suffixes=("_a", "_b"))
    out: dict[str, Any] = {"cells_a": len(a), "cells_b": len(b), "matched": len(m),
                           "ok_cells": int((m["status_a"] == "ok").sum())}
    for col in ("status", "embedder_id", "reference_hash"):
        out[f"same_{col}"] = bool((m[f"{col}_a"] == m[f"{col}_b"]).all())
    for col in ("value", "ci_low", "ci_high"):
        both = m[m[f"{col}_a"].notna() & m[f"{col}_b"].notna()]
        rel_diff = (both[f"{col}_b"] - both[f"{col}_a"]).abs() / both[f"{col}_a"].abs().clip(lower=1e-12)
        out[f"{col}_max_rel"] = float(rel_diff.max()) if len(both) else 0.0
        out[f"{col}_same_missing"] = bool((m[f"{col}_a"].isna() == m[f"{col}_b"].isna()).all())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["write", "compare", "boards"])
    ap.add_argument("dir", type=Path, help="shared folder: weights, audio and stack A's results (boards: A.csv)")
    ap.add_argument("other", type=Path, nargs="?", help="boards: B.csv")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--only", default="", help="comma-separated embedder options (default: all)")
    args = ap.parse_args(argv)
    only = [k.strip() for k in args.only.split(",") if k.strip()] or None
    d = args.dir
    if args.mode == "boards":
        res = compare_boards(d, args.other)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        (args.out_dir / "cross_stack_boards.json").write_text(json.dumps(res, indent=1) + "\n")
        print(json.dumps(res, indent=1))
        agree = res["matched"] == res["cells_a"] == res["cells_b"] and all(v for k, v in res.items() if k.startswith("same"))
        return 0 if agree else 1
    meta = {"versions": package_versions()}
    if args.mode == "write":
        d.mkdir(parents=True, exist_ok=True)
        weights = build_weights(d / "weights")
        paths = make_audio(d / "audio")
        (d / "weights.json").write_text(json.dumps(weights, indent=1))
        save(run_all(weights, paths, only), d / "stack_a.npz", meta)
        print(f"wrote {d / 'stack_a.npz'}")
        return 0
    weights = json.loads((d / "weights.json").read_text())
    paths = sorted((d / "audio").glob("clip*.wav"))
    return compare(d, run_all(weights, paths, only), meta, args.out_dir)


if __name__ == "__main__":
    sys.exit(main())
