"""Audiobox Aesthetics scores of generated clips: per-model mean of one axis, with per-clip scores.

Reads the ``"aes"`` clip scores ``(4,)`` (axes CE, CU, PC, PQ) that the
:class:`bench.embedders.audiobox_aesthetics.AudioboxAesthetics` embedder stores, picks ``axis`` and
averages over the generated clips (reference-free; higher is better). ``per_item`` holds every
clip's score (``per_item.csv``); the interval is the prompt-resampling bootstrap of the mean.
One metric per axis (``aes_ce``, ``aes_cu``, ``aes_pc``, ``aes_pq``) gives four leaderboard columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.metrics.base import BootstrapMetric, MetricInput, MetricResult, MetricUnavailable
from bench.metrics.bootstrap import weighted_mean_replicates

AXES = ("CE", "CU", "PC", "PQ")
AXIS_NAMES = {
    "CE": "content enjoyment",
    "CU": "content usefulness",
    "PC": "production complexity",
    "PQ": "production quality",
}


class Aesthetics(BootstrapMetric):
    """Mean Audiobox Aesthetics score on the subclass' ``axis`` (higher is better).

    Args:
        **bootstrap: n_bootstrap, ci, ci_method (:class:`~bench.metrics.base.BootstrapMetric`).
    """

    axis = "PQ"
    name = "aes_pq"
    lower_is_better = False
    needs_reference = False

    fixed_params = {"axis": "PQ", "clip_score": "window_fraction_weighted_mean"}

    def __init__(self, **bootstrap: Any):
        super().__init__(**bootstrap)

    def check(self, inp: MetricInput) -> None:
        super().check(inp)
        if getattr(inp.embedder, "feature", None) != "aesthetics":
            raise MetricUnavailable(
                f"{self.name} needs the audiobox_aesthetics embedder, not {getattr(inp.embedder, 'name', None)}"
            )

    def compute(self, inp: MetricInput) -> MetricResult:
        if not inp.gen.has_items:
            raise MetricUnavailable(f"{self.name} needs generated clips")
        col = AXES.index(self.axis)
        ids = list(inp.gen.ids)
        vals = []
        for i in ids:
            d = inp.gen.load(i)  # type: ignore[misc]
            if "aes" not in d:
                raise MetricUnavailable(f"{self.name}: clip {i} has no Audiobox Aesthetics scores")
            vals.append(float(np.asarray(d["aes"], dtype=np.float64)[col]))
        v = np.asarray(vals)
        res = MetricResult(value=float(v.mean()), n=len(ids), per_item=dict(zip(ids, vals)))
        if self.n_bootstrap > 0:
            self.attach_bootstrap(res, weighted_mean_replicates(v, self.clip_weights(ids, inp.seed)))
        return res


class AestheticsCE(Aesthetics):
    """Audiobox Aesthetics content enjoyment (CE)."""

    axis, name = "CE", "aes_ce"
    fixed_params = {"axis": "CE", "clip_score": "window_fraction_weighted_mean"}


class AestheticsCU(Aesthetics):
    """Audiobox Aesthetics content usefulness (CU)."""

    axis, name = "CU", "aes_cu"
    fixed_params = {"axis": "CU", "clip_score": "window_fraction_weighted_mean"}


class AestheticsPC(Aesthetics):
    """Audiobox Aesthetics production complexity (PC)."""

    axis, name = "PC", "aes_pc"
    fixed_params = {"axis": "PC", "clip_score": "window_fraction_weighted_mean"}


class AestheticsPQ(Aesthetics):
    """Audiobox Aesthetics production quality (PQ)."""

    axis, name = "PQ", "aes_pq"
    fixed_params = {"axis": "PQ", "clip_score": "window_fraction_weighted_mean"}
