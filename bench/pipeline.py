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
import difflib
import importlib
import importlib.metadata
import inspect
import logging
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bench.audio import AudioError, AudioSpec, extension_note, load_audio_report
from bench.cache import ArrayCache, atomic_write_json, read_json_checked, sha256_file, stable_hash, write_json_checked
from bench.checkpoints import CheckpointUnavailable
from bench.embedders.base import Embedder, EmbedderUnavailable
from bench.errors import ConfigError, ErrorLog, RunFailed
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


CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
#: Hydra's reserved keys inside an instantiable node
_HYDRA_NODE_KEYS = {"_target_", "_recursive_", "_convert_", "_partial_", "_args_"}


def _did_you_mean(word: str, choices: list[str] | set[str]) -> str:
    close = difflib.get_close_matches(str(word), sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def group_options(group: str) -> list[str]:
    """Option keys available in ``configs/<group>/`` (for error messages)."""
    d = CONFIG_DIR / group
    return sorted(f.stem for f in d.glob("*.yaml")) if d.is_dir() else []


def check_group_overrides(overrides: list[str], search_dirs: tuple[str | Path, ...] = ()) -> None:
    """Raise :class:`ConfigError` listing the available options when a Hydra override selects a
    config-group option that does not exist (``embedder=[vgish]``, ``model=[synth],[nosie]``).

    Hydra itself lists the options only for single-valued selections; call this on the command
    line overrides before composing. ``search_dirs`` are extra config dirs (``--config-dir``).
    Overrides Hydra cannot parse are left for Hydra to report.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception:
        return
    for o in parsed:
        group = o.key_or_group
        if o.package or o.is_delete() or group not in (*GROUPS, "experiment"):
            continue
        values = list(o.sweep_iterator()) if o.is_sweep_override() else [o.value()]
        names: list[str] = []
        for v in values:
            names += [str(x) for x in v] if isinstance(v, list) else ([] if v is None else [str(v)])
        available = set(group_options(group))
        for d in search_dirs:
            available |= {f.stem for f in (Path(d) / group).glob("*.yaml")}
        unknown = [n for n in names if n not in available and n != "null"]
        if unknown:
            hints = "".join(_did_you_mean(n, available) for n in unknown)
            raise ConfigError(
                f"unknown {group} option(s) {unknown}{hints}; available {group} options: {sorted(available)} "
                f"(files in configs/{group}/)"
            )


def validate(cfg: DictConfig) -> None:
    """Fail fast (before any heavy work) on a bad config, with the valid choices in the message.

    Checks: unknown top-level keys, missing mandatory values (``???``), ``on_error``, ``stages``,
    ``shard``, the shape of every group node, that every ``_target_`` can be located, and that
    every key of an option is a parameter its ``_target_`` accepts (``audio`` sub-keys against
    :class:`bench.audio.AudioSpec`).
    """
    unknown = set(cfg.keys()) - TOP_LEVEL_KEYS
    if unknown:
        valid = sorted(TOP_LEVEL_KEYS - {"hydra"})
        hints = "".join(_did_you_mean(k, valid) for k in sorted(unknown))
        raise ConfigError(f"unknown config key(s) {sorted(unknown)}{hints}; valid keys: {valid}")
    from omegaconf.errors import OmegaConfBaseException

    body = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    try:
        missing = sorted(str(k) for k in OmegaConf.missing_keys(body))
    except OmegaConfBaseException:
        missing = []
    if missing:
        raise ConfigError(f"mandatory value(s) not set: {missing} (e.g. bench {missing[0]}=...)")
    try:  # every interpolation must resolve (e.g. one pointing at an unset ??? value)
        OmegaConf.to_container(body, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"config does not resolve: {exc}".replace("\n", " ")) from None
    if cfg.get("on_error", "skip") not in ("skip", "fail"):
        raise ConfigError(f"on_error must be 'skip' or 'fail', got {cfg.on_error!r}")
    stages = cfg.get("stages", STAGES)
    if isinstance(stages, str) or not all(isinstance(x, str) for x in stages):
        raise ConfigError(f"stages must be a list such as [gather,embed,score,report], got {stages!r}")
    bad = [x for x in stages if x not in STAGES]
    if bad:
        raise ConfigError(f"unknown stage(s) {bad}; choose from {list(STAGES)}")
    shard = cfg.get("shard") or {"index": 0, "count": 1}
    extra = set(shard.keys()) - {"index", "count"}
    if extra:
        raise ConfigError(f"unknown shard key(s) {sorted(extra)}; shard has 'index' and 'count'")
    try:
        index, count = int(shard.get("index", 0)), int(shard.get("count", 1))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"shard.index and shard.count must be integers, got {dict(shard)}") from exc
    if count < 1 or not (0 <= index < count):
        raise ConfigError(f"shard.index must be in [0, shard.count), got {index} of {count}")
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
                    f"its settings under its own key (see configs/{g}/; options: {group_options(g)})"
                )
            _check_node(g, str(k), v)


def _where(group: str, key: str) -> str:
    f = CONFIG_DIR / group / f"{key}.yaml"
    return f"configs/{group}/{key}.yaml" if f.is_file() else f"the {group}.{key} config"


def locate_target(target: str) -> Any | None:
    """Import the object a ``_target_`` names. None when a *dependency* of its module is missing
    (reported as unavailable later); :class:`ConfigError` when the target itself does not exist."""
    parts = str(target).split(".")
    for i in range(len(parts) - 1, 0, -1):
        mod_name = ".".join(parts[:i])
        try:
            obj = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name and (mod_name == exc.name or mod_name.startswith(exc.name + ".")):
                continue  # this prefix is not a module: try a shorter one (Class.method targets)
            return None  # the module exists but needs a package that is not installed
        except ImportError:
            return None
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                public = [a for a in dir(obj) if not a.startswith("_")]
                raise ConfigError(
                    f"_target_ {target!r}: {getattr(obj, '__name__', obj)!s} has no attribute {attr!r}"
                    f"{_did_you_mean(attr, public)}"
                )
            obj = getattr(obj, attr)
        return obj
    raise ConfigError(f"_target_ {target!r} cannot be imported (no module {parts[0]!r})")


def accepted_params(obj: Any) -> tuple[set[str], bool]:
    """Keyword names a class / callable accepts, and whether it also takes arbitrary ``**kwargs``.

    For classes the ``__init__`` chain is followed through ``**kw`` passed to ``super()``.
    """
    names: set[str] = set()
    if inspect.isclass(obj):
        for klass in obj.__mro__:
            if "__init__" not in klass.__dict__ or klass is object:
                continue
            try:
                sig = inspect.signature(klass.__dict__["__init__"])
            except (TypeError, ValueError):
                return names, True
            params = list(sig.parameters.values())[1:]
            names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
            if not any(p.kind == p.VAR_KEYWORD for p in params):
                return names, False
        return names, False
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return names, True
    params = sig.parameters.values()
    names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind == p.VAR_KEYWORD for p in params)


def _check_node(group: str, key: str, node: DictConfig) -> None:
    where = _where(group, key)
    target = node.get("_target_")
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{group}.{key}: _target_ must be a dotted import path ({where})")
    try:
        obj = locate_target(target)
    except ConfigError as exc:
        raise ConfigError(f"{group}.{key} ({where}): {exc}; available {group} options: {group_options(group)}") from None
    if obj is None:
        return
    names, open_kw = accepted_params(obj)
    unknown = sorted(str(k) for k in node.keys() if k not in _HYDRA_NODE_KEYS and k not in names)
    if unknown and not open_kw:
        hints = "".join(_did_you_mean(k, names) for k in unknown)
        raise ConfigError(
            f"{group}.{key}: unknown parameter(s) {unknown}{hints} for {target} in {where}; "
            f"valid parameters: {sorted(names)}"
        )
    if "audio" in names and isinstance(node.get("audio"), DictConfig):
        try:
            AudioSpec.from_dict({**AudioSpec().to_dict(), **OmegaConf.to_container(node.audio, resolve=True)})
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{group}.{key}.audio in {where}: {exc}") from None


def _instantiate(group: str, key: str, node: DictConfig) -> Any:
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, UNAVAILABLE_ERRORS):
            raise cause from exc
        if isinstance(cause, (TypeError, ValueError)):
            raise ConfigError(f"{group}.{key}: {cause} (check the keys in {_where(group, key)})") from exc
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
            curve_cols = ("run_id", "model", "prompt_set", "reference_set", "embedder", "metric", "n", "value")
            lb.write_csv(_frame(curves, curve_cols), rec / "curves.csv", curve_cols)
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


Owners = dict[str, list[tuple[str, str, str]]]  # path -> [(owner, set, item id)]


def _record(st: RunState, ekey: str, key: str, paths: list[str], files: Owners, meta: dict[str, Any]) -> None:
    """Remember ``key`` as the embedding of ``paths`` and report the entry's warning notes for each owner."""
    for path in paths:
        st.emb_keys[(ekey, path)] = key
        notes = list(meta.get("notes") or [])
        if note := extension_note(path, meta.get("format")):
            notes.append(note)
        for note in notes:
            for o in files[path]:
                st.errors.warn("embed", o[0], o[1], o[2], path, note)


def _fail(st: RunState, paths: list[str], files: Owners, reason: str) -> None:
    for path in paths:
        for o in files[path]:
            st.errors.add("embed", o[0], o[1], o[2], path, reason)


def _embed_files(st: RunState, ekey: str, emb: Embedder, files: Owners, progress: bool, compute: bool = True) -> None:
    """Embed every file not yet in the cache, in batches; record keys in ``st.emb_keys``.

    Files with identical content share one cache entry (embedded once). Concurrent runs sharing
    the cache split the work: an entry is computed only under its file lock, after re-checking
    the cache; entries another process is computing are skipped first and waited for at the end.
    """
    by_key: dict[str, list[str]] = {}
    for path, owners in files.items():
        try:
            key = embedding_key(file_digest(path), emb)
        except OSError as exc:
            for o in owners:
                st.errors.add("embed", o[0], o[1], o[2], path, f"cannot read file ({exc.strerror or exc})")
            continue
        by_key.setdefault(key, []).append(path)
    todo: list[str] = []
    for key, paths in by_key.items():
        got = st.cache.get_with_meta(key)
        if got is not None:
            _record(st, ekey, key, paths, files, got[1])
            st.counters["embed_cache_hits"] += 1
        elif compute:
            todo.append(key)
    if not todo:
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc=f"embed {ekey}", disable=not progress, unit="file")
    deferred = _embed_pass(st, ekey, emb, todo, by_key, files, bar, wait=False)
    if deferred:
        log.info("embed %s: waiting for %d entries another process is computing", ekey, len(deferred))
        _embed_pass(st, ekey, emb, deferred, by_key, files, bar, wait=True)
    bar.close()


def _embed_pass(st, ekey, emb, keys, by_key, files, bar, wait: bool) -> list[str]:
    """One pass over ``keys``: lock, re-check, embed in batches, store. Returns keys locked elsewhere."""
    from filelock import Timeout

    bs = 1 if wait else max(1, int(emb.batch_size))
    deferred: list[str] = []
    pending = list(keys)
    while pending:
        held: list[tuple[str, Any]] = []
        try:
            while pending and len(held) < bs:
                key = pending.pop(0)
                lock = st.cache.lock(key)
                try:
                    lock.acquire(timeout=None if wait else 0)
                except Timeout:
                    deferred.append(key)
                    continue
                got = st.cache.get_with_meta(key)  # finished by another process meanwhile?
                if got is not None:
                    lock.release()
                    _record(st, ekey, key, by_key[key], files, got[1])
                    st.counters["embed_cache_hits"] += 1
                    bar.update(1)
                    continue
                held.append((key, lock))
            if held:
                _embed_batch(st, ekey, emb, [k for k, _ in held], by_key, files)
                bar.update(len(held))
        finally:
            for _, lock in held:
                lock.release()
    return deferred


def _embed_batch(st: RunState, ekey: str, emb: Embedder, keys: list[str], by_key, files: Owners) -> None:
    wavs, ok = [], []
    for key in keys:
        path = by_key[key][0]
        try:
            loaded = load_audio_report(path, emb.audio)
        except AudioError as exc:
            _fail(st, by_key[key], files, str(exc))
            continue
        except (OSError, RuntimeError, ValueError, MemoryError) as exc:
            _fail(st, by_key[key], files, f"cannot load audio ({type(exc).__name__}: {exc})")
            continue
        wavs.append(loaded.wav)
        ok.append((key, {"notes": loaded.notes, "format": loaded.format, "source_rate": loaded.source_rate}))
    if not ok:
        return
    try:
        outs = emb.embed_batch(wavs)
        if len(outs) != len(wavs):
            raise RuntimeError(f"embed_batch returned {len(outs)} results for {len(wavs)} clips")
    except RunFailed:
        raise
    except Exception:  # retry alone: one pathological clip must not sink the batch
        outs = []
        for w in wavs:
            try:
                outs.append(emb.embed(w))
            except Exception as exc1:
                outs.append(exc1)
    del wavs
    for (key, meta), out in zip(ok, outs):
        if isinstance(out, BaseException):
            reason = f"embedding failed ({type(out).__name__}: {out})"
        elif not isinstance(out, dict) or "emb" not in out:
            reason = "embedder returned no 'emb'"
        elif np.asarray(out["emb"]).size == 0 or not np.all(np.isfinite(out["emb"])):
            reason = "embedding is empty or non-finite"
        else:
            reason = ""
        if reason:
            _fail(st, by_key[key], files, reason)
            continue
        st.cache.put(key, {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}, meta=meta)
        _record(st, ekey, key, by_key[key], files, meta)
        st.counters["embedded"] += 1


# -- scoring ------------------------------------------------------------------------------------
class EmbeddingLoader:
    """Loads verified cache entries, keeping recently used ones up to ``max_bytes`` (one per run).

    A byte budget, not an entry count, bounds memory whatever the embedding size.
    """

    def __init__(self, cache: ArrayCache, max_bytes: int = 256 * 2**20):
        self.cache = cache
        self.max_bytes = int(max_bytes)
        self._lru: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self._bytes = 0

    def __call__(self, key: str) -> dict[str, np.ndarray]:
        d = self._lru.get(key)
        if d is not None:
            self._lru.move_to_end(key)
            return d
        d = self.cache.get(key)
        if d is None:
            raise RuntimeError(f"embedding {key} vanished from the cache or failed its checksum")
        size = sum(a.nbytes for a in d.values())
        if size <= self.max_bytes // 4:
            self._lru[key] = d
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._lru.popitem(last=False)
                self._bytes -= sum(a.nbytes for a in old.values())
        return d


def _emb_set(st: RunState, name: str, ekey: str, items: dict[str, Path]) -> tuple[EmbeddingSet, dict[str, str]]:
    keys = {i: st.emb_keys[(ekey, str(p))] for i, p in items.items() if (ekey, str(p)) in st.emb_keys}
    load = st.loader
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
    cached = read_json_checked(score_path)  # None when missing, torn or failing its checksum
    if cached is not None:
        try:
            result = MetricResult.from_dict(cached)
            st.counters["score_cache_hits"] += 1
        except (ValueError, TypeError):
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
        write_json_checked(score_path, _jsonable(result.to_dict()))
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


__all__ = [
    "ConfigError", "check_group_overrides", "embedding_key", "file_digest", "prompt_of", "run", "run_dir_for",
    "validate",
]
