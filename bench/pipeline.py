"""The run: gather audio -> embed (cached per file) -> score (cached per cell) -> leaderboard.

``run(cfg)`` takes the resolved Hydra config (see ``configs/config.yaml``) and writes into the run
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
import importlib.metadata
import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bench.audio import AudioError, load_audio
from bench.cache import ArrayCache, atomic_write_json, sha256_file, stable_hash
from bench.checkpoints import CheckpointUnavailable
from bench.embedders.base import Embedder, EmbedderUnavailable
from bench.errors import ErrorLog, RunFailed
from bench.metrics.base import EmbeddingSet, Metric, MetricInput, MetricResult, MetricUnavailable, prompt_of
from bench.models.base import ModelUnavailable
from bench.paths import inside, safe_id
from bench.prompts import PromptSet
from bench.references import ReferenceSet
from bench.report import leaderboard as lb

log = logging.getLogger(__name__)

GROUPS = ("model", "prompts", "reference", "embedder", "metric")
STAGES = ("gather", "embed", "score", "report")
TOP_LEVEL_KEYS = {
    *GROUPS,
    "experiment",
    "run_name",
    "output_dir",
    "cache_dir",
    "datasets_dir",
    "device",
    "batch_size",
    "seed",
    "on_error",
    "progress",
    "stages",
    "shard",
    "report_formats",
    "prepare_demo",
    "hydra",
}
#: packages whose versions go into the manifest
VERSIONED = (
    "genaudio-bench", "torch", "torchaudio", "numpy", "scipy", "soundfile", "resampy", "hydra-core", "omegaconf",
    "pandas", "transformers", "diffusers", "laion-clap", "frechet-audio-distance", "encodec", "librosa",
    "torchlibrosa", "musicnn", "aisfx", "fadtk",
)
UNAVAILABLE_ERRORS = (EmbedderUnavailable, CheckpointUnavailable, ModelUnavailable, ImportError)


class ConfigError(ValueError):
    """The run config is invalid; the message lists the valid choices."""


# -- small helpers ------------------------------------------------------------------------------
def _shard_keep(index: int, count: int) -> Callable[[str], bool] | None:
    if count <= 1:
        return None
    return lambda key: int(stable_hash(key, 8), 16) % count == index


def _versions() -> dict[str, str | None]:
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


@contextlib.contextmanager
def _timer(timings: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - t0, 3)


def validate(cfg: DictConfig) -> None:
    """Fail fast on unknown top-level keys, bad stages/policies and empty groups."""
    unknown = set(cfg.keys()) - TOP_LEVEL_KEYS
    if unknown:
        raise ConfigError(f"unknown config key(s) {sorted(unknown)}; valid keys: {sorted(TOP_LEVEL_KEYS - {'hydra'})}")
    if cfg.get("on_error", "skip") not in ("skip", "fail"):
        raise ConfigError(f"on_error must be 'skip' or 'fail', got {cfg.on_error!r}")
    bad = [s for s in cfg.get("stages", STAGES) if s not in STAGES]
    if bad:
        raise ConfigError(f"unknown stage(s) {bad}; choose from {list(STAGES)}")
    shard = cfg.get("shard") or {"index": 0, "count": 1}
    if not (0 <= int(shard["index"]) < int(shard["count"])):
        raise ConfigError(f"shard.index must be in [0, shard.count), got {shard['index']} of {shard['count']}")
    for g in GROUPS:
        node = cfg.get(g)
        if node is None:
            continue
        if not isinstance(node, DictConfig):
            raise ConfigError(f"{g} must be a mapping of <key>: {{_target_: ...}}, got {type(node).__name__}")
        for k, v in node.items():
            if not isinstance(v, DictConfig) or "_target_" not in v:
                raise ConfigError(
                    f"{g}.{k} has no _target_; config groups are selected as {g}=[a,b] and each option file nests "
                    f"its settings under its own key (see configs/{g}/)"
                )


def _instantiate(group: str, key: str, node: DictConfig) -> Any:
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, UNAVAILABLE_ERRORS):
            raise cause from exc
        if isinstance(cause, TypeError) and "argument" in str(cause):
            raise ConfigError(f"{group}.{key}: {cause} (check the keys in configs/{group}/{key}.yaml)") from exc
        raise


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


def run_dir_for(cfg: DictConfig) -> Path:
    """Hydra's job dir when running under Hydra (distinct per multirun job), else output_dir/run_name."""
    with contextlib.suppress(Exception):
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.output_dir) / safe_id(cfg.run_name)


def run(cfg: DictConfig | dict, run_dir: str | Path | None = None) -> Path:
    """Run the configured experiment; returns the run directory."""
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(cfg)
    validate(cfg)
    rdir = Path(run_dir) if run_dir else run_dir_for(cfg)
    rdir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(rdir / "run.log")
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
    stages = list(cfg.get("stages", STAGES))
    shard = cfg.get("shard") or {"index": 0, "count": 1}
    keep = _shard_keep(int(shard["index"]), int(shard["count"]))
    progress = bool(cfg.get("progress", True))
    resolved = OmegaConf.to_container(cfg, resolve=True)
    config_hash = stable_hash({k: v for k, v in resolved.items() if k not in ("progress", "hydra")}, 12)
    run_id = rdir.name
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
    ref_hash = {k: r.content_hash() for k, r in refs.items()}
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
            lb.write_csv(long, rdir / "leaderboard_long.csv")
            lb.write_csv(lb.wide_frame(long), rdir / "leaderboard.csv")
            lb.write_csv(_frame(per_item, lb.PER_ITEM_COLUMNS), rdir / "per_item.csv", lb.PER_ITEM_COLUMNS)
            lb.write_csv(_frame(replicates, lb.REPLICATE_COLUMNS), rdir / "replicates.csv", lb.REPLICATE_COLUMNS)
            curve_cols = ("run_id", "model", "prompt_set", "reference_set", "embedder", "metric", "n", "value")
            lb.write_csv(_frame(curves, curve_cols), rdir / "curves.csv", curve_cols)
        st.errors.write(rdir / "errors.csv")
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
                    "checkpoints": c.obj.checkpoints() if c.obj is not None else {},
                    "unavailable": c.error,
                }
                for k, c in models.items()
            },
            "embedders": {
                k: {
                    "id": c.obj.id if c.obj is not None else None,
                    "params": c.obj.params() if c.obj is not None else None,
                    "checkpoints": c.obj.checkpoints() if c.obj is not None else {},
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
            "n_errors": len(st.errors.rows),
            "counters": st.counters,
            "timings": st.timings,
        }
        atomic_write_json(rdir / "manifest.json", manifest)
    if "report" in stages and "score" in stages:
        with _timer(st.timings, "report"):
            try:
                from bench.report import write_reports

                write_reports(rdir, formats=tuple(cfg.get("report_formats", ("md", "tex", "html"))))
            except Exception as exc:  # reports are a convenience; the CSVs are the record
                log.warning("report rendering failed: %s", exc)
                log.debug("%s", traceback.format_exc())
        manifest["timings"] = st.timings
        atomic_write_json(rdir / "manifest.json", manifest)
    log.info("counters: %s", st.counters)
    log.info("timings (s): %s", st.timings)
    log.info("wrote %s", rdir / "leaderboard.csv")
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


def _paired_items(ps: PromptSet, keep: Callable[[str], bool] | None) -> dict[str, Path]:
    out = {}
    for p in ps.prompts:
        if p.reference and Path(p.reference).is_file() and (keep is None or keep(p.id)):
            out[p.id] = Path(p.reference)
    return out


# -- embedding -----------------------------------------------------------------------------------
@lru_cache(maxsize=65536)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def file_digest(path: str) -> str:
    """sha256 of a file, memoised on (path, size, mtime) within the process."""
    s = os.stat(path)
    return _file_digest(path, s.st_size, s.st_mtime_ns)


def embedding_key(digest: str, embedder: Embedder) -> str:
    return stable_hash({"audio_sha256": digest, "embedder": embedder.id}, 32)


def _embed_files(
    st: RunState,
    ekey: str,
    emb: Embedder,
    files: dict[str, list[tuple[str, str, str]]],
    progress: bool,
    compute: bool = True,
) -> None:
    """Embed every file not yet in the cache, in batches; record keys in ``st.emb_keys``."""
    from tqdm.auto import tqdm

    todo: list[tuple[str, str]] = []
    for path, owners in files.items():
        try:
            key = embedding_key(file_digest(path), emb)
        except OSError as exc:
            for o in owners:
                st.errors.add("embed", o[0], o[1], o[2], path, f"cannot read file ({exc.strerror or exc})")
            continue
        if st.cache.has(key):
            st.emb_keys[(ekey, path)] = key
            st.counters["embed_cache_hits"] += 1
        elif compute:
            todo.append((path, key))
    if not todo:
        return
    bar = tqdm(total=len(todo), desc=f"embed {ekey}", disable=not progress, unit="file")
    bs = max(1, int(emb.batch_size))
    for start in range(0, len(todo), bs):
        batch = todo[start : start + bs]
        wavs, ok = [], []
        for path, key in batch:
            try:
                wavs.append(load_audio(path, emb.audio))
                ok.append((path, key))
            except AudioError as exc:
                for o in files[path]:
                    st.errors.add("embed", o[0], o[1], o[2], path, str(exc))
            except (OSError, RuntimeError, ValueError, MemoryError) as exc:
                for o in files[path]:
                    st.errors.add("embed", o[0], o[1], o[2], path, f"cannot load audio ({type(exc).__name__}: {exc})")
        if ok:
            try:
                outs = emb.embed_batch(wavs)
            except RunFailed:
                raise
            except Exception:  # retry alone: one pathological clip must not sink the batch
                outs = []
                for w in wavs:
                    try:
                        outs.append(emb.embed(w))
                    except Exception as exc1:
                        outs.append(exc1)
            for (path, key), out in zip(ok, outs):
                if isinstance(out, BaseException):
                    reason = f"embedding failed ({type(out).__name__}: {out})"
                elif not isinstance(out, dict) or "emb" not in out:
                    reason = "embedder returned no 'emb'"
                elif out["emb"].size == 0 or not np.all(np.isfinite(out["emb"])):
                    reason = "embedding is empty or non-finite"
                else:
                    reason = ""
                if reason:
                    for o in files[path]:
                        st.errors.add("embed", o[0], o[1], o[2], path, reason)
                    continue
                st.cache.put(key, {k: np.asarray(v, dtype=np.float32) for k, v in out.items()})
                st.emb_keys[(ekey, path)] = key
                st.counters["embedded"] += 1
        bar.update(len(batch))
    bar.close()


# -- scoring ------------------------------------------------------------------------------------
def _loader(st: RunState) -> Callable[[str], dict[str, np.ndarray]]:
    @lru_cache(maxsize=4096)
    def load(key: str) -> dict[str, np.ndarray]:
        d = st.cache.get(key)
        if d is None:
            raise RuntimeError(f"embedding {key} vanished from the cache or failed its checksum")
        return d

    return load


def _emb_set(st: RunState, name: str, ekey: str, items: dict[str, Path]) -> tuple[EmbeddingSet, dict[str, str]]:
    keys = {i: st.emb_keys[(ekey, str(p))] for i, p in items.items() if (ekey, str(p)) in st.emb_keys}
    load = _loader(st)
    ids = sorted(keys)
    return EmbeddingSet(name, ids, load=lambda i: load(keys[i])), keys


def _load_stats(ref: ReferenceSet) -> dict[str, Any]:
    from bench.metrics.stats import GaussianStats

    s = GaussianStats.load_npz(ref.stats_path, ref.stats_key)
    return {"mu": s.mu, "sigma": s.cov, "n": s.n}


def _score_cell(st, cell, m, ps, ref, e, metric, paired_items, rows, per_item, replicates, curves) -> None:
    def unavailable(reason: str, status: str = "unavailable") -> None:
        rows.append({**cell, "value": math.nan, "n": 0, "status": status, "reason": reason})

    if m.obj is None:
        return unavailable(f"model unavailable: {m.error}")
    if e.obj is None:
        return unavailable(f"embedder unavailable: {e.error}")
    gen, gen_keys = _emb_set(st, f"{m.key}/{cell['prompt_set']}", e.key, st.audio.get((m.key, cell["prompt_set"]), {}))
    if not len(gen):
        return unavailable("no generated clip could be embedded (see errors.csv)", "error")
    ref_set, ref_keys, stats_id = None, {}, None
    if ref is not None and metric.needs_reference:
        if ref.is_stats:
            if ref.stats_embedder != e.key:
                return unavailable(
                    f"reference {cell['reference_set']} holds statistics for embedder {ref.stats_embedder!r} only"
                )
            try:
                ref_set = EmbeddingSet(cell["reference_set"], [], stats=_load_stats(ref))
            except Exception as exc:
                return unavailable(f"cannot load reference statistics {ref.stats_path}: {exc}", "error")
            stats_id = cell["reference_hash"]
        else:
            ref_set, ref_keys = _emb_set(st, cell["reference_set"], e.key, ref.items)
            if not len(ref_set):
                return unavailable("no reference clip could be embedded (see errors.csv)", "error")
    pair_set, pair_keys = _emb_set(st, f"paired/{cell['prompt_set']}", e.key, paired_items)
    texts = {p.id: p.text for p in ps.prompts}
    inp = MetricInput(
        gen=gen, ref=ref_set, paired=pair_set if len(pair_set) else None, texts=texts, embedder=e.obj,
        seed=int(st.cfg.get("seed", 0)),
    )
    try:
        metric.check(inp)
    except MetricUnavailable as exc:
        return unavailable(str(exc))
    key = stable_hash(
        {
            "metric": metric.id,
            "embedder": e.obj.id,
            "gen": sorted(gen_keys.items()),
            "ref": sorted(ref_keys.items()) if metric.needs_reference else None,
            "stats": stats_id,
            "paired": sorted(pair_keys.items()) if metric.needs_pairs else None,
            "texts": stable_hash(sorted(texts.items())) if metric.needs_text else None,
            "seed": inp.seed,
        },
        32,
    )
    score_path = Path(st.cfg.cache_dir) / "scores" / key[:2] / f"{key}.json"
    result: MetricResult | None = None
    if score_path.is_file():
        try:
            result = MetricResult.from_dict(json.loads(score_path.read_text()))
            st.counters["score_cache_hits"] += 1
        except (OSError, ValueError, TypeError):
            result = None
    if result is None:
        try:
            t0 = time.perf_counter()
            result = metric.compute(inp)
            log.info(
                "%s %s/%s vs %s [%s]: %.6g (%.2fs)", cell["metric"], m.key, cell["prompt_set"],
                cell["reference_set"], e.key, result.value, time.perf_counter() - t0,
            )
        except MetricUnavailable as exc:
            return unavailable(str(exc))
        except RunFailed:
            raise
        except Exception as exc:
            log.error("metric %s failed on %s: %s\n%s", cell["metric"], cell, exc, traceback.format_exc())
            if st.errors.policy == "fail":
                raise
            return unavailable(f"{type(exc).__name__}: {exc}", "error")
        atomic_write_json(score_path, _jsonable(result.to_dict()))
        st.counters["scored"] += 1
    ci = {"ci_low": _num(result.ci_low), "ci_high": _num(result.ci_high)}
    rows.append({**cell, "value": float(result.value), **ci, "n": result.n or len(gen), "status": "ok", "reason": ""})
    for xk, xv in sorted((result.extras or {}).items()):
        if isinstance(xv, (int, float)) and not isinstance(xv, bool):
            rows.append({**cell, "metric": f"{cell['metric']}.{xk}", "value": float(xv), "n": result.n or len(gen),
                         "status": "ok", "reason": ""})
    keys6 = {k: cell[k] for k in ("run_id", "model", "prompt_set", "reference_set", "embedder", "metric")}
    for iid, v in (result.per_item or {}).items():
        per_item.append({**keys6, "item_id": iid, "value": v})
    for b, v in enumerate(result.replicates or []):
        replicates.append({**keys6, "replicate": b, "value": v})
    for n, v in getattr(result, "curve", None) or (result.to_dict().get("curve") or []):
        curves.append({**keys6, "n": n, "value": v})
    return None


def _num(x: Any) -> float:
    return math.nan if x is None else float(x)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


__all__ = ["ConfigError", "embedding_key", "file_digest", "prompt_of", "run", "validate"]
