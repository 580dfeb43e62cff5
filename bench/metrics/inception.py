"""Inception Score (Salimans et al. 2016) on a classifier's label distributions of generated clips.

``IS = exp( mean_i KL(p(y|x_i) || p(y)) )`` with ``p(y)`` the mean of ``p(y|x_i)`` over the set;
higher is better (confident and diverse predictions). ``splits > 1`` reproduces the
torch-fidelity / audioldm_eval convention: shuffle with ``seed``, cut into ``splits`` equal
chunks, report the mean of the per-chunk scores (``extras["is_std"]`` = their population std).
The default ``splits=1`` scores the whole set, which is what the prompt bootstrap resamples.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy.special import xlogy

from bench.metrics.base import BootstrapMetric, MetricInput, MetricResult, MetricUnavailable

log = logging.getLogger(__name__)


def inception_score(probs: np.ndarray) -> float:
    """IS of ``probs (n, C)`` (rows are distributions)."""
    p = np.asarray(probs, dtype=np.float64)
    py = p.mean(axis=0)
    kl = (xlogy(p, p) - xlogy(p, py[None, :])).sum(1)
    return float(np.exp(kl.mean()))


def inception_score_splits(
    probs: np.ndarray, splits: int = 10, seed: int = 0, shuffle: bool = True
) -> tuple[float, float]:
    """torch-fidelity-style IS: mean and std over ``splits`` chunks (after a seeded permutation)."""
    p = np.asarray(probs, dtype=np.float64)
    n = p.shape[0]
    if shuffle:
        p = p[np.random.RandomState(seed).permutation(n)]
    scores = [inception_score(p[i * n // splits : (i + 1) * n // splits]) for i in range(splits)]
    return float(np.mean(scores)), float(np.std(scores))


def inception_score_replicates(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """IS of each bootstrap replicate (rows weighted by multiplicities ``weights (B, n)``) -> ``(B,)``.

    ``mean_i KL(p_i || p_y) = (w . sum_c p log p - sum_c (W P)_c log p_y,c) / m`` with ``p_y = W P / m``.
    """
    p = np.asarray(probs, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    m = w.sum(1)
    neg_ent = xlogy(p, p).sum(1)
    wp = w @ p
    py = wp / m[:, None]
    kl = (w @ neg_ent - xlogy(wp, py).sum(1)) / m
    return np.exp(kl)


class InceptionScore(BootstrapMetric):
    """Inception Score of generated clips' class probabilities (higher is better; no reference needed).

    Args:
        splits: 1 (whole set; default) or e.g. 10 (audioldm_eval / torch-fidelity convention).
        seed: shuffle seed for ``splits > 1``.
        renormalize: divide each probability row by its sum (needed for sigmoid outputs).
        **bootstrap: n_bootstrap, ci, ci_method (:class:`~bench.metrics.base.BootstrapMetric`).
    """

    name = "inception_score"
    lower_is_better = False
    needs_reference = False
    needs_probs = True

    def __init__(
        self,
        splits: int = 1,
        seed: int = 0,
        renormalize: bool = True,
        **bootstrap: Any,
    ):
        self.splits = int(splits)
        self.seed = int(seed)
        self.renormalize = bool(renormalize)
        super().__init__(**bootstrap)

    def compute(self, inp: MetricInput) -> MetricResult:
        p = inp.gen.probs()
        if p.shape[0] < max(2, self.splits):
            raise MetricUnavailable(f"Inception Score needs at least {max(2, self.splits)} clips, have {p.shape[0]}")
        if self.renormalize:
            p = p / np.clip(p.sum(1, keepdims=True), 1e-12, None)
        extras: dict[str, float] = {}
        if self.splits > 1:
            value, std = inception_score_splits(p, self.splits, self.seed)
            extras["is_std"] = std
        else:
            value = inception_score(p)
        res = MetricResult(value=value, n=p.shape[0], extras=extras)
        if self.n_bootstrap > 0:
            if self.splits > 1:
                log.info("Inception Score: bootstrap replicates are only computed with splits=1")
            else:
                reps = inception_score_replicates(p, self.clip_weights(inp.gen.ids, inp.seed))
                self.attach_bootstrap(res, reps)
        return res
