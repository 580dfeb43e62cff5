"""Kernel Audio Distance (KAD; Chung et al. 2025, kadtk): unbiased MMD^2 with a characteristic kernel.

For reference embeddings ``x`` (m rows) and generated embeddings ``y`` (n rows)::

    MMD^2_u = 1/(m(m-1)) sum_{i!=j} k(x_i, x_j) + 1/(n(n-1)) sum_{i!=j} k(y_i, y_j) - 2/(mn) sum_{i,j} k(x_i, y_j)
    KAD     = 100 * MMD^2_u                          (kadtk's SCALE_FACTOR)

with ``k(a, b) = exp(-gamma ||a - b||^2)``, ``gamma = 1 / (2 bandwidth^2 + eps)`` (also kadtk's
inverse-quadratic ``iq`` and inverse-multiquadric ``imq`` kernels). The bandwidth is the
median pairwise Euclidean distance of the *reference* set (median heuristic, lower median as
``torch.median``), fixed per reference set so every model is scored with the same kernel; it
is reported in ``extras["bandwidth"]``. (kadtk's ``calc_kernel_audio_distance`` takes the
median of its second argument, the evaluation set, when no bandwidth is passed; the MMD itself
is symmetric, so values agree given the same bandwidth.) The median is exact up to
``max_pairs`` pairs (10M, ~4.5k rows), beyond that exact over a seeded random subset of rows.
The estimator is unbiased and can be slightly negative when the sets match.

Rows: one mean embedding per clip by default (``pooling="clip"``); kadtk uses every frame
(``pooling="frames"``).

Kernel matrices are never materialised: sums are accumulated over row blocks
(``block x n`` at a time, torch, on GPU when available), so memory stays bounded at 10k x 10k
and beyond. Bootstrap replicates are weighted sums ``w^T K w`` over the same blocks (pairs of
copies of one clip are left out, see :func:`kad_replicates`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from bench.metrics import refcache
from bench.metrics.base import BootstrapMetric, MetricInput, MetricResult, MetricUnavailable

log = logging.getLogger(__name__)

SCALE_FACTOR = 100.0
KERNELS = ("gaussian", "iq", "imq")


def _device(device: str | None) -> str:
    if device in (None, "", "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _dtype(dtype: str):
    import torch

    return {"float64": torch.float64, "float32": torch.float32}[dtype]


def gamma_from_bandwidth(bandwidth: float, eps: float = 1e-8) -> float:
    """kadtk's ``gamma = 1 / (2 bandwidth^2 + eps)``."""
    return 1.0 / (2.0 * float(bandwidth) ** 2 + eps)


def _apply_kernel_(d2, gamma: float, kernel: str):
    """Kernel of squared distances, in place on ``d2`` (a torch tensor); returns it."""
    if kernel == "gaussian":
        return d2.mul_(-gamma).exp_()
    if kernel == "iq":
        return d2.mul_(gamma).add_(1.0).reciprocal_()
    if kernel == "imq":
        return d2.mul_(gamma).add_(1.0).rsqrt_()
    raise ValueError(f"unknown kernel {kernel!r}; valid: {KERNELS}")


def median_pairwise_distance(x: np.ndarray, max_pairs: int = 10_000_000, seed: int = 0, block: int = 1024) -> float:
    """Median Euclidean distance over pairs ``i < j`` of ``x (n, D)`` (lower median, as ``torch.median``).

    Exact when ``n(n-1)/2 <= max_pairs``. Otherwise exact over all pairs of ``s`` rows drawn without
    replacement with ``default_rng(seed)`` (deterministic), ``s`` the largest count with
    ``s(s-1)/2 <= max_pairs``. Memory: ``max_pairs`` float64 plus one ``block x s`` block.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if n < 2:
        raise ValueError("median pairwise distance needs at least 2 points")
    if n * (n - 1) // 2 > max_pairs:
        s = int((1 + np.sqrt(1 + 8 * max_pairs)) // 2)
        while s * (s - 1) // 2 > max_pairs:
            s -= 1
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max(s, 2), replace=False))
        x, n = x[rows], len(rows)
    sq = (x * x).sum(1)
    d = np.empty(n * (n - 1) // 2)
    pos = 0
    for i0 in range(0, n - 1, block):
        i1 = min(n, i0 + block)
        d2 = sq[i0:i1, None] + sq[None, i0:] - 2.0 * (x[i0:i1] @ x[i0:].T)
        for r in range(i1 - i0):  # row i0 + r, columns > i0 + r
            seg = d2[r, r + 1 :]
            d[pos : pos + seg.size] = seg
            pos += seg.size
    np.sqrt(np.clip(d, 0.0, None, out=d), out=d)
    k = (d.size - 1) // 2
    return float(np.partition(d, k)[k])


def kernel_sums(
    a: np.ndarray,
    b: np.ndarray | None,
    gamma: float,
    kernel: str = "gaussian",
    wa: np.ndarray | None = None,
    wb: np.ndarray | None = None,
    block: int = 2048,
    device: str = "auto",
    dtype: str = "float64",
) -> np.ndarray:
    """Weighted kernel sums ``s[r] = sum_ij wa[r, i] k(a_i, b_j) wb[r, j]`` -> ``(R,)`` float64, blockwise.

    ``b=None`` means ``b = a`` and ``wb = wa`` (symmetric: only blocks on/above the diagonal are
    evaluated, and ``k(a_i, a_i)`` is set to exactly ``k(0) = 1``). Weights default to ones (R = 1).
    Memory: one ``block x len(b)`` kernel block plus ``R x len(b)``.
    """
    import torch

    dev, dt = _device(device), _dtype(dtype)
    same = b is None
    at = torch.as_tensor(np.asarray(a), device=dev).to(dt)
    bt = at if same else torch.as_tensor(np.asarray(b), device=dev).to(dt)
    na = at.shape[0]
    wa_t = None if wa is None else torch.as_tensor(np.atleast_2d(wa), device=dev).to(dt)
    if same:
        wb_t = wa_t
    else:
        wb_t = None if wb is None else torch.as_tensor(np.atleast_2d(wb), device=dev).to(dt)
    n_rep = max(1 if wa_t is None else wa_t.shape[0], 1 if wb_t is None else wb_t.shape[0])
    sqa = (at * at).sum(1)
    sqb = sqa if same else (bt * bt).sum(1)
    out = torch.zeros(n_rep, dtype=torch.float64, device=dev)
    with torch.no_grad():
        for i0 in range(0, na, block):
            i1 = min(na, i0 + block)
            bi = i1 - i0
            j0 = i0 if same else 0
            # d2 = |a|^2 + |b|^2 - 2 a b^T, fused and in place (one block x len(b) buffer)
            k = torch.addmm(sqb[None, j0:], at[i0:i1], bt[j0:].T, beta=1.0, alpha=-2.0)
            k.add_(sqa[i0:i1, None]).clamp_min_(0.0)
            _apply_kernel_(k, gamma, kernel)
            if same:
                k.diagonal()[:] = 1.0  # k(a_i, a_i) = k(0) exactly
            if wa_t is None and wb_t is None:
                total = k.sum(dtype=torch.float64)
                if same:  # blocks right of the diagonal block stand for their mirror images too
                    total = 2.0 * total - k[:, :bi].sum(dtype=torch.float64)
                out += total
                continue
            if same:
                k[:, bi:] *= 2.0
            if wb_t is None:
                out += (wa_t[:, i0:i1] @ k.sum(1)).to(torch.float64)
            elif wa_t is None:
                out += (k.sum(0) @ wb_t[:, j0:].T).to(torch.float64)
            else:
                out += ((wa_t[:, i0:i1] @ k) * wb_t[:, j0:]).sum(1, dtype=torch.float64)
    return out.cpu().numpy()


def mmd2_from_sums(sxx: float, syy, sxy, m: float, n) -> np.ndarray | float:
    """Unbiased MMD^2 from full kernel sums (diagonals included, ``k(0)=1``) and set sizes."""
    return (sxx - m) / (m * (m - 1.0)) + (syy - n) / (n * (n - 1.0)) - 2.0 * sxy / (m * n)


def mmd2_unbiased(
    x: np.ndarray,
    y: np.ndarray,
    bandwidth: float,
    kernel: str = "gaussian",
    eps: float = 1e-8,
    block: int = 2048,
    device: str = "auto",
    dtype: str = "float64",
) -> float:
    """Unbiased MMD^2 between ``x (m, D)`` and ``y (n, D)`` (no scaling)."""
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"unbiased MMD needs at least 2 samples per set, got {m} and {n}")
    g = gamma_from_bandwidth(bandwidth, eps)
    kw = {"kernel": kernel, "block": block, "device": device, "dtype": dtype}
    sxx = kernel_sums(x, None, g, **kw)[0]
    syy = kernel_sums(y, None, g, **kw)[0]
    sxy = kernel_sums(x, y, g, **kw)[0]
    return float(mmd2_from_sums(sxx, syy, sxy, m, n))


def kernel_audio_distance(
    ref: np.ndarray,
    gen: np.ndarray,
    bandwidth: float | None = None,
    kernel: str = "gaussian",
    scale: float = SCALE_FACTOR,
    **kw,
) -> float:
    """KAD = ``scale * MMD^2_u(ref, gen)``; bandwidth defaults to the median heuristic on ``ref``."""
    if bandwidth is None:
        bandwidth = median_pairwise_distance(ref)
    return scale * mmd2_unbiased(ref, gen, bandwidth, kernel, **kw)


def kad_replicates(
    ref: np.ndarray,
    gen: np.ndarray,
    weights: np.ndarray,
    bandwidth: float,
    kernel: str = "gaussian",
    scale: float = SCALE_FACTOR,
    eps: float = 1e-8,
    ref_sum: float | None = None,
    block: int = 2048,
    device: str = "auto",
    dtype: str = "float64",
) -> np.ndarray:
    """KAD of bootstrap replicates: generated rows weighted by ``weights (B, n)`` (multiplicities), ref fixed.

    A resample holds copies of the same row; pairs of two copies of one row would enter the
    generated-set term with ``k = 1`` and bias every replicate upwards by about
    ``scale * (1 - mean k) / n``. They are excluded, as the diagonal is in the full-set estimator:
    ``syy = (w^T K w - sum w^2) / (m^2 - sum w^2)`` with ``m = sum w`` (identical to
    :func:`kernel_audio_distance` when all weights are 0 or 1). ``ref_sum``: precomputed
    ``sum_ij k(ref_i, ref_j)``.
    """
    g = gamma_from_bandwidth(bandwidth, eps)
    w = np.asarray(weights, dtype=np.float64)
    kw = {"kernel": kernel, "block": block, "device": device, "dtype": dtype}
    n_ref = float(len(ref))
    sxx = kernel_sums(ref, None, g, **kw)[0] if ref_sum is None else ref_sum
    syy = kernel_sums(gen, None, g, wa=w, **kw)
    sxy = kernel_sums(ref, gen, g, wb=w, **kw)
    m = w.sum(1)
    sq = (w * w).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        kxx = (sxx - n_ref) / (n_ref * (n_ref - 1.0))
        kyy = (syy - sq) / (m * m - sq)
        return scale * (kxx + kyy - 2.0 * sxy / (n_ref * m))


# ----------------------------------------------------------------------------------------------
# wrapper
# ----------------------------------------------------------------------------------------------
def _embeddings(es, pooling: str) -> tuple[np.ndarray, np.ndarray]:
    """``(rows (N, D) float64, owner (N,) clip index)`` for clip means or all frames."""
    if pooling == "clip":
        x = es.clip_embeddings()
        return x, np.arange(len(x))
    if pooling == "frames":
        frames, owner = [], []
        for i, (_, e) in enumerate(es.iter_emb()):
            frames.append(np.asarray(e, dtype=np.float64))
            owner.append(np.full(len(e), i))
        return np.concatenate(frames), np.concatenate(owner)
    raise ValueError(f"pooling must be 'clip' or 'frames', got {pooling!r}")


class KAD(BootstrapMetric):
    """Kernel Audio Distance (lower is better; x100 as kadtk).

    Args:
        pooling: "clip" (one mean embedding per clip; default) or "frames" (every frame, as kadtk).
        kernel: "gaussian" (default), "iq" or "imq".
        bandwidth: fixed kernel bandwidth; None = median pairwise distance of the reference set
            (computed once per reference set, reported in ``extras["bandwidth"]``).
        max_pairs: pairs used by the median heuristic (exact below this many pairs).
        **bootstrap: n_bootstrap, ci, ci_method (:class:`~bench.metrics.base.BootstrapMetric`).
        device: "auto" / "cpu" / "cuda"; dtype: "float64" (default) or "float32"; block: rows per block.
    """

    name = "kad"
    lower_is_better = True

    def __init__(
        self,
        pooling: str = "clip",
        kernel: str = "gaussian",
        bandwidth: float | None = None,
        max_pairs: int = 10_000_000,
        scale: float = SCALE_FACTOR,
        eps: float = 1e-8,
        device: str = "auto",
        dtype: str = "float64",
        block: int = 2048,
        **bootstrap: Any,
    ):
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; valid: {KERNELS}")
        if pooling not in ("clip", "frames"):
            raise ValueError(f"pooling must be 'clip' or 'frames', got {pooling!r}")
        self.pooling = pooling
        self.kernel = kernel
        self.bandwidth = None if bandwidth is None else float(bandwidth)
        self.max_pairs = int(max_pairs)
        self.scale = float(scale)
        self.eps = float(eps)
        super().__init__(**bootstrap)
        self.device = device
        self.dtype = dtype
        self.block = int(block)

    def _kw(self) -> dict:
        return {"kernel": self.kernel, "block": self.block, "device": self.device, "dtype": self.dtype}

    def compute(self, inp: MetricInput) -> MetricResult:
        ref_set = inp.ref
        assert ref_set is not None
        if not ref_set.has_items:
            raise MetricUnavailable("KAD needs reference embeddings, not statistics")
        ref = refcache.cached("emb", ref_set, {"pooling": self.pooling}, lambda: _embeddings(ref_set, self.pooling)[0])
        gen, owner = _embeddings(inp.gen, self.pooling)
        if len(ref) < 2 or len(gen) < 2:
            raise MetricUnavailable(f"KAD needs at least 2 reference and 2 generated rows ({len(ref)}, {len(gen)})")
        if ref.shape[1] != gen.shape[1]:
            raise MetricUnavailable(f"embedding dims differ: reference {ref.shape[1]}, generated {gen.shape[1]}")
        bw = self.bandwidth
        if bw is None:
            bw = refcache.cached(
                "kad_bw",
                ref_set,
                {"pooling": self.pooling, "max_pairs": self.max_pairs},
                lambda: median_pairwise_distance(ref, self.max_pairs),
            )
        g = gamma_from_bandwidth(bw, self.eps)
        sxx = refcache.cached(
            "kad_sxx",
            ref_set,
            {"pooling": self.pooling, "gamma": g, "kernel": self.kernel, "dtype": self.dtype},
            lambda: float(kernel_sums(ref, None, g, **self._kw())[0]),
        )
        syy = kernel_sums(gen, None, g, **self._kw())[0]
        sxy = kernel_sums(ref, gen, g, **self._kw())[0]
        value = self.scale * float(mmd2_from_sums(sxx, syy, sxy, float(len(ref)), float(len(gen))))
        res = MetricResult(
            value=value,
            n=len(inp.gen),
            extras={"bandwidth": float(bw), "n_rows": float(len(gen)), "ref_n_rows": float(len(ref))},
        )
        if self.n_bootstrap > 0:
            w = self.clip_weights(inp.gen.ids, inp.seed)[:, owner]
            reps = kad_replicates(ref, gen, w, bw, scale=self.scale, eps=self.eps, ref_sum=sxx, **self._kw())
            self.attach_bootstrap(res, reps)
        return res
