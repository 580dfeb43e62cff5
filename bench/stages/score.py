"""The score stage: one metric value per model x prompt set x reference set x embedder x metric.

Values are cached by a key over the metric parameters and every input embedding key (plus texts
and seed where they matter); cache entries carry a checksum, so a damaged one is recomputed.

Call boundary: :func:`score` takes a :class:`ScoreContext` (embedding keys, cache loader, gathered
audio, score cache folder, seed) and the configured components, and returns :class:`Scores`: the
leaderboard rows, per-item scores, bootstrap replicates and curve points, and its counters.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.cache import read_json_checked, stable_hash, write_json_checked
from bench.embedders.base import EmbedderUnavailable
from bench.errors import RunFailed
from bench.metrics.base import EmbeddingSet, Metric, MetricInput, MetricResult, MetricUnavailable
from bench.prompts import PromptSet
from bench.references import ReferenceSet
from bench.report.leaderboard import CELL6
from bench.stages.common import Component
from bench.stages.embed import EmbeddingLoader

log = logging.getLogger(__name__)

@dataclass
class ScoreContext:
    """What the score stage reads.

    emb_keys: ``(embedder, path) -> embedding cache key`` (the embed stage's result).
    loader: verified cache reads. audio: ``(model, prompt set) -> {item: path}`` (the gather stage's).
    score_dir: score cache folder. seed: bootstrap / subsampling seed.
    fail_fast: re-raise a metric's unexpected exception (``on_error=fail``) instead of an "error" row.
    warned: ``(embedder, reason)`` already logged, so a reason shared by many cells is said once.
    """

    emb_keys: Mapping[tuple[str, str], str]
    loader: EmbeddingLoader
    audio: Mapping[tuple[str, str], Mapping[str, Path]]
    score_dir: Path
    seed: int = 0
    fail_fast: bool = False
    warned: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class Scores:
    """The score stage's result: one list per output table, and its counters."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    per_item: list[dict[str, Any]] = field(default_factory=list)
    replicates: list[dict[str, Any]] = field(default_factory=list)
    curves: list[dict[str, Any]] = field(default_factory=list)
    scored: int = 0
    cache_hits: int = 0

    def extend(self, other: Scores) -> None:
        self.rows += other.rows
        self.per_item += other.per_item
        self.replicates += other.replicates
        self.curves += other.curves
        self.scored += other.scored
        self.cache_hits += other.cache_hits


def score(
    ctx: ScoreContext,
    base: dict[str, Any],
    prompt_sets: Mapping[str, PromptSet],
    models: Mapping[str, Component],
    refs: Mapping[str, ReferenceSet],
    ref_hash: Mapping[str, str | None],
    embedders: Mapping[str, Component],
    metrics: Mapping[str, Metric],
    paired: Mapping[str, Mapping[str, Path]],
) -> Scores:
    """Every cell model x prompt set x reference set x embedder x metric (``base`` columns on every row)."""
    out = Scores()
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
                        out.extend(score_cell(ctx, cell, m, ps, refs.get(rk), e, metric, paired[ps_key]))
    return out


def _emb_set(
    ctx: ScoreContext, name: str, ekey: str, items: Mapping[str, Path]
) -> tuple[EmbeddingSet, dict[str, str]]:
    keys = {i: ctx.emb_keys[(ekey, str(p))] for i, p in items.items() if (ekey, str(p)) in ctx.emb_keys}
    load = ctx.loader
    ids = sorted(keys)
    return EmbeddingSet(name, ids, load=lambda i: load(keys[i])), keys


def _load_stats(ref: ReferenceSet) -> dict[str, Any]:
    from bench.metrics.stats import GaussianStats

    s = GaussianStats.load_npz(ref.stats_path, ref.stats_key)
    return {"mu": s.mu, "sigma": s.cov, "n": s.n}


def score_cell(
    ctx: ScoreContext,
    cell: dict[str, Any],
    m: Component,
    ps: PromptSet,
    ref: ReferenceSet | None,
    e: Component,
    metric: Metric,
    paired_items: Mapping[str, Path],
) -> Scores:
    """One cell's rows (value, or why it is unavailable), per-item scores, replicates and curve."""
    out = Scores()
    rows = out.rows

    def unavailable(reason: str, status: str = "unavailable") -> Scores:
        rows.append({**cell, "value": math.nan, "n": 0, "status": status, "reason": reason})
        return out

    if m.obj is None:
        return unavailable(f"model unavailable: {m.error}")
    if e.obj is None:
        return unavailable(f"embedder unavailable: {e.error}")
    gen, gen_keys = _emb_set(ctx, f"{m.key}/{cell['prompt_set']}", e.key, ctx.audio.get((m.key, cell["prompt_set"]), {}))
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
            ref_set, ref_keys = _emb_set(ctx, cell["reference_set"], e.key, ref.items)
            if not len(ref_set):
                return unavailable("no reference clip could be embedded (see errors.csv)", "error")
    pair_set, pair_keys = _emb_set(ctx, f"paired/{cell['prompt_set']}", e.key, paired_items)
    texts = {p.id: p.text for p in ps.prompts}
    inp = MetricInput(
        gen=gen, ref=ref_set, paired=pair_set if len(pair_set) else None, texts=texts, embedder=e.obj,
        seed=ctx.seed,
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
    score_path = ctx.score_dir / key[:2] / f"{key}.json"
    result: MetricResult | None = None
    cached = read_json_checked(score_path)  # None when missing, torn or failing its checksum
    if cached is not None:
        try:
            result = MetricResult.from_dict(cached)
            out.cache_hits += 1
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
        except EmbedderUnavailable as exc:  # e.g. a text tower without its tokenizer: a reason, not a crash
            if (e.key, str(exc)) not in ctx.warned:
                ctx.warned.add((e.key, str(exc)))
                log.warning("embedder %s cannot serve %s: %s", e.key, cell["metric"], exc)
            return unavailable(str(exc))
        except RunFailed:
            raise
        except Exception as exc:
            log.error("metric %s failed on %s: %s\n%s", cell["metric"], cell, exc, traceback.format_exc())
            if ctx.fail_fast:
                raise
            return unavailable(f"{type(exc).__name__}: {exc}", "error")
        write_json_checked(score_path, _jsonable(result.to_dict()))
        out.scored += 1
    ci = {"ci_low": _num(result.ci_low), "ci_high": _num(result.ci_high)}
    rows.append({**cell, "value": float(result.value), **ci, "n": result.n or len(gen), "status": "ok", "reason": ""})
    for xk, xv in sorted((result.extras or {}).items()):
        if isinstance(xv, (int, float)) and not isinstance(xv, bool):
            rows.append({**cell, "metric": f"{cell['metric']}.{xk}", "value": float(xv), "n": result.n or len(gen),
                         "status": "ok", "reason": ""})
    keys6 = {k: cell[k] for k in CELL6}
    for iid, v in (result.per_item or {}).items():
        out.per_item.append({**keys6, "item_id": iid, "value": v})
    for b, v in enumerate(result.replicates or []):
        out.replicates.append({**keys6, "replicate": b, "value": v})
    for n, v in result.curve or []:
        out.curves.append({**keys6, "n": n, "value": v})
    return out


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
