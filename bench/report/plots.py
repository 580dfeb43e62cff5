"""Report figures (matplotlib, Agg backend), returned as PNG bytes for embedding.

* :func:`metric_bars`: per-model bars with bootstrap CIs, one panel per metric column;
* :func:`item_distributions`: per-prompt / per-clip score distributions per model (box plots);
* :func:`fad_curves`: FAD-vs-n points behind FAD-infinity, on a ``1/n`` axis with the
  least-squares line extrapolated to ``1/n = 0``;
* :func:`rank_heatmap`: rank distribution across bootstrap replicates.

Every function returns None when there is nothing to draw.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from bench.report.board import LeaderTable

DPI = 90
_BEST = "#d62728"
_OTHER = "#1f77b4"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def to_png(fig) -> bytes:
    """Render and close a figure."""
    plt = _plt()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return buf.getvalue()


def _grid(n: int, ncols: int = 3) -> tuple[int, int]:
    ncols = max(1, min(ncols, n))
    return int(math.ceil(n / ncols)), ncols


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def metric_bars(table: LeaderTable) -> bytes | None:
    """Horizontal bars (value, CI whiskers) per model, one panel per column with any ok value."""
    cols = [c for c in table.columns if any(table.cell(r, c).ok for r in table.rows)]
    if not cols:
        return None
    plt = _plt()
    nrows, ncols = _grid(len(cols))
    k = len(table.rows)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, (0.35 * k + 1.3) * nrows), squeeze=False)
    for ax in axes.ravel()[len(cols):]:
        ax.axis("off")
    for ax, col in zip(axes.ravel(), cols):
        rows = [r for r in table.rows if table.cell(r, col).ok]
        vals = np.array([table.cell(r, col).value for r in rows])
        lo = np.array([table.cell(r, col).ci_low for r in rows])
        hi = np.array([table.cell(r, col).ci_high for r in rows])
        y = np.arange(len(rows))[::-1]
        colors = [_BEST if table.cell(r, col).best else _OTHER for r in rows]
        ax.barh(y, vals, color=colors, alpha=0.85)
        ci = np.isfinite(lo) & np.isfinite(hi)  # whiskers span the interval (which may not contain the value)
        ax.hlines(y[ci], lo[ci], hi[ci], color="black", linewidth=1)
        ax.plot(np.r_[lo[ci], hi[ci]], np.r_[y[ci], y[ci]], "|", color="black", markersize=8)
        ax.set_yticks(y, [_short(r) + (" †" if table.cell(r, col).dagger else "") for r in rows], fontsize=8)
        ax.set_title(f"{_short(col.label, 36)} {'(lower better)' if col.lower_is_better else '(higher better)'}",
                     fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(table.title, fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def item_distributions(per_item: pd.DataFrame, model_order: Sequence[str] | None = None) -> bytes | None:
    """Box plots of per-item scores per model, one panel per (reference set, embedder, metric).

    ``per_item``: rows of one prompt set with columns ``model, reference_set, embedder, metric, value``.
    """
    if per_item is None or per_item.empty:
        return None
    df = per_item[np.isfinite(pd.to_numeric(per_item["value"], errors="coerce"))]
    if df.empty:
        return None
    groups = list(df.groupby(["reference_set", "embedder", "metric"], sort=False))
    plt = _plt()
    nrows, ncols = _grid(len(groups), 2)
    models_all = list(model_order or []) + sorted(set(df["model"]) - set(model_order or []))
    k = len([m for m in models_all if m in set(df["model"])])
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, (0.4 * k + 1.5) * nrows), squeeze=False)
    for ax in axes.ravel()[len(groups):]:
        ax.axis("off")
    for ax, ((ref, emb, met), g) in zip(axes.ravel(), groups):
        models = [m for m in models_all if m in set(g["model"])]
        data = [g.loc[g["model"] == m, "value"].to_numpy(dtype=float) for m in models]
        pos = np.arange(len(models))[::-1] + 1
        ax.boxplot(data, positions=pos, vert=False, widths=0.6, showfliers=True,
                   flierprops={"markersize": 3, "alpha": 0.6})
        rng = np.random.default_rng(0)
        for p, d in zip(pos, data):
            ax.scatter(d, p + rng.uniform(-0.15, 0.15, d.size), s=4, alpha=0.35, color=_OTHER)
        ax.set_yticks(pos, [_short(m) for m in models], fontsize=8)
        title = f"{met}@{emb}" if emb else met
        ax.set_title(_short(title + (f" vs {ref}" if ref else ""), 48), fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return to_png(fig)


def fad_curves(curves: pd.DataFrame) -> bytes | None:
    """Metric vs ``1/n`` per model with the linear fit to ``1/n = 0`` (the FAD-infinity estimate).

    ``curves``: columns ``model, prompt_set, reference_set, embedder, metric, n, value``.
    """
    if curves is None or curves.empty:
        return None
    df = curves.copy()
    df["n"] = pd.to_numeric(df["n"], errors="coerce")
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df = df[np.isfinite(df["n"]) & (df["n"] > 0) & np.isfinite(df["value"])]
    if df.empty:
        return None
    groups = list(df.groupby(["prompt_set", "reference_set", "embedder", "metric"], sort=False))
    plt = _plt()
    nrows, ncols = _grid(len(groups), 2)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 3.6 * nrows), squeeze=False)
    for ax in axes.ravel()[len(groups):]:
        ax.axis("off")
    cmap = plt.get_cmap("tab10")
    for ax, ((ps, ref, emb, met), g) in zip(axes.ravel(), groups):
        for i, (model, gm) in enumerate(g.groupby("model", sort=True)):
            gm = gm.sort_values("n")
            x = 1.0 / gm["n"].to_numpy(dtype=float)
            y = gm["value"].to_numpy(dtype=float)
            color = cmap(i % 10)
            ax.plot(x, y, "o", color=color, markersize=4, label=_short(str(model), 24))
            if np.unique(x).size >= 2:
                slope, intercept = np.polyfit(x, y, 1)
                xs = np.array([0.0, x.max()])
                ax.plot(xs, intercept + slope * xs, "--", color=color, linewidth=1)
                ax.plot([0.0], [intercept], "*", color=color, markersize=8)
        ax.set_xlim(left=0.0)
        ax.set_xlabel("1 / n  (n = generated clips)", fontsize=8)
        ax.set_ylabel(f"{met}@{emb}" if emb else met, fontsize=8)
        ax.set_title(_short(f"{ps}" + (f" vs {ref}" if ref else "") + " — ★ = extrapolated n→∞", 60), fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return to_png(fig)


def rank_heatmap(stability: pd.DataFrame, title: str = "") -> bytes | None:
    """Heat map of ``p_rank_<k>`` (rows: models, best first; columns: ranks) from ``rank_stability``."""
    if stability is None or stability.empty:
        return None
    rank_cols = sorted((c for c in stability.columns if c.startswith("p_rank_") and c != "p_rank_held"),
                       key=lambda c: int(c.rsplit("_", 1)[1]))
    if not rank_cols:
        return None
    mat = stability[rank_cols].to_numpy(dtype=float)
    mat = np.nan_to_num(mat, nan=0.0)
    plt = _plt()
    k, r = mat.shape
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * r + 1.5, 0.4 * k + 1.2))
    ax.imshow(mat, vmin=0.0, vmax=1.0, cmap="Blues", aspect="auto")
    for i in range(k):
        for j in range(r):
            ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if mat[i, j] > 0.6 else "black")
    ax.set_xticks(range(r), [c.rsplit("_", 1)[1] for c in rank_cols], fontsize=8)
    ax.set_yticks(range(k), [_short(str(m)) for m in stability["model"]], fontsize=8)
    ax.set_xlabel("rank in bootstrap replicate", fontsize=8)
    if title:
        ax.set_title(_short(title, 60), fontsize=9)
    fig.tight_layout()
    return to_png(fig)
