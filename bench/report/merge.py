"""Loading run folders and merging them into one leaderboard.

A run folder ``results/<run_id>/`` holds ``leaderboard_long.csv`` (see
:mod:`bench.report.leaderboard`), ``replicates.csv``, ``per_item.csv``, optional
``curves.csv`` / ``errors.csv`` and ``manifest.json``. :func:`find_runs` expands folders, globs
and Hydra multirun trees (``multirun/<date>/<time>/<n>/...``) to run folders;
:func:`merge_runs` stacks them and

* refuses to mix rows that are not comparable: the same (embedder key, metric) with different
  ``embedder_id`` (other preprocessing or weights) or the same reference set with different
  ``reference_hash`` (other reference statistics). :class:`MixedRunsError` lists the runs and
  values; ``allow_mixed=True`` keeps them and fills a ``mixed`` column saying why;
* keeps one row per cell (model, prompt set, reference set, embedder, metric, and with
  ``allow_mixed`` per embedder_id / reference_hash): the newest run's (by manifest
  ``finished``/``started`` time, else file time), preferring rows with status "ok", with a
  warning naming the runs.
"""

from __future__ import annotations

import datetime as _dt
import glob
import hashlib
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import ERROR_COLUMNS as RUN_ERROR_COLUMNS
from bench.metrics.base import prompt_of
from bench.report.leaderboard import (
    CELL5,
    CELL6,
    CURVE_COLUMNS,
    LONG_COLUMNS,
    PER_ITEM_COLUMNS,
    REPLICATE_COLUMNS,
    read_long,
)

log = logging.getLogger(__name__)

LONG_FILE = "leaderboard_long.csv"
ERROR_COLUMNS: tuple[str, ...] = ("run_id", *RUN_ERROR_COLUMNS)
#: manifest "kind" of a folder written by ``bench leaderboard`` (skipped when discovering runs)
MERGED_KIND = "merged-leaderboard"


class MixedRunsError(ValueError):
    """Runs disagree on preprocessing / reference statistics; ``conflicts`` lists each clash."""

    def __init__(self, conflicts: Sequence[str]):
        self.conflicts = list(conflicts)
        lines = "\n  - ".join(self.conflicts)
        super().__init__(
            f"refusing to merge rows that are not comparable:\n  - {lines}\n"
            "Re-run with the same embedder preprocessing/weights and reference statistics, or pass "
            "--allow-mixed (allow_mixed=True) to merge anyway with a 'mixed' column noting it."
        )


class RunNotFound(FileNotFoundError):
    """A path or glob named no run folder."""


@dataclass
class Run:
    """One run folder's tables. ``time`` is POSIX seconds (manifest finish/start, else file mtime)."""

    path: Path
    run_id: str
    long: pd.DataFrame
    replicates: pd.DataFrame
    per_item: pd.DataFrame
    curves: pd.DataFrame
    errors: pd.DataFrame
    manifest: dict[str, Any]
    time: float

    @property
    def config_hash(self) -> str:
        return str(self.manifest.get("config_hash") or next(iter(self.long["config_hash"]), ""))

    @property
    def seed(self) -> Any:
        cfg = self.manifest.get("config")
        return cfg.get("seed", 0) if isinstance(cfg, dict) else None

    def audio_path(self, model: str, prompt_set: str, item_id: str) -> Path | None:
        """The audio file of a generated item (manifest ``audio``), or None.

        Falls back from ``"pid"`` to its first sample ``"pid#k"`` and from ``"pid#k"`` to ``"pid"``.
        """
        items = ((self.manifest.get("audio") or {}).get(model) or {}).get(prompt_set) or {}
        rel = items.get(item_id)
        if rel is None:
            rel = items.get(prompt_of(item_id))
        if rel is None:
            rel = next((v for k, v in sorted(items.items()) if prompt_of(k) == item_id), None)
        if rel is None:
            return None
        p = Path(rel)
        return p if p.is_absolute() else self.path / p

    def prompt_ids(self, model: str, prompt_set: str, embedder: str, reference_set: str, metric: str) -> list[str]:
        """Sorted unique prompt ids behind a cell: its per-item ids, else the manifest's audio items."""
        pi = self.per_item
        if len(pi):
            sel = pi[
                (pi["model"] == model) & (pi["prompt_set"] == prompt_set) & (pi["embedder"] == embedder)
                & (pi["reference_set"] == reference_set) & (pi["metric"] == metric.split(".", 1)[0])
            ]
            if len(sel):
                return sorted({prompt_of(i) for i in sel["item_id"]})
        items = ((self.manifest.get("audio") or {}).get(model) or {}).get(prompt_set) or {}
        return sorted({prompt_of(i) for i in items})

    def resample_key(self, model: str, prompt_set: str, embedder: str, reference_set: str, metric: str) -> str:
        """Identity of the bootstrap resamples of a cell: ``seed`` + hash of its sorted prompt ids.

        Two cells with equal keys drew the same prompts in every replicate. Without any known
        prompt ids the key falls back to the run id (cells then pair only within this run).
        """
        ids = self.prompt_ids(model, prompt_set, embedder, reference_set, metric)
        if not ids:
            return f"run:{self.run_id}"
        digest = hashlib.sha256("\n".join(ids).encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return f"seed={self.seed}:ids={digest}"


@dataclass
class Merged:
    """Several runs stacked into one set of tables.

    long: :data:`LONG_COLUMNS` (+ ``mixed`` when rows were mixed); replicates / per_item / curves /
    errors: the matching rows of the runs (``run_id`` names the source); runs: by run id;
    notes: human-readable warnings (duplicates dropped, mixing allowed, ...).
    """

    long: pd.DataFrame
    replicates: pd.DataFrame
    per_item: pd.DataFrame
    curves: pd.DataFrame
    errors: pd.DataFrame
    runs: dict[str, Run]
    notes: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    @property
    def mixed(self) -> bool:
        return bool(self.conflicts)


# -- reading -----------------------------------------------------------------------------------
def _read_table(path: Path, columns: Sequence[str], numeric: Sequence[str]) -> pd.DataFrame:
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame({c: pd.Series(dtype=float if c in numeric else object) for c in columns})
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for c in columns:
        if c not in df.columns:
            df[c] = ""
    for c in numeric:
        df[c] = pd.to_numeric(df[c].replace("", math.nan), errors="coerce")
    return df[list(columns)]


def _parse_time(value: Any) -> float | None:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    if isinstance(value, str) and value:
        try:
            t = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.UTC)
        return t.timestamp()
    return None


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    p = Path(run_dir) / "manifest.json"
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", p, exc)
        return {}
    return data if isinstance(data, dict) else {}


def load_run(run_dir: str | Path) -> Run:
    """Read one run folder (``leaderboard_long.csv`` required, the rest optional)."""
    path = Path(run_dir)
    long_path = path / LONG_FILE
    if not long_path.is_file():
        raise RunNotFound(f"{path} has no {LONG_FILE}")
    manifest = read_manifest(path)
    long = read_long(long_path)
    run_id = str(manifest.get("run_id") or next((r for r in long["run_id"] if r), "") or path.name)
    long["run_id"] = [r or run_id for r in long["run_id"]]
    t = None
    for key in ("finished", "finished_at", "started", "started_at", "created", "timestamp"):
        t = _parse_time(manifest.get(key))
        if t is not None:
            break
    if t is None:
        t = long_path.stat().st_mtime

    def fill(df: pd.DataFrame) -> pd.DataFrame:
        df["run_id"] = [r or run_id for r in df["run_id"]]
        return df

    return Run(
        path=path,
        run_id=run_id,
        long=long,
        replicates=fill(_read_table(path / "replicates.csv", REPLICATE_COLUMNS, ("replicate", "value"))),
        per_item=fill(_read_table(path / "per_item.csv", PER_ITEM_COLUMNS, ("value",))),
        curves=fill(_read_table(path / "curves.csv", CURVE_COLUMNS, ("n", "value"))),
        errors=fill(_read_table(path / "errors.csv", ERROR_COLUMNS, ())),
        manifest=manifest,
        time=float(t),
    )


def find_runs(patterns: Iterable[str | Path]) -> list[Path]:
    """Run folders named by paths or globs (recursive ``**`` allowed).

    A folder holding ``leaderboard_long.csv`` is a run; any other folder (a results root, a Hydra
    ``multirun/<date>/<time>`` tree) is searched recursively. Folders written by ``bench
    leaderboard`` itself are skipped. Raises :class:`RunNotFound` when a pattern names nothing.
    """
    found: dict[Path, None] = {}
    for pat in patterns:
        pat = str(pat)
        paths = [Path(p) for p in sorted(glob.glob(pat, recursive=True))] if glob.has_magic(pat) else [Path(pat)]
        hits: list[Path] = []
        for p in paths:
            if p.is_file() and p.name == LONG_FILE:
                hits.append(p.parent)
            elif (p / LONG_FILE).is_file():
                hits.append(p)
            elif p.is_dir():
                hits.extend(sorted(q.parent for q in p.rglob(LONG_FILE)))
        kept = []
        for h in hits:
            if read_manifest(h).get("kind") == MERGED_KIND:
                log.info("skipping %s: a merged leaderboard (pass its source runs instead)", h)
                continue
            kept.append(h)
        if not kept:
            raise RunNotFound(f"no run folder (with {LONG_FILE}) matches {pat!r}")
        for h in kept:
            found.setdefault(h.resolve(), None)
    return list(found)


# -- merging -----------------------------------------------------------------------------------
def _describe(values: dict[str, list[str]]) -> str:
    return "; ".join(f"{v!r} in run(s) {', '.join(sorted(set(runs)))}" for v, runs in values.items())


def find_conflicts(long: pd.DataFrame) -> tuple[list[str], pd.Series]:
    """Clashes in ``long`` (all runs stacked) and, per row, the ``mixed`` note ("" when none)."""
    conflicts: list[str] = []
    mixed = pd.Series([""] * len(long), index=long.index, dtype=object)
    checks = (
        (["embedder", "metric"], "embedder_id", "embedder {0!r} / metric {1!r}: embedder_id (preprocessing/weights)"),
        (["reference_set"], "reference_hash", "reference set {0!r}: reference_hash (reference files/statistics)"),
    )
    for keys, col, text in checks:
        sub = long[(long[col] != "") & (long[keys[0]] != "")]
        for key, g in sub.groupby(keys, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            if g[col].nunique() < 2:
                continue
            values = {v: list(gg["run_id"]) for v, gg in g.groupby(col, sort=True)}
            msg = text.format(*key) + " differs: " + _describe(values)
            conflicts.append(msg)
            mask = (long[col] != "")
            for k, v in zip(keys, key):
                mask &= long[k] == v
            mixed[mask] = [f"{m}; {col} differs across runs" if m else f"{col} differs across runs" for m in mixed[mask]]
    return conflicts, mixed


def _dedupe(long: pd.DataFrame, time_of: dict[str, float], notes: list[str]) -> pd.DataFrame:
    """One row per cell: per (model, prompt set, reference set, embedder, metric) and version
    (embedder_id, reference_hash) keep the newest run's row, rows with status "ok" first.

    Rows that lack an id their keys call for (e.g. an embedder that failed to load has no
    embedder_id) are dropped when the cell has a row with its ids. Different versions only
    survive together in mixed merges. Every replacement across runs is noted and logged.
    """
    long = long.copy()
    need_e, need_r = long["embedder"] != "", long["reference_set"] != ""
    complete = (~need_e | (long["embedder_id"] != "")) & (~need_r | (long["reference_hash"] != ""))
    long["_ver"] = np.where(complete, long["embedder_id"] + "\x00" + long["reference_hash"], "")
    long["_ok"] = (long["status"] == "ok").astype(int)
    long["_t"] = long["run_id"].map(time_of)
    any_complete = complete.groupby([long[k] for k in CELL5]).transform("any")
    keep = ~(any_complete & ~complete)
    ordered = long.sort_values(["_ok", "_t"], kind="stable")
    keep &= ~ordered.duplicated([*CELL5, "_ver"], keep="last").reindex(long.index)
    groups: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for key, g in long.groupby(list(CELL5), sort=True):
        runs_in = tuple(sorted(set(g["run_id"])))
        kept = tuple(sorted(set(g.loc[keep[g.index], "run_id"])))
        if len(runs_in) < 2 or kept == runs_in:
            continue
        model, prompt_set, reference_set, embedder, metric = key
        cell = (f"{metric}@{embedder}" if embedder else metric) + (f" vs {reference_set}" if reference_set else "")
        groups.setdefault((model, prompt_set, runs_in, kept), []).append(cell)
    for (model, prompt_set, runs_in, kept), cells in groups.items():
        msg = (f"model {model!r} on prompt set {prompt_set!r} is in runs {', '.join(runs_in)}: keeping run(s) "
               f"{', '.join(kept)} (newest, ok rows first) for {len(cells)} cell(s): {', '.join(cells)}")
        log.warning(msg)
        notes.append(msg)
    return long.loc[keep].drop(columns=["_ver", "_ok", "_t"]).reset_index(drop=True)


def merge_runs(runs: Sequence[Run], allow_mixed: bool = False) -> Merged:
    """Stack runs into one :class:`Merged` board (see the module docstring for the rules)."""
    if not runs:
        raise RunNotFound("no runs to merge")
    notes: list[str] = []
    by_id: dict[str, Run] = {}
    for r in sorted(runs, key=lambda r: r.time):
        if r.run_id in by_id and by_id[r.run_id].path.resolve() != r.path.resolve():
            notes.append(f"run id {r.run_id!r} appears in {by_id[r.run_id].path} and {r.path}; using the newer")
        by_id[r.run_id] = r
    runs = list(by_id.values())
    time_of = {r.run_id: r.time for r in runs}
    long = pd.concat([r.long for r in runs], ignore_index=True)
    conflicts, mixed = find_conflicts(long)
    if conflicts and not allow_mixed:
        raise MixedRunsError(conflicts)
    if conflicts:
        long["mixed"] = mixed
        notes.append("mixed rows merged on request (--allow-mixed): " + " | ".join(conflicts))

    long = _dedupe(long, time_of, notes)
    columns = [*LONG_COLUMNS, *(["mixed"] if conflicts else [])]
    long = long[columns]

    kept_cells = set(map(tuple, long[list(CELL6)].itertuples(index=False)))

    def keep(frames: Iterable[pd.DataFrame], cols: Sequence[str]) -> pd.DataFrame:
        """The rows of ``frames`` whose cell survived the de-duplication."""
        df = pd.concat(list(frames), ignore_index=True)
        if df.empty:
            return df.reindex(columns=list(cols))
        mask = np.array([tuple(k) in kept_cells for k in df[list(CELL6)].itertuples(index=False)], dtype=bool)
        return df.loc[mask].reset_index(drop=True)

    errors = pd.concat([r.errors for r in runs], ignore_index=True)
    return Merged(
        long=long,
        replicates=keep((r.replicates for r in runs), REPLICATE_COLUMNS),
        per_item=keep((r.per_item for r in runs), PER_ITEM_COLUMNS),
        curves=keep((r.curves for r in runs), CURVE_COLUMNS),
        errors=errors.reindex(columns=list(ERROR_COLUMNS)),
        runs=by_id,
        notes=notes,
        conflicts=conflicts,
    )


def load_merged(patterns: Iterable[str | Path], allow_mixed: bool = False) -> Merged:
    """:func:`find_runs` + :func:`load_run` + :func:`merge_runs`."""
    return merge_runs([load_run(p) for p in find_runs(patterns)], allow_mixed=allow_mixed)
