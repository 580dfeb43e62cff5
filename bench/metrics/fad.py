"""Frechet Audio Distance (FAD), per-sample FAD, FAD-infinity and their pipeline wrappers.

Formula (Kilgour et al. 2019; the Frechet / 2-Wasserstein distance of two Gaussians)::

    FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2)

``tr sqrt(S1 S2)`` is computed in the symmetric form: with ``S1 = F F^T`` (``F = V sqrt(L)``
from ``eigh(S1)``, eigenvalues clipped at 0), the eigenvalues of ``S1 S2`` are those of the
symmetric PSD matrix ``F^T S2 F`` (similar to ``sqrt(S1) S2 sqrt(S1)``), so
``tr sqrt(S1 S2) = sum sqrt(clip(eigvalsh(F^T S2 F), 0))``. Eigenvalues below the numerical-rank
tolerance ``max * n * machine eps`` count as 0 (the square root would turn their round-off into
~1e-8 errors). This is real-valued by construction, exact for rank-deficient covariances, and
several times faster than ``scipy.linalg.sqrtm`` of the non-symmetric product used by
frechet_audio_distance, fadtk and pytorch-fid (``numpy.linalg.eigh`` runs LAPACK's
divide-and-conquer ``syevd``; scipy's default ``syevr`` driver is several times slower here).
Values agree with those libraries to ~1e-9 relative or better (see the tests). An ``eps`` ridge is
added to both covariances only when the decomposition fails or yields a non-finite value
(pytorch-fid's rule).

Statistics use *all frames* of all clips (the frechet_audio_distance / fadtk convention),
accumulated in float64 by :class:`bench.metrics.stats.GaussianStats` without holding the
frames in memory. Covariances are unbiased (``ddof=1``).

Bootstrap (prompt resampling, see :mod:`bench.metrics.bootstrap`) uses per-clip sufficient
statistics: for clip ``i`` the frame count ``T_i``, the sum ``s_i`` and the scatter
``M_i = sum_t (x_t - c)(x_t - c)^T`` (``c`` = reference mean, for conditioning). A replicate
with clip weights ``w`` has ``N = w.T``, ``mu = c + (w.s) / N`` and
``cov = (sum_i w_i M_i - N (mu - c)(mu - c)^T) / (N - 1)`` - identical to the statistics of the
resampled frames, at the cost of one ``(B, n) @ (n, D^2)`` product instead of ``B`` passes over
the frames. The ``M_i`` are streamed in groups so memory stays within ``bootstrap_max_bytes``
(at D <= 512 one pass suffices; larger D takes several passes over the cached embeddings).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.metrics import refcache
from bench.metrics.base import BootstrapMetric, EmbeddingSet, Metric, MetricInput, MetricResult, MetricUnavailable
from bench.metrics.stats import GaussianStats, rank_deficient, warn_if_rank_deficient

log = logging.getLogger(__name__)

DEFAULT_EPS = 1e-6


# ----------------------------------------------------------------------------------------------
# pure core
# ----------------------------------------------------------------------------------------------
def _as_gaussian(mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise ValueError(f"expected mu (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError("statistics contain NaN or inf")
    return mu, (sigma + sigma.T) / 2.0


def psd_factor(sigma: np.ndarray) -> np.ndarray:
    """``F (D, r)`` with ``F F^T = sigma`` (symmetric PSD).

    Eigenvalues below the numerical-rank tolerance ``max(lam) * D * machine eps`` (round-off of a
    rank-deficient matrix, either sign) are treated as 0 and their directions dropped.
    """
    lam, vec = np.linalg.eigh(sigma)
    tol = max(float(lam[-1]), 0.0) * lam.size * np.finfo(np.float64).eps if lam.size else 0.0
    keep = lam > tol
    return vec[:, keep] * np.sqrt(lam[keep])


def sum_sqrt_eigenvalues(m: np.ndarray) -> float:
    """``sum sqrt(eigvalsh(m))`` of a symmetric PSD matrix; eigenvalues below ``max * n * eps`` count as 0.

    (The square root amplifies round-off: an exact zero computed as 1e-16 would add 1e-8.)
    """
    if m.size == 0:
        return 0.0
    ev = np.linalg.eigvalsh((m + m.T) / 2.0)
    tol = max(float(ev[-1]), 0.0) * ev.size * np.finfo(np.float64).eps
    return float(np.sqrt(ev[ev > tol]).sum())


def trace_sqrt_from_factor(factor: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr sqrt(S1 S2)`` given ``F F^T = S1``: ``sum sqrt(eigvalsh(F^T S2 F))`` (see :func:`sum_sqrt_eigenvalues`)."""
    if factor.shape[1] == 0:
        return 0.0
    return sum_sqrt_eigenvalues(factor.T @ sigma2 @ factor)


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr sqrt(sigma1 @ sigma2)`` for symmetric PSD matrices (symmetric eigh form)."""
    return trace_sqrt_from_factor(psd_factor(sigma1), sigma2)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = DEFAULT_EPS
) -> float:
    """Frechet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``; numpy in, float64 out.

    Same value as frechet_audio_distance's ``calculate_frechet_distance`` and fadtk's
    ``calc_frechet_distance``; ``eps`` is a diagonal ridge used only if the plain computation fails.
    """
    mu1, sigma1 = _as_gaussian(mu1, sigma1)
    mu2, sigma2 = _as_gaussian(mu2, sigma2)
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors have different lengths ({mu1.shape} vs {mu2.shape})")
    diff = mu1 - mu2
    tr_covmean = _robust_trace_sqrt(sigma1, sigma2, eps)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def _robust_trace_sqrt(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    try:
        t = trace_sqrt_product(sigma1, sigma2)
        if np.isfinite(t):
            return t
    except (np.linalg.LinAlgError, ValueError):
        pass
    log.warning("Frechet distance: eigendecomposition failed; adding %g to the diagonal of both covariances", eps)
    ridge = np.eye(sigma1.shape[0]) * eps
    return trace_sqrt_product(sigma1 + ridge, sigma2 + ridge)


@dataclass
class RefGaussian:
    """Reference statistics prepared for many distance evaluations (factor of ``sigma`` cached).

    mu: ``(D,)``; sigma: ``(D, D)``; n: frame count (0 when unknown).
    """

    mu: np.ndarray
    sigma: np.ndarray
    n: int = 0
    eps: float = DEFAULT_EPS

    def __post_init__(self) -> None:
        self.mu, self.sigma = _as_gaussian(self.mu, self.sigma)
        try:
            self.factor = psd_factor(self.sigma)
        except np.linalg.LinAlgError:
            log.warning("reference covariance: eigh failed; adding a %g ridge", self.eps)
            self.sigma = self.sigma + np.eye(self.dim) * self.eps
            self.factor = psd_factor(self.sigma)
        self.trace = float(np.trace(self.sigma))

    @classmethod
    def from_stats(cls, stats: GaussianStats, eps: float = DEFAULT_EPS) -> RefGaussian:
        return cls(stats.mu, stats.cov, stats.n, eps)

    @property
    def dim(self) -> int:
        return int(self.mu.size)

    def distance(self, mu: np.ndarray, sigma: np.ndarray) -> float:
        """``FD(N(mu, sigma), reference)``."""
        mu, sigma = _as_gaussian(mu, sigma)
        diff = mu - self.mu
        try:
            t = trace_sqrt_from_factor(self.factor, sigma)
            if not np.isfinite(t):
                raise ValueError("non-finite trace")
        except (np.linalg.LinAlgError, ValueError):
            t = _robust_trace_sqrt(self.sigma, sigma, self.eps)
        return float(diff @ diff + self.trace + np.trace(sigma) - 2.0 * t)

    def distance_frames(self, frames: np.ndarray) -> float:
        """Per-sample FAD: FD between the Gaussian of one clip's frames ``(T, D)`` and the reference.

        The clip covariance (``ddof=1``, rank <= T-1) enters only through the ``T x T`` Gram matrix
        ``(Y F)(Y F)^T`` (``Y`` = centred frames), whose non-zero eigenvalues are those of
        ``F^T cov F``: ``O(T D^2)`` instead of ``O(D^3)``. A single-frame clip is a point mass
        (zero covariance): ``||x - mu||^2 + tr(S_ref)``.
        """
        x = np.asarray(frames, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        mean = x.mean(axis=0)
        diff = mean - self.mu
        t = x.shape[0]
        if t < 2:
            return float(diff @ diff + self.trace)
        y = x - mean
        yf = y @ self.factor
        tr_sqrt = sum_sqrt_eigenvalues((yf @ yf.T) / (t - 1))
        tr_cov = float((y * y).sum() / (t - 1))
        return float(diff @ diff + self.trace + tr_cov - 2.0 * tr_sqrt)


def fad_from_stats(gen: GaussianStats, ref: GaussianStats, eps: float = DEFAULT_EPS) -> float:
    """FAD between two accumulated statistics (warns when either covariance is rank deficient)."""
    if gen.n:
        warn_if_rank_deficient(gen.n, gen.dim or 0, "generated set")
    if ref.n:
        warn_if_rank_deficient(ref.n, ref.dim or 0, "reference set")
    return frechet_distance(gen.mu, gen.cov, ref.mu, ref.cov, eps)


def per_sample_fad(clips: Iterable[np.ndarray], ref: RefGaussian) -> np.ndarray:
    """FAD of each clip's frames against the reference statistics (fadtk's ``score_individual``) -> ``(n,)``."""
    return np.array([ref.distance_frames(x) for x in clips], dtype=np.float64)


# -- bootstrap ---------------------------------------------------------------------------------
def fad_bootstrap(
    clips: Callable[[], Iterable[np.ndarray]],
    weights: np.ndarray,
    ref: RefGaussian,
    max_bytes: int = 512 * 2**20,
) -> np.ndarray:
    """FAD of each bootstrap replicate from per-clip sufficient statistics -> ``(B,)``.

    clips: callable returning a fresh iterator over the generated clips' frames ``(T_i, D)``
        (called once per group of replicates).
    weights: ``(B, n)`` clip multiplicities per replicate (:func:`bench.metrics.bootstrap.clip_weights`).
    max_bytes: memory budget for the ``D x D`` accumulators (replicates are processed in groups).
    """
    weights = np.asarray(weights, dtype=np.float64)
    n_boot, n_clips = weights.shape
    d = ref.dim
    per_mat = d * d * 8
    chunk = int(max(1, min(n_boot, max_bytes // (2 * per_mat))))
    group = int(max(1, min(n_clips, max_bytes // (2 * per_mat))))
    shift = ref.mu
    counts = np.zeros(n_clips)  # T_i, filled in the first pass
    sums = np.zeros((n_clips, d))  # s_i = sum_t (x_t - shift)
    out = np.full(n_boot, np.nan)
    for b0 in range(0, n_boot, chunk):
        first_pass = b0 == 0
        w = weights[b0 : b0 + chunk]
        acc = np.zeros((w.shape[0], d * d))  # sum_i w_bi M_i for the replicates of this group
        buf = np.empty((group, d * d))  # M_i of up to `group` clips, folded in with one GEMM
        cols: list[int] = []
        seen = 0
        for i, x in enumerate(clips()):
            seen += 1
            needed = bool(w[:, i].any())
            if not (needed or first_pass):
                continue
            y = np.asarray(x, dtype=np.float64).reshape(-1, d) - shift
            if first_pass:
                counts[i] = y.shape[0]
                sums[i] = y.sum(axis=0)
            if needed:
                buf[len(cols)] = (y.T @ y).ravel()
                cols.append(i)
                if len(cols) == group:
                    acc += w[:, cols] @ buf
                    cols.clear()
        if cols:
            acc += w[:, cols] @ buf[: len(cols)]
        if seen != n_clips:
            raise ValueError(f"clips() yielded {seen} clips, weights have {n_clips}")
        n = w @ counts
        s = w @ sums
        for j in range(w.shape[0]):
            if n[j] < 2:
                continue
            m = s[j] / n[j]
            cov = (acc[j].reshape(d, d) - n[j] * np.outer(m, m)) / (n[j] - 1.0)
            out[b0 + j] = ref.distance(m + shift, cov)
    return out


# -- FAD-infinity ------------------------------------------------------------------------------
@dataclass
class FADInfResult:
    """FAD-inf fit: ``score`` (intercept at 1/n = 0), ``slope``, ``r2`` and the ``(n, FAD)`` points."""

    score: float
    slope: float
    r2: float
    points: list[tuple[int, float]]


def fit_inf(ns: Sequence[int], values: Sequence[float]) -> FADInfResult:
    """Least-squares line ``value = intercept + slope / n`` (fadtk's ``score_inf`` regression) with R^2."""
    xs = 1.0 / np.asarray(ns, dtype=np.float64)
    ys = np.asarray(values, dtype=np.float64)
    slope, intercept = np.polyfit(xs, ys, 1)
    ss_tot = np.sum((ys - ys.mean()) ** 2)
    r2 = 1.0 - np.sum((ys - (slope * xs + intercept)) ** 2) / ss_tot if ss_tot > 0 else 1.0
    return FADInfResult(float(intercept), float(slope), float(r2), [(int(a), float(b)) for a, b in zip(ns, ys)])


def subset_fads(
    clips: Callable[[], Iterable[np.ndarray]], ref: RefGaussian, frame_counts: Sequence[np.ndarray]
) -> list[float]:
    """FAD of frame subsets given as per-frame multiplicities, in one streaming pass.

    frame_counts: one ``(F,)`` int array per subset; entry ``f`` = how often the ``f``-th frame of
        the concatenated clips is drawn (sampling with replacement, as fadtk's ``score_inf``).
    """
    stats = [GaussianStats(ref.dim, buffer_rows=2048) for _ in frame_counts]
    offset = 0
    for x in clips():
        x = np.asarray(x).reshape(-1, ref.dim)
        t = x.shape[0]
        for st, c in zip(stats, frame_counts):
            w = c[offset : offset + t]
            if w.any():
                st.update(x, w)
        offset += t
    return [ref.distance(st.mu, st.cov) for st in stats]


def fad_infinity(
    clips: Callable[[], Iterable[np.ndarray]],
    ref: RefGaussian,
    n_frames: int,
    steps: int = 25,
    min_n: int = 500,
    seed: int = 0,
) -> FADInfResult:
    """FAD-inf (Gui et al. 2024, as fadtk ``score_inf``): FAD of ``steps`` random frame subsets of sizes
    ``linspace(min_n, n_frames)`` drawn with replacement, extrapolated linearly in ``1/n`` to ``n -> inf``.

    ``min_n`` is lowered to ``n_frames // 2`` when the set is smaller than ``min_n`` frames.
    """
    if n_frames < 4:
        raise ValueError(f"FAD-inf needs at least 4 frames, have {n_frames}")
    lo = min(min_n, max(2, n_frames // 2))
    ns = [int(v) for v in np.linspace(lo, n_frames, steps)]
    rng = np.random.default_rng(seed)
    counts = [np.bincount(rng.integers(0, n_frames, size=n), minlength=n_frames).astype(np.int32) for n in ns]
    return fit_inf(ns, subset_fads(clips, ref, counts))


# ----------------------------------------------------------------------------------------------
# wrappers
# ----------------------------------------------------------------------------------------------
def _stats_from_set(es: EmbeddingSet) -> GaussianStats:
    if es.has_items:
        st = GaussianStats()
        for _, e in es.iter_emb():
            st.update(e)
        return st
    if es.stats is not None:
        n = es.stats.get("n")
        return GaussianStats.from_moments(es.stats["mu"], es.stats["sigma"], int(n) if n else None)
    raise MetricUnavailable(f"{es.name} has neither embeddings nor statistics")


def reference_gaussian(ref: EmbeddingSet, eps: float = DEFAULT_EPS) -> RefGaussian:
    """Reference statistics (streamed from embeddings, or given) with their factor, memoised per set."""

    def build() -> RefGaussian:
        st = _stats_from_set(ref)
        if st.n:
            warn_if_rank_deficient(st.n, st.dim or 0, f"reference set {ref.name}")
        return RefGaussian(st.mu, st.cov, st.n, eps)

    return refcache.cached("fad_ref", ref, {"eps": eps}, build)


def _clips(es: EmbeddingSet) -> Callable[[], Iterator[np.ndarray]]:
    return lambda: (e for _, e in es.iter_emb())


class FAD(BootstrapMetric):
    """Frechet Audio Distance over all frames (lower is better).

    Args:
        **bootstrap: n_bootstrap, ci, ci_method (:class:`~bench.metrics.base.BootstrapMetric`).
        per_sample: also score every clip against the reference (``per_item``, fadtk's per-song FAD;
            high values flag outliers).
        eps: ridge used only when the computation fails.
        bootstrap_max_bytes: memory budget of the bootstrap accumulators.

    extras: ``n_frames``, ``ref_n_frames`` (0 if unknown), ``rank_deficient`` (1 when either
    covariance has fewer than dim+1 frames).
    """

    name = "fad"
    lower_is_better = True

    default_ci_method = "shifted"
    fixed_params = {"frames": "all"}
    def __init__(
        self,
        per_sample: bool = True,
        eps: float = DEFAULT_EPS,
        bootstrap_max_bytes: int = 512 * 2**20,
        **bootstrap: Any,
    ):
        super().__init__(**bootstrap)
        self.per_sample = bool(per_sample)
        self.eps = float(eps)
        self.bootstrap_max_bytes = int(bootstrap_max_bytes)

    def compute(self, inp: MetricInput) -> MetricResult:
        assert inp.ref is not None
        if not inp.gen.has_items:
            raise MetricUnavailable("FAD needs generated embeddings")
        ref = reference_gaussian(inp.ref, self.eps)
        gen = GaussianStats(ref.dim)
        per_item: dict[str, float] | None = {} if self.per_sample else None
        for item_id, e in inp.gen.iter_emb():
            if e.shape[-1] != ref.dim:
                raise MetricUnavailable(f"embedding dim {e.shape[-1]} != reference statistics dim {ref.dim}")
            gen.update(e)
            if per_item is not None:
                per_item[item_id] = ref.distance_frames(e)
        if gen.n < 2:
            raise MetricUnavailable(f"FAD needs at least 2 generated frames, have {gen.n}")
        deficient = warn_if_rank_deficient(gen.n, ref.dim, f"generated set {inp.gen.name}")
        deficient |= rank_deficient(ref.n, ref.dim)
        value = ref.distance(gen.mu, gen.cov)
        res = MetricResult(
            value=value,
            n=len(inp.gen),
            extras={"n_frames": float(gen.n), "ref_n_frames": float(ref.n), "rank_deficient": float(deficient)},
            per_item=per_item,
        )
        if self.n_bootstrap > 0:
            w = self.clip_weights(inp.gen.ids, inp.seed)
            reps = fad_bootstrap(_clips(inp.gen), w, ref, self.bootstrap_max_bytes)
            self.attach_bootstrap(res, reps)
        return res


class FADInf(Metric):
    """FAD-infinity (Gui et al. 2024): FAD extrapolated to infinitely many frames (lower is better).

    value = intercept of FAD vs 1/n; extras ``slope``, ``r2``, ``n_frames``. Frame subsets are drawn
    with replacement from all generated frames with ``seed + inp.seed``. No bootstrap: every
    replicate would need ``steps`` FADs on fresh subsets (the regression's R^2 reports the fit quality).
    """

    name = "fad_inf"
    lower_is_better = True

    def __init__(self, steps: int = 25, min_n: int = 500, seed: int = 0, eps: float = DEFAULT_EPS):
        self.steps = int(steps)
        self.min_n = int(min_n)
        self.seed = int(seed)
        self.eps = float(eps)

    def compute(self, inp: MetricInput) -> MetricResult:
        assert inp.ref is not None
        if not inp.gen.has_items:
            raise MetricUnavailable("FAD-inf needs generated embeddings")
        ref = reference_gaussian(inp.ref, self.eps)
        n_frames = sum(int(e.shape[0]) for _, e in inp.gen.iter_emb())
        if n_frames < 4:
            raise MetricUnavailable(f"FAD-inf needs at least 4 generated frames, have {n_frames}")
        fit = fad_infinity(_clips(inp.gen), ref, n_frames, self.steps, self.min_n, self.seed + inp.seed)
        res = MetricResult(
            value=fit.score,
            n=len(inp.gen),
            extras={"slope": fit.slope, "r2": fit.r2, "n_frames": float(n_frames)},
        )
        res.curve = [(float(n), float(v)) for n, v in fit.points]  # (n, FAD) points -> curves.csv
        return res
