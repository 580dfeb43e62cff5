"""MAUVE and the MAUVE Audio Divergence (MAD) between generated and reference embedding sets.

MAUVE (Pillutla et al., NeurIPS 2021; JMLR 2023), as the authors' ``mauve-text`` 0.4.0
``compute_mauve`` with ``p`` = generated, ``q`` = reference clip embeddings:

1. quantise: stack ``[q; p]``, L2-normalise every row, PCA (centred, no whitening, fit on all rows)
   keeping the fewest leading components whose explained-variance ratio reaches
   ``explained_variance`` (0.9), k-means with ``k`` clusters on the joint set
   (``k = max(2, round(min(n_p, n_q) / 10))`` for ``num_buckets="auto"``), histograms ``P``, ``Q``
   of the two sets' cluster labels;
2. divergence frontier: for ``m`` (25) mixture weights ``w = linspace(1e-6, 1 - 1e-6)``,
   ``R_w = w P + (1 - w) Q`` and the point ``(exp(-c KL(Q || R_w)), exp(-c KL(P || R_w)))``, plus the
   end points ``(1, 0)`` and ``(0, 1)``; scaling constant ``c = 5``;
3. MAUVE = area under that curve (trapezoids, averaged over the two axis orders as mauve-text does);
   ``frontier_integral`` (x2 scaled) and the Krichevsky-Trofimov smoothed ``mauve_star``
   (counts + 0.5) are also reported.

MAD (Huang et al., ISMIR 2025, arXiv 2503.16669; the authors' ``mad_metric`` package) is
``-ln(MAUVE)`` on per-clip embeddings (lower is better; 0 = indistinguishable histograms). The
authors' choice, and the documented default here, is MERT-v1-330M, layer 24, max-pooled over time
(``embedder=[mert_330m]``, ``pooling: max``); any embedder works.

Where this differs from mauve-text: the default k-means backend is a deterministic numpy k-means++ /
Lloyd (:mod:`bench.metrics.kmeans`) instead of faiss; ``kmeans_backend: faiss`` reproduces
mauve-text's labels (and hence its value) exactly. PCA is an SVD in float64 (sklearn's PCA in
mauve-text; same subspace, signs may differ, which k-means does not see). The frontier and areas
are computed identically (tested to 1e-12 given the same labels).

Bootstrap (prompt resampling, :mod:`bench.metrics.bootstrap`): by default (``bootstrap_mode:
histogram``) the quantisation of the full sets is kept and each replicate re-weights the generated
clips' labels (cheap; measures sampling noise of the generated histogram given the clusters).
``bootstrap_mode: requantize`` reruns PCA + k-means on every resample (duplicates included) and thus
also covers the clustering's variability (B times the cost).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.metrics import refcache
from bench.metrics.base import BootstrapMetric, EmbeddingSet, MetricInput, MetricResult, MetricUnavailable
from bench.metrics.bootstrap import resample_indices
from bench.metrics.kmeans import BACKENDS, kmeans_labels

POOLINGS = ("max", "mean")
BOOTSTRAP_MODES = ("histogram", "requantize")


# ----------------------------------------------------------------------------------------------
# pure core
# ----------------------------------------------------------------------------------------------
def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero, as sklearn's ``normalize``)."""
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0.0, 1.0, n)


def pca_reduce(x: np.ndarray, explained_variance: float = 0.9) -> np.ndarray:
    """Project centred ``x (n, d)`` onto its fewest leading principal axes explaining ``explained_variance``.

    The number of axes is ``argmax(cumsum(ratio) >= explained_variance) + 1`` (mauve-text's rule).
    """
    if not 0.0 < explained_variance < 1.0:
        raise ValueError(f"explained_variance must be in (0, 1), got {explained_variance}")
    xc = np.asarray(x, dtype=np.float64) - np.mean(x, axis=0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    var = s**2
    total = var.sum()
    if total <= 0.0:
        return xc[:, :1] * 0.0
    ratio = np.cumsum(var / total)
    k = int(np.argmax(ratio >= explained_variance)) + 1
    return xc @ vt[:k].T


def auto_buckets(n_p: int, n_q: int) -> int:
    """mauve-text's ``num_buckets="auto"``: ``max(2, round(min(n_p, n_q) / 10))`` (Python rounding)."""
    return max(2, int(round(min(n_p, n_q) / 10)))


@dataclass
class Quantized:
    """Cluster labels of the generated (``p``) and reference (``q``) rows and the PCA dimension."""

    p_labels: np.ndarray
    q_labels: np.ndarray
    k: int
    pca_dim: int


def quantize(
    p: np.ndarray,
    q: np.ndarray,
    k: int,
    explained_variance: float = 0.9,
    backend: str = "numpy",
    n_redo: int = 5,
    max_iter: int = 500,
    seed: int = 25,
) -> Quantized:
    """Joint quantisation of ``p (n_p, d)`` and ``q (n_q, d)`` (L2 norm, PCA, k-means on ``[q; p]``).

    ``seed`` is mauve-text's ``seed`` argument: the k-means seed is ``seed + 2`` as there.
    """
    data = l2_normalize(np.vstack([q, p]))
    z = pca_reduce(data, explained_variance)
    labels = kmeans_labels(z, k, backend, n_redo, max_iter, seed + 2)
    return Quantized(labels[len(q) :], labels[: len(q)], k, int(z.shape[1]))


def histogram(labels: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Cluster counts ``(k,)`` float64 (optionally weighted)."""
    return np.bincount(np.asarray(labels, dtype=np.int64), weights=weights, minlength=k).astype(np.float64)


def kl_multinomial(p: np.ndarray, q: np.ndarray) -> float:
    """``KL(p || q)`` of two histograms; ``inf`` when ``q`` misses mass of ``p``."""
    if np.any((p != 0) & (q == 0)):
        return float("inf")
    m = (p != 0) & (q != 0)
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


def divergence_curve(p: np.ndarray, q: np.ndarray, n_points: int = 25, scaling: float = 5.0) -> np.ndarray:
    """The divergence frontier ``(n_points + 2, 2)``: ``exp(-c [KL(q || r_w), KL(p || r_w)])`` with end points."""
    pts = [[0.0, np.inf]]
    for w in np.sort(np.linspace(1e-6, 1 - 1e-6, n_points)):
        r = w * p + (1 - w) * q
        pts.append([kl_multinomial(q, r), kl_multinomial(p, r)])
    pts.append([np.inf, 0.0])
    return np.exp(-scaling * np.asarray(pts, dtype=np.float64))


def _area(x: np.ndarray, y: np.ndarray) -> float:
    o = np.argsort(x)
    xs, ys = x[o], y[o]
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2.0))


def mauve_from_histograms(p: np.ndarray, q: np.ndarray, n_points: int = 25, scaling: float = 5.0) -> float:
    """MAUVE of two histograms (normalised here): mean of the areas under the frontier in both axis orders."""
    p = np.asarray(p, dtype=np.float64) / np.sum(p)
    q = np.asarray(q, dtype=np.float64) / np.sum(q)
    x, y = divergence_curve(p, q, n_points, scaling).T
    return 0.5 * (_area(x, y) + _area(y, x))


def frontier_integral(p: np.ndarray, q: np.ndarray, scaling: float = 2.0) -> float:
    """mauve-text's frontier integral of two (normalised) histograms (lower = closer)."""
    p = np.asarray(p, dtype=np.float64) / np.sum(p)
    q = np.asarray(q, dtype=np.float64) / np.sum(q)
    total = 0.0
    for a, b in zip(p, q):
        if a == 0 and b == 0:
            continue
        if a == 0 or b == 0:
            total += (a + b) / 4
        elif abs(a - b) > 1e-8:
            total += 0.25 * (a + b) - 0.5 * a * b * (np.log(a) - np.log(b)) / (a - b)
    return float(total * scaling)


@dataclass
class MauveResult:
    """MAUVE outputs: ``mauve``, ``mauve_star`` (KT-smoothed), ``frontier_integral``, ``mad = -ln mauve``."""

    mauve: float
    mauve_star: float
    frontier_integral: float
    k: int
    pca_dim: int

    @property
    def mad(self) -> float:
        return mad_from_mauve(self.mauve)


def mad_from_mauve(mauve: float) -> float:
    """``-ln(MAUVE)``; ``inf`` for MAUVE 0."""
    return float(-np.log(mauve)) if mauve > 0 else float("inf")


def mauve_from_labels(
    qz: Quantized, n_points: int = 25, scaling: float = 5.0, p_weights: np.ndarray | None = None
) -> MauveResult:
    """MAUVE given the quantisation; ``p_weights`` re-weights the generated rows (bootstrap)."""
    pc = histogram(qz.p_labels, qz.k, p_weights)
    qc = histogram(qz.q_labels, qz.k)
    return MauveResult(
        mauve_from_histograms(pc, qc, n_points, scaling),
        mauve_from_histograms(pc + 0.5, qc + 0.5, n_points, scaling),
        frontier_integral(pc, qc),
        qz.k,
        qz.pca_dim,
    )


def compute_mauve(
    p: np.ndarray,
    q: np.ndarray,
    num_buckets: int | str = "auto",
    explained_variance: float = 0.9,
    backend: str = "numpy",
    n_redo: int = 5,
    max_iter: int = 500,
    n_points: int = 25,
    scaling: float = 5.0,
    seed: int = 25,
) -> MauveResult:
    """MAUVE of generated ``p (n_p, d)`` vs reference ``q (n_q, d)`` (mauve-text's ``compute_mauve`` defaults)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    k = auto_buckets(len(p), len(q)) if num_buckets == "auto" else int(num_buckets)
    qz = quantize(p, q, k, explained_variance, backend, n_redo, max_iter, seed)
    return mauve_from_labels(qz, n_points, scaling)


def pool_clips(es: EmbeddingSet, pooling: str) -> np.ndarray:
    """Per-clip ``(N, D)`` float64: max or mean over each clip's frames."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    f = np.max if pooling == "max" else np.mean
    return np.stack([f(e.astype(np.float64), axis=0) for _, e in es.iter_emb()])


# ----------------------------------------------------------------------------------------------
# wrapper
# ----------------------------------------------------------------------------------------------
class MAD(BootstrapMetric):
    """MAUVE Audio Divergence ``-ln MAUVE(generated, reference)`` on per-clip embeddings (lower is better).

    Args:
        pooling: "max" (Huang et al.) or "mean" over each clip's frames.
        num_buckets: "auto" (min(n_gen, n_ref) / 10, at least 2) or a cluster count.
        explained_variance: PCA variance kept before k-means.
        kmeans_backend: "numpy" (deterministic k-means++ / Lloyd) or "faiss" (mauve-text's, needs faiss-cpu).
        kmeans_num_redo, kmeans_max_iter: k-means restarts and iteration cap (mauve-text: 5, 500).
        divergence_curve_points: mixture weights on the frontier (25); scaling_factor: ``c`` (5).
        seed: mauve-text's seed (k-means seed = seed + 2).
        bootstrap_mode: "histogram" (clusters fixed) or "requantize" (PCA + k-means per replicate).
        **bootstrap: n_bootstrap, ci, ci_method (:class:`~bench.metrics.base.BootstrapMetric`; default "shifted").

    extras: ``mauve``, ``mauve_star``, ``frontier_integral``, ``n_clusters``, ``pca_dim``.
    """

    name = "mad"
    lower_is_better = True
    default_ci_method = "shifted"
    fixed_params = {"norm": "l2", "pca_fit": "all_rows"}

    def __init__(
        self,
        pooling: str = "max",
        num_buckets: int | str = "auto",
        explained_variance: float = 0.9,
        kmeans_backend: str = "numpy",
        kmeans_num_redo: int = 5,
        kmeans_max_iter: int = 500,
        divergence_curve_points: int = 25,
        scaling_factor: float = 5.0,
        seed: int = 25,
        bootstrap_mode: str = "histogram",
        **bootstrap: Any,
    ):
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if kmeans_backend not in BACKENDS:
            raise ValueError(f"kmeans_backend must be one of {BACKENDS}, got {kmeans_backend!r}")
        if bootstrap_mode not in BOOTSTRAP_MODES:
            raise ValueError(f"bootstrap_mode must be one of {BOOTSTRAP_MODES}, got {bootstrap_mode!r}")
        if num_buckets != "auto" and (isinstance(num_buckets, bool) or int(num_buckets) < 2):
            raise ValueError(f"num_buckets must be 'auto' or an integer >= 2, got {num_buckets!r}")
        if not 0.0 < float(explained_variance) < 1.0:
            raise ValueError(f"explained_variance must be in (0, 1), got {explained_variance}")
        self.pooling = pooling
        self.num_buckets = num_buckets if num_buckets == "auto" else int(num_buckets)
        self.explained_variance = float(explained_variance)
        self.kmeans_backend = kmeans_backend
        self.kmeans_num_redo = int(kmeans_num_redo)
        self.kmeans_max_iter = int(kmeans_max_iter)
        self.divergence_curve_points = int(divergence_curve_points)
        self.scaling_factor = float(scaling_factor)
        self.seed = int(seed)
        self.bootstrap_mode = bootstrap_mode
        super().__init__(**bootstrap)

    def _mauve(self, gen: np.ndarray, ref: np.ndarray) -> tuple[MauveResult, Quantized]:
        k = auto_buckets(len(gen), len(ref)) if self.num_buckets == "auto" else int(self.num_buckets)
        if k > len(gen) + len(ref):
            raise MetricUnavailable(f"MAD with {k} clusters needs at least {k} clips, have {len(gen) + len(ref)}")
        qz = quantize(
            gen, ref, k, self.explained_variance, self.kmeans_backend, self.kmeans_num_redo, self.kmeans_max_iter,
            self.seed,
        )
        return mauve_from_labels(qz, self.divergence_curve_points, self.scaling_factor), qz

    def compute(self, inp: MetricInput) -> MetricResult:
        ref_set = inp.ref
        if ref_set is None or not ref_set.has_items:
            raise MetricUnavailable("MAD needs reference embeddings, not statistics")
        if not inp.gen.has_items or len(inp.gen) < 2:
            raise MetricUnavailable("MAD needs at least 2 generated clips")
        ref = refcache.cached("emb", ref_set, {"pooling": self.pooling}, lambda: pool_clips(ref_set, self.pooling))
        gen = pool_clips(inp.gen, self.pooling)
        if ref.shape[1] != gen.shape[1]:
            raise MetricUnavailable(f"embedding dims differ: reference {ref.shape[1]}, generated {gen.shape[1]}")
        if self.kmeans_backend == "faiss":
            try:
                import faiss  # noqa: F401
            except ImportError:
                raise MetricUnavailable(
                    "MAD kmeans_backend=faiss needs faiss-cpu (pip install faiss-cpu), or set kmeans_backend=numpy"
                ) from None
        full, qz = self._mauve(gen, ref)
        res = MetricResult(
            value=full.mad,
            n=len(gen),
            extras={
                "mauve": full.mauve,
                "mauve_star": full.mauve_star,
                "frontier_integral": full.frontier_integral,
                "n_clusters": float(full.k),
                "pca_dim": float(full.pca_dim),
            },
        )
        if self.n_bootstrap > 0:
            w = self.clip_weights(inp.gen.ids, inp.seed)
            if self.bootstrap_mode == "histogram":
                reps = [
                    mad_from_mauve(mauve_from_labels(qz, self.divergence_curve_points, self.scaling_factor, row).mauve)
                    for row in w
                ]
            else:
                reps = [self._mauve(gen[resample_indices(row)], ref)[0].mad for row in w]
            self.attach_bootstrap(res, np.asarray(reps, dtype=np.float64))
        return res
