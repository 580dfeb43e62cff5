"""Paired bootstrap significance between models, Holm correction and rank stability.

Replicate ``b`` of every model's metric is computed on the same prompt resample (see
:func:`bench.metrics.bootstrap.prompt_resamples`: same seed + same sorted prompt ids => same
resamples, even across runs). So for models A and B, ``d_b = v_A,b - v_B,b`` is a bootstrap
replicate of the difference A - B computed on one shared set of prompts, and

* the two-sided p-value of "no difference" is ``p = min(1, 2 * min(P(d <= 0), P(d >= 0)))``
  (fractions over the finite replicates; its resolution is ``1 / B``, so ``p = 0`` means
  ``p < 1 / B``);
* the percentile interval of ``d`` is the CI of the difference.

Holm's step-down correction is applied over the model pairs of one table column (one
prompt set x reference set x embedder x metric), the family a reader compares at a glance.

Rank stability: rank the models within every replicate and report how often each model holds
its full-set rank, plus its rank distribution.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

PAIRWISE_COLUMNS: tuple[str, ...] = (
    "model_a", "model_b", "value_a", "value_b", "diff", "diff_ci_low", "diff_ci_high", "p", "p_holm",
    "n_replicates", "a_better", "significant", "note",
)


@dataclass(frozen=True)
class PairedTest:
    """Paired bootstrap comparison of A vs B.

    diff: point difference A - B (full-set values when given, else the mean of ``d``).
    ci_low / ci_high: percentile interval of ``d``.
    p: two-sided bootstrap p-value (NaN without finite replicates).
    n: number of finite paired replicates used.
    """

    diff: float
    ci_low: float
    ci_high: float
    p: float
    n: int


def paired_bootstrap(
    rep_a: Sequence[float] | np.ndarray,
    rep_b: Sequence[float] | np.ndarray,
    diff: float | None = None,
    level: float = 0.95,
) -> PairedTest:
    """Paired bootstrap test of A vs B from their ``(B,)`` replicate vectors (same resamples)."""
    a = np.asarray(rep_a, dtype=np.float64).ravel()
    b = np.asarray(rep_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired replicates need equal length, got {a.size} and {b.size}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    if d.size == 0:
        return PairedTest(math.nan if diff is None else float(diff), math.nan, math.nan, math.nan, 0)
    p = min(1.0, 2.0 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))
    lo, hi = np.quantile(d, [(1.0 - level) / 2.0, 1.0 - (1.0 - level) / 2.0])
    point = float(np.mean(d)) if diff is None else float(diff)
    return PairedTest(point, float(lo), float(hi), p, int(d.size))


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (NaNs stay NaN and do not count towards the family size)."""
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for j, idx in enumerate(order):
        running = max(running, min(1.0, (m - j) * p[idx]))
        out[idx] = running
    return out


def min_ranks(x: np.ndarray) -> np.ndarray:
    """Competition ("min") ranks along the last axis, smallest = 1: ``1 + #{j: x_j < x_i}``."""
    x = np.asarray(x, dtype=np.float64)
    return 1 + (x[..., None, :] < x[..., :, None]).sum(axis=-1)


def full_ranks(values: Mapping[str, float], lower_is_better: bool) -> dict[str, int]:
    """Competition ranks ("1224") of the finite values, best = 1."""
    names = [k for k, v in values.items() if v is not None and math.isfinite(v)]
    if not names:
        return {}
    x = np.array([values[k] for k in names], dtype=np.float64)
    r = min_ranks(x if lower_is_better else -x)
    return {k: int(v) for k, v in zip(names, r)}


def rank_stability(
    values: Mapping[str, float],
    replicates: Mapping[str, Sequence[float] | np.ndarray],
    lower_is_better: bool,
    level: float = 0.95,
) -> pd.DataFrame:
    """How stable each model's rank is across paired bootstrap replicates.

    values: full-set metric value per model; replicates: ``(B,)`` paired replicate values per
    model (all the same length; models without one are left out). Replicates where any model is
    non-finite are dropped. Returns one row per model, best first: ``model, rank`` (full-set),
    ``p_rank_held`` (fraction of replicates with that same rank), ``mean_rank``, ``rank_low`` /
    ``rank_high`` (percentile interval at ``level``), ``n_replicates`` and ``p_rank_<k>`` for every
    rank ``k`` (the rank distribution; each row sums to 1).
    """
    models = [m for m in values if m in replicates and values[m] is not None and math.isfinite(values[m])]
    if not models:
        return pd.DataFrame(columns=["model", "rank", "p_rank_held", "mean_rank", "rank_low", "rank_high"])
    lengths = {len(np.asarray(replicates[m]).ravel()) for m in models}
    if len(lengths) != 1:
        raise ValueError(f"replicate vectors differ in length: {sorted(lengths)}")
    mat = np.stack([np.asarray(replicates[m], dtype=np.float64).ravel() for m in models], axis=1)  # (B, K)
    mat = mat[np.all(np.isfinite(mat), axis=1)]
    ranks_full = full_ranks({m: values[m] for m in models}, lower_is_better)
    k = len(models)
    rows = []
    if mat.shape[0]:
        r = min_ranks(mat if lower_is_better else -mat)  # (B, K)
    for j, m in enumerate(models):
        row: dict[str, float | int | str] = {"model": m, "rank": ranks_full[m], "n_replicates": int(mat.shape[0])}
        if mat.shape[0]:
            col = r[:, j]
            row["p_rank_held"] = float(np.mean(col == ranks_full[m]))
            row["mean_rank"] = float(np.mean(col))
            lo, hi = np.quantile(col, [(1 - level) / 2, 1 - (1 - level) / 2], method="inverted_cdf")
            row["rank_low"], row["rank_high"] = int(lo), int(hi)
            for rk in range(1, k + 1):
                row[f"p_rank_{rk}"] = float(np.mean(col == rk))
        else:
            row.update(p_rank_held=math.nan, mean_rank=math.nan, rank_low=math.nan, rank_high=math.nan)
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["rank", "model"], kind="stable").reset_index(drop=True)


def pairwise(
    values: Mapping[str, float],
    replicates: Mapping[str, Sequence[float] | np.ndarray],
    lower_is_better: bool,
    alpha: float = 0.05,
    use_holm: bool = False,
    untestable: Mapping[tuple[str, str], str] | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Paired bootstrap test for every pair of models in one table column.

    values: full-set value per model (pairs are ordered best first, so ``model_a`` is the better
    point estimate); replicates: paired ``(B,)`` vectors per model; ``untestable``: optional
    ``{(a, b): reason}`` for pairs that must not be tested (different resamples, mixed runs), in
    either order. ``significant`` is ``p_holm < alpha`` with ``use_holm`` else ``p < alpha``;
    ``a_better`` says the point estimate favours A. Returns :data:`PAIRWISE_COLUMNS`.
    """
    untestable = dict(untestable or {})
    ranks = full_ranks(values, lower_is_better)
    models = sorted(ranks, key=lambda m: (ranks[m], m))
    rows = []
    for a, b in itertools.combinations(models, 2):
        va, vb = float(values[a]), float(values[b])
        note = untestable.get((a, b)) or untestable.get((b, a)) or ""
        if not note and (a not in replicates or b not in replicates):
            note = "no bootstrap replicates"
        if not note and len(np.asarray(replicates[a]).ravel()) != len(np.asarray(replicates[b]).ravel()):
            note = "replicate counts differ"
        if note:
            t = PairedTest(va - vb, math.nan, math.nan, math.nan, 0)
        else:
            t = paired_bootstrap(replicates[a], replicates[b], diff=va - vb, level=level)
            if t.n == 0:
                note = "no finite paired replicates"
        a_better = (va < vb) if lower_is_better else (va > vb)
        rows.append(
            {
                "model_a": a, "model_b": b, "value_a": va, "value_b": vb, "diff": t.diff,
                "diff_ci_low": t.ci_low, "diff_ci_high": t.ci_high, "p": t.p, "n_replicates": t.n,
                "a_better": bool(a_better), "note": note,
            }
        )
    df = pd.DataFrame(rows, columns=[c for c in PAIRWISE_COLUMNS if c not in ("p_holm", "significant")])
    df["p_holm"] = holm(df["p"].to_numpy()) if len(df) else []
    p_used = df["p_holm"] if use_holm else df["p"]
    df["significant"] = (p_used < alpha).fillna(False).astype(bool) if len(df) else []
    return df.reindex(columns=list(PAIRWISE_COLUMNS))


def best_is_significant(pairs: pd.DataFrame, best: str, runner_up: str | None) -> bool:
    """True when ``best`` beats ``runner_up`` significantly in a :func:`pairwise` frame."""
    if runner_up is None or pairs.empty:
        return False
    hit = pairs[(pairs["model_a"] == best) & (pairs["model_b"] == runner_up)]
    if hit.empty:
        return False
    row = hit.iloc[0]
    return bool(row["significant"]) and bool(row["a_better"])


def format_p(p: float, n_replicates: int = 0) -> str:
    """``0.0123`` -> ``"0.012"``; 0 with B replicates -> ``"<1/B"`` as a decimal (e.g. ``"<0.001"``)."""
    if p is None or not math.isfinite(p):
        return "n/a"
    if p == 0.0 and n_replicates > 0:
        return f"<{1.0 / n_replicates:.2g}"
    return f"{p:.2g}" if p < 0.01 else f"{p:.3f}"


def p_phrase(p: float, n_replicates: int = 0) -> str:
    """``"p = 0.012"`` / ``"p < 0.005"`` (p = 0 from B replicates) / ``"p n/a"``."""
    text = format_p(p, n_replicates)
    if text == "n/a":
        return "p n/a"
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}"
