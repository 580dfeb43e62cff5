"""Precision, recall, density and coverage in embedding space (Naeem et al. 2020, k-NN manifolds).

With real (reference) clip embeddings ``r_i`` (N), fake (generated) ``f_j`` (M), Euclidean
distances and ``rad(r_i)`` = distance from ``r_i`` to its k-th nearest other real point
(the ``(k+1)``-th smallest distance of its row, itself included), as clovaai/generative-evaluation-prdc::

    precision = mean_j [ exists i: d(r_i, f_j) < rad(r_i) ]
    recall    = mean_i [ exists j: d(r_i, f_j) < rad(f_j) ]      (rad(f_j) within the fake set)
    density   = 1/(k M) sum_j #{ i: d(r_i, f_j) < rad(r_i) }
    coverage  = mean_i [ min_j d(r_i, f_j) < rad(r_i) ]

All four are higher-is-better. The wrapper's ``value`` is **coverage** by default: bounded in
[0, 1], robust to outliers and recommended by Naeem et al. over precision/recall; set
``value="density"`` etc. to rank by another. All four are in ``extras``.

Embeddings: one per clip (mean over frames). Computation is blockwise (memory
``O(block * max(N, M))``). Fake sets may carry integer multiplicities (bootstrap resamples);
results then equal the reference formulas on the expanded set with duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from bench.metrics import refcache
from bench.metrics.base import BootstrapMetric, MetricInput, MetricResult, MetricUnavailable

KEYS = ("precision", "recall", "density", "coverage")


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(len(a), len(b))`` float64."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(d2, 0.0, None))


def _weighted_kth(d: np.ndarray, counts: np.ndarray, kth: int) -> np.ndarray:
    """Per row of ``d (b, m)`` the ``kth`` smallest value of the multiset where column ``j`` occurs ``counts[j]`` times."""
    m = d.shape[1]
    kk = min(kth, m)
    part = np.argpartition(d, kk - 1, axis=1)[:, :kk] if kk < m else np.tile(np.arange(m), (d.shape[0], 1))
    vals = np.take_along_axis(d, part, axis=1)
    order = np.argsort(vals, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    cum = np.cumsum(counts[np.take_along_axis(part, order, axis=1)], axis=1)
    if cum[0, -1] < kth:
        raise ValueError(f"need at least {kth} points for the k-NN radius, have {int(cum[0, -1])}")
    pos = np.argmax(cum >= kth, axis=1)
    return vals[np.arange(d.shape[0]), pos]


def knn_radii(
    x: np.ndarray,
    k: int,
    counts: np.ndarray | None = None,
    block: int = 1024,
    dist: Callable[[slice], np.ndarray] | None = None,
) -> np.ndarray:
    """Distance from each point of ``x (n, D)`` to its k-th nearest neighbour in the (multi)set, self excluded.

    counts: multiplicities ``(n,)`` (copies of a point are at distance 0 from it); default ones.
    dist: optional provider of distance rows ``dist(slice) -> (rows, n)`` (cached matrices).
    """
    n = len(x)
    c = np.ones(n) if counts is None else np.asarray(counts, dtype=np.float64)
    out = np.empty(n)
    for i0 in range(0, n, block):
        sl = slice(i0, min(n, i0 + block))
        d = dist(sl) if dist is not None else pairwise_distances(x[sl], x)
        d[np.arange(sl.stop - sl.start), np.arange(sl.start, sl.stop)] = 0.0
        out[sl] = _weighted_kth(d, c, k + 1)
    return out


def _from_blocks(
    real_radii: np.ndarray,
    fake_radii: np.ndarray,
    counts: np.ndarray,
    k: int,
    blocks: Iterator[tuple[slice, np.ndarray]],
) -> dict[str, float]:
    """Combine real-vs-fake distance blocks ``(rows slice, (rows, M_u))`` into the four metrics."""
    n = len(real_radii)
    hit = np.zeros(len(fake_radii), dtype=bool)
    inside_count = np.zeros(len(fake_radii))
    recall_hit = np.zeros(n, dtype=bool)
    cov_hit = np.zeros(n, dtype=bool)
    for sl, d in blocks:
        inside = d < real_radii[sl, None]
        hit |= inside.any(0)
        inside_count += inside.sum(0)
        recall_hit[sl] = (d < fake_radii[None, :]).any(1)
        cov_hit[sl] = d.min(1) < real_radii[sl]
    m = counts.sum()
    return {
        "precision": float((counts * hit).sum() / m),
        "recall": float(recall_hit.mean()),
        "density": float((counts * inside_count).sum() / (k * m)),
        "coverage": float(cov_hit.mean()),
    }


def prdc(
    real: np.ndarray,
    fake: np.ndarray,
    k: int = 5,
    fake_counts: np.ndarray | None = None,
    real_radii: np.ndarray | None = None,
    block: int = 1024,
) -> dict[str, float]:
    """Precision / recall / density / coverage of ``fake (M, D)`` against ``real (N, D)``, blockwise.

    fake_counts: multiplicities of the fake rows (0 drops a row); real_radii: precomputed
    :func:`knn_radii` of ``real``.
    """
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    c = np.ones(len(fake)) if fake_counts is None else np.asarray(fake_counts, dtype=np.float64)
    used = c > 0
    fake, c = fake[used], c[used]
    if len(real) < k + 1 or c.sum() < k + 1:
        raise ValueError(f"PRDC with k={k} needs at least {k + 1} real and fake points")
    rr = knn_radii(real, k, block=block) if real_radii is None else real_radii
    fr = knn_radii(fake, k, c, block=block)
    n = len(real)
    blocks = ((slice(i, min(n, i + block)), pairwise_distances(real[i : i + block], fake)) for i in range(0, n, block))
    return _from_blocks(rr, fr, c, k, blocks)


class PRDCCache:
    """Real-fake and fake-fake distance matrices kept in memory for fast bootstrap replicates.

    ``evaluate(counts)`` equals ``prdc(real, fake, k, counts, real_radii)`` but costs
    ``O(N M + M^2)`` comparisons instead of distance computations. Memory ``8 (N M + M^2)`` bytes.
    """

    def __init__(self, real: np.ndarray, fake: np.ndarray, k: int, real_radii: np.ndarray, block: int = 1024):
        self.k = k
        self.block = block
        self.real_radii = real_radii
        self.d_rf = pairwise_distances(real, fake)
        self.d_ff = pairwise_distances(fake, fake)

    @staticmethod
    def nbytes(n_real: int, n_fake: int) -> int:
        return 8 * (n_real * n_fake + n_fake * n_fake)

    def evaluate(self, counts: np.ndarray) -> dict[str, float]:
        c_all = np.asarray(counts, dtype=np.float64)
        u = np.flatnonzero(c_all > 0)
        c = c_all[u]
        if c.sum() < self.k + 1:
            raise ValueError(f"PRDC with k={self.k} needs at least {self.k + 1} fake points")
        d_ff = self.d_ff
        fr = knn_radii(u, self.k, c, self.block, dist=lambda sl: d_ff[np.ix_(u[sl], u)])
        n = self.d_rf.shape[0]
        blocks = (
            (slice(i, min(n, i + self.block)), self.d_rf[i : i + self.block][:, u]) for i in range(0, n, self.block)
        )
        return _from_blocks(self.real_radii, fr, c, self.k, blocks)


class PRDC(BootstrapMetric):
    """Precision / recall / density / coverage of generated vs reference clip embeddings (higher is better).

    Args:
        k: nearest neighbours (Naeem et al. use 5).
        value: which of precision / recall / density / coverage is the ranked ``value`` (default coverage).
        **bootstrap: n_bootstrap, ci, ci_method (:class:`~bench.metrics.base.BootstrapMetric`).
        cache_max_bytes: keep distance matrices in memory for the bootstrap when they fit.
        block: rows per distance block.
    """

    name = "prdc"
    lower_is_better = False

    default_ci_method = "shifted"
    fixed_params = {"pooling": "clip_mean"}

    def __init__(
        self,
        k: int = 5,
        value: str = "coverage",
        cache_max_bytes: int = 2**30,
        block: int = 1024,
        **bootstrap: Any,
    ):
        if value not in KEYS:
            raise ValueError(f"value must be one of {KEYS}, got {value!r}")
        self.k = int(k)
        self.value = value
        super().__init__(**bootstrap)
        self.cache_max_bytes = int(cache_max_bytes)
        self.block = int(block)

    def compute(self, inp: MetricInput) -> MetricResult:
        ref_set = inp.ref
        real, fake = refcache.clip_pair(inp, "PRDC")
        if len(real) < self.k + 1 or len(fake) < self.k + 1:
            raise MetricUnavailable(f"PRDC with k={self.k} needs more than {self.k} reference and generated clips")
        rr = refcache.cached("prdc_radii", ref_set, {"k": self.k}, lambda: knn_radii(real, self.k, block=self.block))
        scores = prdc(real, fake, self.k, real_radii=rr, block=self.block)
        res = MetricResult(value=scores[self.value], n=len(fake), extras=dict(scores))
        if self.n_bootstrap > 0:
            w = self.clip_weights(inp.gen.ids, inp.seed)
            if PRDCCache.nbytes(len(real), len(fake)) <= self.cache_max_bytes:
                cache = PRDCCache(real, fake, self.k, rr, self.block)
                reps = np.array([cache.evaluate(row)[self.value] for row in w])
            else:
                reps = np.array([prdc(real, fake, self.k, row, rr, self.block)[self.value] for row in w])
            self.attach_bootstrap(res, reps)
        return res
