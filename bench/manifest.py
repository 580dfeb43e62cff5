"""``manifest.json``: :func:`build_manifest` (what a run did), :func:`package_versions` (the software) and
:func:`config_hash` (the run config's machine-independent identity)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.cache import stable_hash
from bench.checkpoints import bench_home, with_checks
from bench.resources import package_path

#: packages whose versions go into the manifest
VERSIONED = (
    "genaudio-bench", "torch", "torchaudio", "numpy", "scipy", "soundfile", "resampy", "hydra-core", "omegaconf",
    "pandas", "transformers", "diffusers", "laion-clap", "frechet-audio-distance", "encodec", "librosa",
    "torchlibrosa", "musicnn", "aisfx", "fadtk",
)


#: top-level config keys that say where results go or how fast they come, not what is computed
NOT_IDENTITY = ("hydra", "progress", "embed_io", "output_dir", "cache_dir")


def config_identity(resolved: Mapping[str, Any], roots: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The resolved run config as it identifies results: :data:`NOT_IDENTITY` keys dropped and the machine's
    folders (``roots``: name -> absolute path; default the package, ``datasets_dir`` and $GENAUDIO_BENCH_HOME)
    written as ``${name}``, so one run config gives one identity on every machine."""
    if roots is None:
        roots = {"bench_pkg": package_path(), "bench_home": str(bench_home())}
        if isinstance(resolved.get("datasets_dir"), str):
            roots["datasets_dir"] = resolved["datasets_dir"]
    # longest first: a folder inside another root (datasets_dir inside the package) keeps its own name
    ordered = sorted(((str(Path(p)), n) for n, p in roots.items() if p and Path(p).is_absolute()),
                     key=lambda t: -len(t[0]))

    def portable(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: portable(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [portable(x) for x in v]
        if isinstance(v, str):
            for root, name in ordered:
                if v == root or v.startswith(root + os.sep):
                    return "${" + name + "}" + v[len(root):]
        return v

    return {k: portable(v) for k, v in resolved.items() if k not in NOT_IDENTITY}


def config_hash(resolved: Mapping[str, Any], roots: Mapping[str, str] | None = None) -> str:
    """12-hex identity of a resolved run config (:func:`config_identity`): equal for the same run on any
    machine, in any output or cache folder, at any speed setting."""
    return stable_hash(config_identity(resolved, roots), 12)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in VERSIONED:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    with contextlib.suppress(Exception):
        import soundfile

        out["libsndfile"] = soundfile.__libsndfile_version__
    with contextlib.suppress(Exception):
        root = Path(__file__).resolve().parent.parent
        res = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if res.returncode == 0:
            out["git_commit"] = res.stdout.strip()
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return str(path)


def _component_entry(c: Any, with_id: bool) -> dict[str, Any]:
    entry = {"id": c.obj.id if c.obj is not None else None} if with_id else {}
    return {
        **entry,
        "params": c.obj.params() if c.obj is not None else None,
        "checkpoints": with_checks(c.obj.checkpoints()) if c.obj is not None else {},
        "unavailable": c.error,
    }


def build_manifest(
    *,
    run_id: str,
    config_hash: str,
    started: str,
    config: dict[str, Any],
    stages: list[str],
    shard: dict[str, int],
    models: Mapping[str, Any],
    embedders: Mapping[str, Any],
    metrics: Mapping[str, Any],
    prompt_sets: Mapping[str, Any],
    refs: Mapping[str, Any],
    ref_hash: Mapping[str, str | None],
    audio: Mapping[tuple[str, str], Mapping[str, Path]],
    run_dir: Path,
    n_errors: int,
    n_warnings: int,
    counters: dict[str, int],
    timings: dict[str, float],
) -> dict[str, Any]:
    """``manifest.json`` of a run: what ran (resolved config, versions, component params and weights),
    on what (prompt and reference sets, audio files relative to ``run_dir``), and how it went."""
    return {
        "run_id": run_id,
        "config_hash": config_hash,
        "started": started,
        "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "argv": sys.argv,
        "config": config,
        "versions": package_versions(),
        "stages": stages,
        "shard": dict(shard),
        "models": {k: _component_entry(c, with_id=False) for k, c in models.items()},
        "embedders": {k: _component_entry(c, with_id=True) for k, c in embedders.items()},
        "metrics": {k: {"id": m.id, "params": m.params()} for k, m in metrics.items()},
        "prompt_sets": {k: ps.provenance() for k, ps in prompt_sets.items()},
        "reference_sets": {k: {**r.provenance_dict(), "hash": ref_hash[k]} for k, r in refs.items()},
        "audio": {
            m: {p: {i: _rel(path, run_dir) for i, path in items.items()} for (m2, p), items in audio.items() if m2 == m}
            for m in models
        },
        "n_errors": n_errors,
        "n_warnings": n_warnings,
        "counters": counters,
        "timings": timings,
    }
