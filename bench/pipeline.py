"""The run: gather audio -> embed (cached per file) -> score (cached per cell) -> leaderboard.

``run(cfg)`` takes the resolved Hydra config (see ``bench/configs/config.yaml``) and writes into the run
directory:

- ``audio/<model>/<prompt set>/*.wav``     generated audio (resumable)
- ``leaderboard.csv`` / ``leaderboard_long.csv``  wide and long tables (:mod:`bench.report.leaderboard`)
- ``per_item.csv``, ``replicates.csv``, ``curves.csv``  per-clip scores, bootstrap replicates, FAD-vs-n
- ``errors.csv``                            one row per file that could not be used, with the reason
- ``manifest.json``                         resolved config, versions, checkpoint hashes, timings, counters

Embeddings live in a content-addressed cache shared by runs (``cache_dir``): key = sha256 of the
audio file + the embedder id (its name, preprocessing and checkpoint digests). Metric values are
cached by a key over the metric parameters and every input embedding key, so a rerun recomputes
nothing, and a changed file, checkpoint or parameter recomputes exactly what depends on it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bench.cache import ArrayCache, atomic_write_json, stable_hash
from bench.checkpoints import with_checks
from bench.config import (
    GROUPS,
    STAGES,
    TOP_LEVEL_KEYS,
    UNAVAILABLE_ERRORS,
    accepted_params,
    check_group_overrides,
    group_options,
    locate_target,
    validate,
)
from bench.config import instantiate_option as _instantiate
from bench.errors import ConfigError, ErrorLog
from bench.manifest import package_versions as _versions
from bench.metrics.base import Metric, prompt_of
from bench.paths import inside, safe_id
from bench.prompts import PromptSet
from bench.references import ReferenceSet
from bench.report import leaderboard as lb
from bench.stages.embed import EmbeddingLoader, embedding_key, file_digest
from bench.stages.embed import embed_files as _embed_files
from bench.stages.score import score_cell as _score_cell

log = logging.getLogger(__name__)

# -- small helpers ------------------------------------------------------------------------------
def _shard_keep(index: int, count: int) -> Callable[[str], bool] | None:
    if count <= 1:
        return None
    return lambda key: int(stable_hash(key, 8), 16) % count == index


@contextlib.contextmanager
def _timer(timings: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - t0, 3)


# -- the run ---------------------------------------------------------------------------------
@dataclass
class Component:
    key: str
    obj: Any = None
    error: str | None = None  # reason it is unavailable


@dataclass
class RunState:
    cfg: DictConfig
    run_dir: Path
    errors: ErrorLog
    cache: ArrayCache
    timings: dict[str, float] = field(default_factory=dict)
    counters: dict[str, int] = field(
        default_factory=lambda: {
            "generated": 0,
            "embedded": 0,
            "embed_cache_hits": 0,
            "scored": 0,
            "score_cache_hits": 0,
        }
    )
    #: (model, prompt set) -> {item_id: audio path}
    audio: dict[tuple[str, str], dict[str, Path]] = field(default_factory=dict)
    #: (embedder, path) -> cache key of its embedding (only for successfully embedded files)
    emb_keys: dict[tuple[str, str], str] = field(default_factory=dict)
    loader: EmbeddingLoader = field(init=False)

    def __post_init__(self) -> None:
        self.loader = EmbeddingLoader(self.cache)


def _shard_of(cfg: DictConfig) -> tuple[int, int]:
    shard = cfg.get("shard") or {}
    return int(shard.get("index", 0)), int(shard.get("count", 1))


def run_dir_for(cfg: DictConfig) -> Path:
    """Where a run writes.

    A sharded run (``shard.count > 1``) always writes into ``output_dir/run_name`` - the folder the
    final, unsharded run reads - so shards launched as Hydra multirun jobs share generated audio;
    their own records go to ``shards/<index>-of-<count>/`` inside it. Otherwise Hydra's job dir when
    running under Hydra (distinct per multirun job), else ``output_dir/run_name``. A relative
    ``output_dir`` is relative to the directory the command was started from.
    """
    hydra_dir, cwd = None, Path.cwd()
    with contextlib.suppress(Exception):
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            hc = HydraConfig.get()
            hydra_dir, cwd = Path(hc.runtime.output_dir), Path(hc.runtime.cwd)
    if hydra_dir is not None and _shard_of(cfg)[1] <= 1:
        return hydra_dir
    out = Path(str(cfg.output_dir)).expanduser()
    return (out if out.is_absolute() else cwd / out) / safe_id(cfg.run_name)


def records_dir(rdir: Path, cfg: DictConfig) -> Path:
    """Folder for this run's tables, errors.csv and manifest.json (a shard's own subfolder when sharded)."""
    index, count = _shard_of(cfg)
    return rdir if count <= 1 else inside(rdir, "shards", f"{index}-of-{count}")


def run(cfg: DictConfig | dict, run_dir: str | Path | None = None) -> Path:
    """Run the configured experiment; returns the run directory.

    Raises :class:`ConfigError` (before any heavy work) when the config is invalid.
    """
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(cfg)
    validate(cfg)
    rdir = Path(run_dir) if run_dir else run_dir_for(cfg)
    rec = records_dir(rdir, cfg)
    rec.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(rec / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("bench").addHandler(handler)
    if logging.getLogger("bench").level == logging.NOTSET:
        logging.getLogger("bench").setLevel(logging.INFO)
    try:
        return _run(cfg, rdir)
    finally:
        logging.getLogger("bench").removeHandler(handler)
        handler.close()


def _run(cfg: DictConfig, rdir: Path) -> Path:
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    st = RunState(cfg, rdir, ErrorLog(cfg.get("on_error", "skip")), ArrayCache(Path(cfg.cache_dir) / "embeddings"))
    rec = records_dir(rdir, cfg)
    with contextlib.suppress(OSError):
        st.cache.sweep_tmp()
    stages = list(cfg.get("stages", STAGES))
    shard = cfg.get("shard") or {"index": 0, "count": 1}
    keep = _shard_keep(int(shard["index"]), int(shard["count"]))
    progress = bool(cfg.get("progress", True))
    resolved = OmegaConf.to_container(cfg, resolve=True)
    config_hash = stable_hash({k: v for k, v in resolved.items() if k not in ("progress", "hydra")}, 12)
    # multirun jobs live in <sweep dir>/<job number>: prefix the run name so merged boards stay readable
    run_id = rdir.name if rdir.name == safe_id(cfg.run_name) else f"{safe_id(cfg.run_name)}-{rdir.name}"
    log.info("run %s (config %s) -> %s", run_id, config_hash, rdir)

    if cfg.get("prepare_demo"):
        from bench.demo import prepare

        with _timer(st.timings, "prepare_demo"):
            prepare()

    with _timer(st.timings, "setup"):
        prompt_sets = {k: _instantiate("prompts", k, v) for k, v in (cfg.get("prompts") or {}).items()}
        for k, ps in prompt_sets.items():
            if not isinstance(ps, PromptSet):
                raise ConfigError(f"prompts.{k} must build a PromptSet, got {type(ps).__name__}")
        refs = {k: _instantiate("reference", k, v) for k, v in (cfg.get("reference") or {}).items()}
        models = _components("model", cfg.get("model") or {})
        embedders = _components("embedder", cfg.get("embedder") or {})
        metrics = {k: _instantiate("metric", k, v) for k, v in (cfg.get("metric") or {}).items()}
        for k, m in metrics.items():
            if not isinstance(m, Metric):
                raise ConfigError(f"metric.{k} must build a bench.metrics.base.Metric, got {type(m).__name__}")
        for k, ref in refs.items():
            for mid in ref.missing:
                st.errors.add("gather", "reference", k, mid, ref.items[mid], "reference file listed but not found")
                ref.items.pop(mid)

    # 1. gather
    if "gather" in stages or "embed" in stages or "score" in stages:
        with _timer(st.timings, "gather"):
            for ps_key, ps in prompt_sets.items():
                for m in models.values():
                    if m.obj is None:
                        continue
                    m.obj.name = m.key
                    out_dir = inside(rdir, "audio", safe_id(m.key), safe_id(ps_key))
                    st.audio[(m.key, ps_key)] = m.obj.gather(
                        ps.prompts, out_dir, st.errors, set_name=ps_key, progress=progress, keep=keep
                    )
                    st.counters["generated"] += int(getattr(m.obj, "n_generated", 0))

    # 2. embed
    paired = {k: _paired_items(ps, keep) for k, ps in prompt_sets.items()}
    if "embed" in stages or "score" in stages:
        with _timer(st.timings, "embed"):
            for e in embedders.values():
                if e.obj is None:
                    continue
                files: dict[str, list[tuple[str, str, str]]] = {}  # path -> [(owner, set, item)]
                for (mk, pk), items in st.audio.items():
                    for iid, p in items.items():
                        files.setdefault(str(p), []).append((mk, pk, iid))
                for rk, ref in refs.items():
                    for iid, p in ref.items.items():
                        if keep is None or keep(iid):
                            files.setdefault(str(p), []).append(("reference", rk, iid))
                for pk, items in paired.items():
                    for iid, p in items.items():
                        files.setdefault(str(p), []).append(("paired", pk, iid))
                _embed_files(st, e.key, e.obj, files, progress, compute="embed" in stages)

    # 3. score
    rows: list[dict[str, Any]] = []
    per_item: list[dict[str, Any]] = []
    replicates: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    # content hashes of the reference sets (reads every reference file once; skipped by gather/embed-only runs)
    ref_hash = {k: _reference_hash(r) if "score" in stages else None for k, r in refs.items()}
    if "score" in stages:
        if keep is not None:
            log.warning("scoring shard %s of %s only: values cover that shard", shard["index"], shard["count"])
        with _timer(st.timings, "score"):
            base = {"run_id": run_id, "config_hash": config_hash}
            for ps_key, ps in prompt_sets.items():
                for m in models.values():
                    for rk in refs or {"": None}:
                        for e in embedders.values():
                            for mk, metric in metrics.items():
                                cell = {
                                    **base,
                                    "model": m.key,
                                    "prompt_set": ps_key,
                                    "reference_set": rk,
                                    "embedder": e.key,
                                    "embedder_id": e.obj.id if e.obj is not None else "",
                                    "reference_hash": ref_hash.get(rk, ""),
                                    "metric": mk,
                                    "lower_is_better": bool(metric.lower_is_better),
                                }
                                _score_cell(
                                    st, cell, m, ps, refs.get(rk), e, metric, paired[ps_key],
                                    rows, per_item, replicates, curves,
                                )

    # 4. write
    with _timer(st.timings, "write"):
        if "score" in stages:
            long = lb.long_frame(rows)
            lb.write_csv(long, rec / "leaderboard_long.csv")
            lb.write_csv(lb.wide_frame(long), rec / "leaderboard.csv")
            lb.write_csv(_frame(per_item, lb.PER_ITEM_COLUMNS), rec / "per_item.csv", lb.PER_ITEM_COLUMNS)
            lb.write_csv(_frame(replicates, lb.REPLICATE_COLUMNS), rec / "replicates.csv", lb.REPLICATE_COLUMNS)
            lb.write_csv(_frame(curves, lb.CURVE_COLUMNS), rec / "curves.csv", lb.CURVE_COLUMNS)
        st.errors.write(rec / "errors.csv")
        manifest = {
            "run_id": run_id,
            "config_hash": config_hash,
            "started": started,
            "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "argv": sys.argv,
            "config": resolved,
            "versions": _versions(),
            "stages": stages,
            "shard": dict(shard),
            "models": {
                k: {
                    "params": c.obj.params() if c.obj is not None else None,
                    "checkpoints": with_checks(c.obj.checkpoints()) if c.obj is not None else {},
                    "unavailable": c.error,
                }
                for k, c in models.items()
            },
            "embedders": {
                k: {
                    "id": c.obj.id if c.obj is not None else None,
                    "params": c.obj.params() if c.obj is not None else None,
                    "checkpoints": with_checks(c.obj.checkpoints()) if c.obj is not None else {},
                    "unavailable": c.error,
                }
                for k, c in embedders.items()
            },
            "metrics": {k: {"id": m.id, "params": m.params()} for k, m in metrics.items()},
            "prompt_sets": {k: ps.provenance() for k, ps in prompt_sets.items()},
            "reference_sets": {k: {**r.provenance_dict(), "hash": ref_hash[k]} for k, r in refs.items()},
            "audio": {
                m: {
                    p: {i: _rel(path, rdir) for i, path in items.items()}
                    for (m2, p), items in st.audio.items()
                    if m2 == m
                }
                for m in models
            },
            "n_errors": st.errors.n_errors,
            "n_warnings": st.errors.n_warnings,
            "counters": st.counters,
            "timings": st.timings,
        }
        atomic_write_json(rec / "manifest.json", manifest)
    if "report" in stages and "score" in stages:
        with _timer(st.timings, "report"):
            try:
                from bench.report import write_reports

                write_reports(rec, formats=tuple(cfg.get("report_formats", ("md", "tex", "html"))))
            except Exception as exc:  # reports are a convenience; the CSVs are the record
                log.warning("report rendering failed: %s", exc)
                log.debug("%s", traceback.format_exc())
    manifest["timings"] = st.timings  # now including "write" (and "report")
    atomic_write_json(rec / "manifest.json", manifest)
    log.info("counters: %s", st.counters)
    log.info("timings (s): %s", st.timings)
    log.info("wrote %s", rec / ("leaderboard.csv" if "score" in stages else "manifest.json"))
    return rdir


def _rel(path: Path, root: Path) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return str(path)


def _frame(rows: list[dict[str, Any]], columns: tuple[str, ...]):
    import pandas as pd

    return pd.DataFrame(rows, columns=list(columns))


def _components(group: str, nodes: DictConfig) -> dict[str, Component]:
    out = {}
    for k, v in nodes.items():
        try:
            out[k] = Component(k, _instantiate(group, k, v))
        except UNAVAILABLE_ERRORS as exc:
            log.warning("%s %s unavailable: %s", group, k, exc)
            out[k] = Component(k, None, f"{type(exc).__name__}: {exc}")
    return out


def _reference_hash(ref: ReferenceSet) -> str:
    """:meth:`ReferenceSet.content_hash` (same value), tolerating unreadable files and reusing file digests."""
    if ref.is_stats:
        return ref.content_hash()
    digests = []
    for k, p in ref.items.items():
        try:
            digests.append((k, file_digest(str(p))))
        except OSError:
            digests.append((k, "unreadable"))
    return stable_hash(sorted(digests))


def _paired_items(ps: PromptSet, keep: Callable[[str], bool] | None) -> dict[str, Path]:
    out = {}
    for p in ps.prompts:
        if p.reference and Path(p.reference).is_file() and (keep is None or keep(p.id)):
            out[p.id] = Path(p.reference)
    return out


__all__ = [
    "GROUPS", "STAGES", "TOP_LEVEL_KEYS", "ConfigError", "accepted_params", "check_group_overrides", "embedding_key",
    "file_digest", "group_options", "locate_target", "prompt_of", "run", "run_dir_for", "validate",
]
