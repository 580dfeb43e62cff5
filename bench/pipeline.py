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
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bench.cache import ArrayCache, atomic_write_json, stable_hash
from bench.config import (
    GROUPS,
    STAGES,
    TOP_LEVEL_KEYS,
    UNAVAILABLE_ERRORS,
    accepted_params,
    check_group_overrides,
    group_options,
    locate_target,
    never_computable,
    validate,
)
from bench.config import instantiate_option as _instantiate
from bench.coverage import MISSING_COLUMNS, restrict_run_audio
from bench.errors import ConfigError, ErrorLog
from bench.manifest import build_manifest
from bench.manifest import config_hash as run_config_hash
from bench.metrics.base import Metric, prompt_of
from bench.paths import inside, safe_id
from bench.prompts import PromptSet
from bench.references import ReferenceSet
from bench.report import leaderboard as lb
from bench.stages.common import Component, new_counters
from bench.stages.embed import Embedded, EmbeddingLoader, EmbedIO, embed, embedding_key, file_digest
from bench.stages.gather import Gathered, embed_jobs, gather, paired_items
from bench.stages.score import ScoreContext, Scores, score

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
    never_computable(cfg)  # a metric no selected embedder can serve fails here, before any work
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


@dataclass
class _Setup:
    """The components a config builds (models / embedders that cannot run here carry the reason)."""

    prompt_sets: dict[str, PromptSet]
    refs: dict[str, ReferenceSet]
    models: dict[str, Component]
    embedders: dict[str, Component]
    metrics: dict[str, Metric]


@dataclass
class _RunContext:
    """What every stage of one run shares: where it writes, its identity, its shard, and its bookkeeping."""

    rdir: Path
    rec: Path  # where tables and the manifest go (``records_dir``)
    run_id: str
    config_hash: str
    resolved: dict[str, Any]
    stages: list[str]
    shard: dict[str, int]
    keep: Callable[[str], bool] | None
    progress: bool
    errors: ErrorLog
    cache: ArrayCache
    started: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    timings: dict[str, float] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=new_counters)

    @classmethod
    def of(cls, cfg: DictConfig, rdir: Path) -> _RunContext:
        resolved = OmegaConf.to_container(cfg, resolve=True)
        config_hash = run_config_hash(resolved)  # the same on every machine (not output/cache folders, speed)
        # multirun jobs live in <sweep dir>/<job number>: prefix the run name so merged boards stay readable
        run_id = rdir.name if rdir.name == safe_id(cfg.run_name) else f"{safe_id(cfg.run_name)}-{rdir.name}"
        shard = cfg.get("shard") or {"index": 0, "count": 1}
        return cls(
            rdir, records_dir(rdir, cfg), run_id, config_hash, resolved, list(cfg.get("stages", STAGES)), shard,
            _shard_keep(int(shard["index"]), int(shard["count"])), bool(cfg.get("progress", True)),
            ErrorLog(cfg.get("on_error", "skip")), ArrayCache(Path(cfg.cache_dir) / "embeddings"),
        )

    def runs(self, *stages: str) -> bool:
        """Whether any of ``stages`` is part of this run."""
        return bool(set(stages) & set(self.stages))


def _run(cfg: DictConfig, rdir: Path) -> Path:
    ctx = _RunContext.of(cfg, rdir)
    with contextlib.suppress(OSError):
        ctx.cache.sweep_tmp()
    log.info("run %s (config %s) -> %s", ctx.run_id, ctx.config_hash, rdir)
    uses_demo = "demo" in (cfg.get("prompts") or {}) or "demo" in (cfg.get("reference") or {})
    if cfg.get("prepare_demo") and uses_demo:  # only when the demo prompt or reference set is selected
        from bench.demo import prepare

        with _timer(ctx.timings, "prepare_demo"):
            prepare()
    with _timer(ctx.timings, "setup"):
        try:
            embed_io = EmbedIO.from_config(cfg.get("embed_io"))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"embed_io: {exc}") from exc
        setup = _setup(cfg, ctx.errors)

    gathered = Gathered()
    if ctx.runs("gather", "embed", "score"):
        with _timer(ctx.timings, "gather"):
            gathered = gather(setup.prompt_sets, setup.models, rdir, ctx.errors, ctx.progress, ctx.keep)
    ctx.counters["generated"] += gathered.n_generated
    coverage_mode = str(cfg.get("coverage", "intersect"))
    coverages = {}  # models in one table are scored on the same prompt ids (bench.coverage)
    if ctx.runs("score") and ctx.keep is None:
        prompt_ids = {k: [p.id for p in ps.prompts] for k, ps in setup.prompt_sets.items()}
        coverages = restrict_run_audio(gathered.audio, prompt_ids, list(setup.models), coverage_mode)

    paired = {k: paired_items(ps, ctx.keep) for k, ps in setup.prompt_sets.items()}
    embedded = Embedded({}, {})
    if ctx.runs("embed", "score"):
        with _timer(ctx.timings, "embed"):
            files = embed_jobs(gathered.audio, setup.refs, paired, ctx.keep)
            embedded = embed(ctx.cache, ctx.errors, setup.embedders, files, ctx.progress,
                             compute=ctx.runs("embed"), io=embed_io)
    for k, v in embedded.counters.items():
        ctx.counters[k] += v

    # content hashes of the reference sets (reads every reference file once; skipped by gather/embed-only runs)
    ref_hash = {k: _reference_hash(r) if ctx.runs("score") else None for k, r in setup.refs.items()}
    scores = _score(cfg, ctx, setup, gathered, embedded, paired, ref_hash) if ctx.runs("score") else Scores()

    with _timer(ctx.timings, "write"):
        if ctx.runs("score"):
            _write_tables(ctx.rec, scores)
        ctx.errors.write(ctx.rec / "errors.csv")
        if coverages:
            lb.write_csv(_frame([r for c in coverages.values() for r in c.rows], MISSING_COLUMNS),
                         ctx.rec / "missing.csv", MISSING_COLUMNS)
        manifest = build_manifest(
            run_id=ctx.run_id, config_hash=ctx.config_hash, started=ctx.started, config=ctx.resolved,
            stages=ctx.stages, shard=ctx.shard, models=setup.models, embedders=setup.embedders,
            metrics=setup.metrics, prompt_sets=setup.prompt_sets, refs=setup.refs, ref_hash=ref_hash,
            audio=gathered.audio, run_dir=rdir, n_errors=ctx.errors.n_errors, n_warnings=ctx.errors.n_warnings,
            counters=ctx.counters, timings=ctx.timings,
        )
        manifest["coverage"] = {k: c.manifest_entry(coverage_mode) for k, c in coverages.items()}
        atomic_write_json(ctx.rec / "manifest.json", manifest)
    if ctx.runs("report") and ctx.runs("score"):
        with _timer(ctx.timings, "report"):
            _write_reports(ctx.rec, cfg)
    manifest["timings"] = ctx.timings  # now including "write" (and "report")
    atomic_write_json(ctx.rec / "manifest.json", manifest)
    log.info("counters: %s", ctx.counters)
    log.info("timings (s): %s", ctx.timings)
    log.info("wrote %s", ctx.rec / ("leaderboard.csv" if ctx.runs("score") else "manifest.json"))
    return rdir


def _score(cfg: DictConfig, ctx: _RunContext, setup: _Setup, gathered: Gathered, embedded: Embedded,
           paired: dict, ref_hash: dict[str, str | None]) -> Scores:
    """The score stage, minus the (embedder, metric) pairs that can never be computed (checked from the
    classes at config time: they make no rows, hence no columns)."""
    never = never_computable(cfg)
    if never:
        log.info("not computable, left out of the tables: %s",
                 ", ".join(f"{lb.column_name(mk, ek)} ({why})" for (ek, mk), why in never.items()))
    if ctx.keep is not None:
        log.warning("scoring shard %s of %s only: values cover that shard", ctx.shard["index"], ctx.shard["count"])
    with _timer(ctx.timings, "score"):
        sctx = ScoreContext(
            embedded.keys, EmbeddingLoader(ctx.cache), gathered.audio, Path(cfg.cache_dir) / "scores",
            int(cfg.get("seed", 0)), ctx.errors.policy == "fail",
        )
        base = {"run_id": ctx.run_id, "config_hash": ctx.config_hash}
        scores = score(sctx, base, setup.prompt_sets, setup.models, setup.refs, ref_hash, setup.embedders,
                       setup.metrics, paired)
    scores.rows = [r for r in scores.rows if (r["embedder"], str(r["metric"]).split(".")[0]) not in never]
    ctx.counters["scored"] += scores.scored
    ctx.counters["score_cache_hits"] += scores.cache_hits
    return scores


def _setup(cfg: DictConfig, errors: ErrorLog) -> _Setup:
    """Build every configured component; reference files listed but absent go to the error log."""
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
            errors.add("gather", "reference", k, mid, ref.items[mid], "reference file listed but not found")
            ref.items.pop(mid)
    return _Setup(prompt_sets, refs, models, embedders, metrics)


def _write_tables(rec: Path, scores: Scores) -> None:
    long = lb.long_frame(scores.rows)
    lb.write_csv(long, rec / "leaderboard_long.csv")
    lb.write_csv(lb.wide_frame(long), rec / "leaderboard.csv")
    for name, rows, cols in (
        ("per_item.csv", scores.per_item, lb.PER_ITEM_COLUMNS),
        ("replicates.csv", scores.replicates, lb.REPLICATE_COLUMNS),
        ("curves.csv", scores.curves, lb.CURVE_COLUMNS),
    ):
        lb.write_csv(_frame(rows, cols), rec / name, cols)


def _write_reports(rec: Path, cfg: DictConfig) -> None:
    try:
        from bench.report import write_reports

        write_reports(rec, formats=tuple(cfg.get("report_formats", ("md", "tex", "html"))))
    except Exception as exc:  # reports are a convenience; the CSVs are the record
        log.warning("report rendering failed: %s", exc)
        log.debug("%s", traceback.format_exc())


def _frame(rows: list[dict[str, Any]], columns: tuple[str, ...]):
    import pandas as pd

    return pd.DataFrame(rows, columns=list(columns))


def _components(group: str, nodes: DictConfig) -> dict[str, Component]:
    """Instantiate a group's options; an option that builds a ``{name: object}`` mapping (``folders``)
    contributes one component per entry, named by its key."""
    out: dict[str, Component] = {}
    for k, v in nodes.items():
        try:
            obj = _instantiate(group, k, v)
        except UNAVAILABLE_ERRORS as exc:
            log.warning("%s %s unavailable: %s", group, k, exc)
            obj, error = None, f"{type(exc).__name__}: {exc}"
        else:
            error = None
        entries = obj.items() if isinstance(obj, dict) else [(str(k), obj)]
        for name, o in entries:
            if name in out or (isinstance(obj, dict) and name in nodes and name != k):
                raise ConfigError(f"{group} name {name!r} is used twice (option {k!r}); rename the folder or the option")
            out[name] = Component(name, o, error)
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


__all__ = [
    "GROUPS", "STAGES", "TOP_LEVEL_KEYS", "ConfigError", "accepted_params", "check_group_overrides", "embedding_key",
    "file_digest", "group_options", "locate_target", "prompt_of", "run", "run_dir_for", "validate",
]
