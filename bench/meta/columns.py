"""Which rows of a ``leaderboard_long.csv`` are metrics worth meta-evaluating."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _bookkeeping(metric: str) -> bool:
    """Extras that count things (``fad.n_frames``, ``kad.bandwidth``) rather than measure quality."""
    from bench.report.leaderboard import WIDE_EXCLUDED_EXTRAS

    return "." in metric and metric.split(".", 1)[1] in WIDE_EXCLUDED_EXTRAS


def metric_rows(long: pd.DataFrame) -> pd.DataFrame:
    """The ``status == "ok"`` rows of real metrics: bookkeeping extras dropped, and extras that repeat
    their metric's own value in every cell (``prdc.coverage`` when PRDC's value is coverage) dropped."""
    long = long[(long["status"] == "ok") & ~long["metric"].map(_bookkeeping)]
    keys = ["model", "prompt_set", "reference_set", "embedder"]
    drop = set()
    for (emb, metric), g in long.groupby(["embedder", "metric"], sort=False):
        if "." not in metric:
            continue
        base = long[(long["embedder"] == emb) & (long["metric"] == metric.split(".", 1)[0])]
        if base.empty:
            continue
        joined = g.merge(base, on=keys, suffixes=("", "_base"))
        if len(joined) == len(g) and np.array_equal(joined["value"].to_numpy(float), joined["value_base"].to_numpy(float)):
            drop.add((emb, metric))
    if not drop:
        return long
    mask = [(e, m) not in drop for e, m in zip(long["embedder"], long["metric"])]
    return long[mask]
