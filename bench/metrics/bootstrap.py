"""Prompt-level bootstrap shared by every metric wrapper.

Resampling unit: the *prompt*. A replicate draws ``n_prompts`` prompts with replacement from
``sorted(set(prompt_ids))``; the generated clips of each drawn prompt enter the replicate
once per draw (all ``"pid#k"`` samples of a prompt travel together). The reference set is
fixed.

Caveat: metrics with a finite-sample bias (FAD ~ D^2 / n, PRDC's coverage/recall, which grow
with the number of distinct clips) are shifted in the replicates, because a resample holds
only ~63% distinct clips; percentile intervals then may not contain the full-set value. Paired
differences between models (same replicate b) are much less affected. ``ci_method="basic"``
reflects the interval around the estimate instead. Resamples depend only on ``(seed, sorted unique prompt ids)``, so replicate ``b`` of
model A and replicate ``b`` of model B (even computed in another run) use the same prompts:
the report module pairs them for significance tests.

Most wrappers never materialise resampled sets: a replicate is a weighted sum over clips with
integer weights ``W[b, i]`` = how often clip ``i``'s prompt was drawn in replicate ``b``
(:func:`clip_weights`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np

from bench.metrics.base import MetricResult, prompt_of

#: ``percentile``: (q_a, q_1-a) of the replicates. ``basic`` (reverse percentile):
#: (2 v - q_1-a, 2 v - q_a), which moves the interval by the replicates' bias around the estimate v.
#: percentile: quantiles of the replicates; basic: reflected about the estimate (2*est - q);
#: shifted: the replicates' quantiles moved so their median sits on the estimate (est + q - median).
#: "shifted" is the default for set-level distances (FAD, PRDC) whose resamples with replacement are
#: biased (a resample holds ~63 % distinct clips, so FAD grows by ~D^2/n): it keeps the bootstrap
#: spread but centres it on the full-set value instead of excluding it.
CI_METHODS = ("percentile", "basic", "shifted")


def unique_prompts(prompt_ids: Sequence[str]) -> list[str]:
    """``sorted(set(prompt_ids))``: the index space of :func:`prompt_resamples`."""
    return sorted(set(prompt_ids))


def prompt_resamples(prompt_ids: Sequence[str], n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap resamples of prompts, ``(n_boot, n_prompts)`` int64 indices into ``sorted(set(prompt_ids))``.

    Deterministic given the sorted unique ids and ``seed``: the generator is
    ``np.random.default_rng([seed, crc32("\\n".join(sorted unique ids))])``.
    """
    uniq = unique_prompts(prompt_ids)
    n = len(uniq)
    if n_boot <= 0 or n == 0:
        return np.zeros((max(n_boot, 0), n), dtype=np.int64)
    crc = zlib.crc32("\n".join(uniq).encode("utf-8"))
    rng = np.random.default_rng([int(seed), crc])
    return rng.integers(0, n, size=(n_boot, n), dtype=np.int64)


def prompt_counts(resamples: np.ndarray, n_prompts: int) -> np.ndarray:
    """``(B, P)`` indices -> ``(B, n_prompts)`` float64 draw counts per prompt."""
    b = resamples.shape[0]
    counts = np.zeros((b, n_prompts), dtype=np.float64)
    rows = np.repeat(np.arange(b), resamples.shape[1])
    np.add.at(counts, (rows, resamples.ravel()), 1.0)
    return counts


def clip_weights(item_ids: Sequence[str], n_boot: int, seed: int) -> np.ndarray:
    """Per-clip replicate weights ``(n_boot, n_items)`` float64 for generated item ids.

    ``W[b, i]`` = number of times the prompt of ``item_ids[i]`` (``"pid"`` or ``"pid#k"``) was
    drawn in replicate ``b``; ``sum_i W[b, i] * x_i`` is the replicate's sum of ``x`` over its clips.
    """
    pids = [prompt_of(i) for i in item_ids]
    uniq = unique_prompts(pids)
    index = {p: j for j, p in enumerate(uniq)}
    cols = np.array([index[p] for p in pids], dtype=np.int64)
    counts = prompt_counts(prompt_resamples(pids, n_boot, seed), len(uniq))
    return counts[:, cols]


def resample_indices(weights_row: np.ndarray) -> np.ndarray:
    """One row of :func:`clip_weights` -> the replicate's clip indices with multiplicity (sorted)."""
    w = np.rint(weights_row).astype(np.int64)
    return np.repeat(np.arange(len(w)), w)


def percentile_ci(replicates: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval ``(low, high)`` at confidence ``level`` (non-finite replicates dropped)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"ci level must be in (0, 1), got {level}")
    r = np.asarray(replicates, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(r, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_ci(
    replicates: Sequence[float] | np.ndarray, estimate: float, level: float = 0.95, method: str = "percentile"
) -> tuple[float, float]:
    """Bootstrap interval of ``estimate`` from its replicates (see :data:`CI_METHODS`)."""
    lo, hi = percentile_ci(replicates, level)
    if method == "percentile":
        return lo, hi
    if method == "basic":
        return 2.0 * estimate - hi, 2.0 * estimate - lo
    if method == "shifted":
        r = np.asarray(replicates, dtype=np.float64)
        med = float(np.median(r[np.isfinite(r)])) if np.isfinite(r).any() else float("nan")
        return estimate + lo - med, estimate + hi - med
    raise ValueError(f"ci_method must be one of {CI_METHODS}, got {method!r}")


def check_ci_method(method: str) -> str:
    if method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {CI_METHODS}, got {method!r}")
    return method


def attach_bootstrap(res: MetricResult, replicates: np.ndarray, level: float, method: str) -> MetricResult:
    """Store ``replicates`` and their interval (around ``res.value``) on ``res``; returns it."""
    reps = np.asarray(replicates, dtype=np.float64)
    res.replicates = [float(v) for v in reps]
    res.ci_low, res.ci_high = bootstrap_ci(reps, res.value, level, method)
    return res


def weighted_mean_replicates(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Replicates of a mean of per-clip ``values`` ``(n,)`` under ``weights`` ``(B, n)`` -> ``(B,)``."""
    v = np.asarray(values, dtype=np.float64)
    tot = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ v) / tot


def bootstrap_by_indices(fn: Callable[[np.ndarray], float], weights: np.ndarray) -> np.ndarray:
    """Generic path: ``fn(indices)`` on each replicate's clip indices (with multiplicity) -> ``(B,)``."""
    return np.array([fn(resample_indices(w)) for w in weights], dtype=np.float64)
