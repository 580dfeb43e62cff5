"""Audiobox Aesthetics scores of generated clips: per-model mean of one axis, with per-clip scores.

Reads the ``"aes"`` clip scores ``(4,)`` (axes CE, CU, PC, PQ) that the
:class:`bench.embedders.audiobox_aesthetics.AudioboxAesthetics` embedder stores, picks ``axis`` and
averages over the generated clips (reference-free; higher is better). ``per_item`` holds every
clip's score (``per_item.csv``); the interval is the prompt-resampling bootstrap of the mean.
One metric per axis (``aes_ce``, ``aes_cu``, ``aes_pc``, ``aes_pq``) gives four leaderboard columns.
"""

from __future__ import annotations

from typing import Any, ClassVar

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
    """Mean Audiobox Aesthetics score on one axis (higher is better); one subclass per axis, declared
    as ``class AestheticsPQ(Aesthetics, axis="PQ")``, which sets its ``axis``, ``name`` (``aes_pq``) and
    identity (``fixed_params``).

    Args:
        **bootstrap: n_bootstrap, ci, ci_method (:class:`~bench.metrics.base.BootstrapMetric`).
    """

    axis: ClassVar[str]
    lower_is_better = False
    needs_reference = False

    def __init_subclass__(cls, axis: str | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if axis is not None:
            if axis not in AXES:
                raise ValueError(f"Aesthetics axis must be one of {AXES}, got {axis!r}")
            cls.axis, cls.name = axis, f"aes_{axis.lower()}"
            cls.fixed_params = {"axis": axis, "clip_score": "window_fraction_weighted_mean"}

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


class AestheticsCE(Aesthetics, axis="CE"):
    """Audiobox Aesthetics content enjoyment (CE)."""


class AestheticsCU(Aesthetics, axis="CU"):
    """Audiobox Aesthetics content usefulness (CU)."""


class AestheticsPC(Aesthetics, axis="PC"):
    """Audiobox Aesthetics production complexity (PC)."""


class AestheticsPQ(Aesthetics, axis="PQ"):
    """Audiobox Aesthetics production quality (PQ)."""
