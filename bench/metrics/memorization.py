"""Memorisation check: is a generated clip a near-copy of a reference (training-like) clip?

For every generated clip embedding (mean over frames) the nearest reference clip by cosine
similarity is found (blockwise matrix products, memory ``O(block * N_ref)``). A clip is flagged
when that maximum cosine is ``>= threshold``. ``value`` = fraction of flagged clips (lower is
better), ``per_item`` = each clip's maximum cosine, ``extras``: ``mean_max_cos``,
``max_max_cos``, ``n_flagged``. The threshold depends on the embedder (clip embeddings of
unrelated music often have cosine 0.8-0.9 under CLAP-like models): calibrate it with
:func:`nearest_cosine` on held-out real clips vs the reference set.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.metrics import refcache
from bench.metrics.base import BootstrapMetric, MetricInput, MetricResult
from bench.metrics.bootstrap import weighted_mean_replicates


def _normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def nearest_cosine(gen: np.ndarray, ref: np.ndarray, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``gen (n, D)``: the maximum cosine to ``ref (N, D)`` and the argmax index -> ``((n,), (n,))``."""
    g = _normalise(gen)
    r = _normalise(ref)
    best = np.full(len(g), -np.inf)
    arg = np.zeros(len(g), dtype=np.int64)
    for j0 in range(0, len(r), block):
        s = g @ r[j0 : j0 + block].T
        j = s.argmax(1)
        v = s[np.arange(len(g)), j]
        better = v > best
        best[better] = v[better]
        arg[better] = j[better] + j0
    return best, arg


class Memorization(BootstrapMetric):
    """Fraction of generated clips whose nearest reference clip has cosine >= ``threshold`` (lower is better)."""

    name = "memorization"
    lower_is_better = True

    fixed_params = {"pooling": "clip_mean"}

    def __init__(
        self,
        threshold: float = 0.95,
        block: int = 4096,
        **bootstrap: Any,
    ):
        self.threshold = float(threshold)
        super().__init__(**bootstrap)
        self.block = int(block)

    def compute(self, inp: MetricInput) -> MetricResult:
        ref, gen = refcache.clip_pair(inp, "memorization")
        best, _ = nearest_cosine(gen, ref, self.block)
        flags = (best >= self.threshold).astype(np.float64)
        res = MetricResult(
            value=float(flags.mean()),
            n=len(gen),
            extras={
                "mean_max_cos": float(best.mean()),
                "max_max_cos": float(best.max()),
                "n_flagged": float(flags.sum()),
            },
            per_item={i: float(v) for i, v in zip(inp.gen.ids, best)},
        )
        if self.n_bootstrap > 0:
            reps = weighted_mean_replicates(flags, self.clip_weights(inp.gen.ids, inp.seed))
            self.attach_bootstrap(res, reps)
        return res
