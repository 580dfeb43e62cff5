"""Streaming Gaussian statistics (mean, covariance) of embedding frames, in float64.

:class:`GaussianStats` accumulates ``n``, the mean and the centred scatter matrix
``M2 = sum_i w_i (x_i - mean)(x_i - mean)^T`` batch by batch, merging batches with the
pairwise formula of Chan, Golub & LeVeque (1979); a million frames never need to be in
memory at once (frames are buffered up to ``buffer_rows`` rows, then folded in with one
BLAS call). ``cov = M2 / (n - 1)`` equals ``np.cov(frames, rowvar=False)`` (unbiased), the
convention of frechet_audio_distance and fadtk. Optional frequency weights make ``cov`` equal
to ``np.cov`` of the frames repeated ``w_i`` times (used by FAD-inf subsampling).

Statistics files (``.npz``) hold ``mu``, ``cov`` (``sigma`` accepted) and ``n``, or fadtk's
layout ``<model>.mu`` / ``<model>.cov`` (e.g. fadtk's ``stats/fma_pop.npz``), or a fadtk
cache folder with ``mu.npy`` / ``cov.npy``.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from bench.cache import atomic_write_bytes
from bench.resources import installed_package_dirs

log = logging.getLogger(__name__)


class GaussianStats:
    """Streaming mean / covariance accumulator.

    Args:
        dim: embedding size ``D`` (inferred from the first update when None).
        buffer_rows: frames buffered before a batch update (memory ``buffer_rows * D`` floats).
    """

    def __init__(self, dim: int | None = None, buffer_rows: int = 4096):
        self.dim = dim
        self.buffer_rows = int(buffer_rows)
        self._n = 0.0
        self._mean: np.ndarray | None = None if dim is None else np.zeros(dim)
        self._m2: np.ndarray | None = None if dim is None else np.zeros((dim, dim))
        self._buf: list[np.ndarray] = []
        self._wbuf: list[np.ndarray | None] = []
        self._buf_rows = 0
        self._fixed_cov: np.ndarray | None = None  # statistics loaded without a frame count

    # -- construction ----------------------------------------------------------------
    @classmethod
    def from_frames(cls, frames: np.ndarray, weights: np.ndarray | None = None) -> GaussianStats:
        s = cls(dim=np.asarray(frames).shape[-1])
        s.update(frames, weights)
        return s

    @classmethod
    def from_moments(cls, mu: np.ndarray, cov: np.ndarray, n: int | None = None) -> GaussianStats:
        """Statistics given as ``mu (D,)``, ``cov (D, D)`` and frame count ``n`` (None: unknown, no merging)."""
        mu = np.asarray(mu, dtype=np.float64).reshape(-1)
        cov = np.asarray(cov, dtype=np.float64)
        if cov.shape != (mu.size, mu.size):
            raise ValueError(f"cov shape {cov.shape} does not match mu {mu.shape}")
        s = cls(dim=mu.size)
        s._mean = mu.copy()
        if n is None or n <= 0:
            s._fixed_cov = cov.copy()
            s._n = 0.0
        else:
            s._n = float(n)
            s._m2 = cov * (n - 1) if n > 1 else np.zeros_like(cov)
        return s

    # -- accumulation ------------------------------------------------------------------
    def update(self, frames: np.ndarray, weights: np.ndarray | None = None) -> GaussianStats:
        """Add frames ``(T, D)`` (or ``(D,)``) with optional non-negative frequency weights ``(T,)``."""
        if self._fixed_cov is not None:
            raise ValueError("statistics loaded without a frame count cannot be updated")
        x = np.asarray(frames)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2:
            raise ValueError(f"frames must be (T, D), got shape {x.shape}")
        if self.dim is None:
            self.dim = x.shape[1]
            self._mean = np.zeros(self.dim)
            self._m2 = np.zeros((self.dim, self.dim))
        if x.shape[1] != self.dim:
            raise ValueError(f"frame dim {x.shape[1]} != {self.dim}")
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64).reshape(-1)
            if w.shape[0] != x.shape[0] or np.any(w < 0):
                raise ValueError("weights must be (T,) and non-negative")
            keep = w > 0
            if not keep.all():
                x, w = x[keep], w[keep]
        else:
            w = None
        if x.shape[0] == 0:
            return self
        self._buf.append(x)
        self._wbuf.append(w)
        self._buf_rows += x.shape[0]
        if self._buf_rows >= self.buffer_rows:
            self._flush()
        return self

    def _flush(self) -> None:
        if not self._buf:
            return
        x = np.concatenate(self._buf, axis=0).astype(np.float64, copy=False)
        if any(w is not None for w in self._wbuf):
            w = np.concatenate([np.ones(b.shape[0]) if wb is None else wb for b, wb in zip(self._buf, self._wbuf)])
        else:
            w = None
        self._buf, self._wbuf, self._buf_rows = [], [], 0
        if w is None:
            nb = float(x.shape[0])
            mb = x.mean(axis=0)
            xc = x - mb
            m2b = xc.T @ xc
        else:
            nb = float(w.sum())
            mb = (w @ x) / nb
            xc = x - mb
            m2b = (xc * w[:, None]).T @ xc
        self._combine(nb, mb, m2b)

    def _combine(self, nb: float, mb: np.ndarray, m2b: np.ndarray) -> None:
        """Chan et al. pairwise update: fold a batch ``(n_b, mean_b, M2_b)`` into the running moments."""
        assert self._mean is not None and self._m2 is not None
        na = self._n
        n = na + nb
        if n == 0:
            return
        delta = mb - self._mean
        self._mean = self._mean + delta * (nb / n)
        self._m2 = self._m2 + m2b + np.outer(delta, delta) * (na * nb / n)
        self._n = n

    def merge(self, other: GaussianStats) -> GaussianStats:
        """Fold another accumulator (e.g. a shard computed elsewhere) into this one; returns self."""
        if self._fixed_cov is not None or other._fixed_cov is not None:
            raise ValueError("statistics loaded without a frame count cannot be merged")
        other._flush()
        self._flush()
        if other._n == 0:
            return self
        if self.dim is None:
            self.dim = other.dim
            self._mean = np.zeros(other.dim)
            self._m2 = np.zeros((other.dim, other.dim))
        if other.dim != self.dim:
            raise ValueError(f"cannot merge dim {other.dim} into {self.dim}")
        self._combine(other._n, other._mean, other._m2)
        return self

    # -- results -----------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of frames (sum of weights); 0 when unknown (loaded statistics)."""
        self._flush()
        return int(round(self._n))

    @property
    def mu(self) -> np.ndarray:
        """Mean ``(D,)`` float64."""
        self._flush()
        if self._mean is None:
            raise ValueError("no frames accumulated")
        return self._mean.copy()

    @property
    def cov(self) -> np.ndarray:
        """Unbiased covariance ``(D, D)`` float64 (``ddof=1``, as ``np.cov``)."""
        self._flush()
        if self._fixed_cov is not None:
            return self._fixed_cov.copy()
        if self._m2 is None or self._n == 0:
            raise ValueError("no frames accumulated")
        if self._n < 2:
            raise ValueError(f"covariance needs at least 2 frames, have {self._n:g}")
        return self._m2 / (self._n - 1.0)

    sigma = cov

    def to_dict(self) -> dict[str, Any]:
        """``{"mu", "sigma", "n"}`` (the layout of ``EmbeddingSet.stats``)."""
        return {"mu": self.mu, "sigma": self.cov, "n": self.n}

    # -- files ---------------------------------------------------------------------------
    def save_npz(self, path: str | Path, key: str | None = None) -> None:
        """Write ``mu``/``cov``/``n`` (or ``<key>.mu``/``<key>.cov``/``<key>.n``, fadtk layout).

        With ``key``, other models' entries already in the file are kept. Written atomically.
        """
        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        if key is not None and path.exists():
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files if not k.startswith(f"{key}.")}
        prefix = "" if key is None else f"{key}."
        arrays[f"{prefix}mu"] = self.mu
        arrays[f"{prefix}cov"] = self.cov
        arrays[f"{prefix}n"] = np.asarray(self.n, dtype=np.int64)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load_npz(cls, path: str | Path, key: str | None = None) -> GaussianStats:
        """Read statistics saved by :meth:`save_npz`, by fadtk (``<model>.mu``/``<model>.cov``),
        or a fadtk cache folder holding ``mu.npy`` and ``cov.npy``.

        ``key`` picks the model in a multi-model file; it may be omitted when the file holds one.
        """
        path = Path(path)
        if path.is_dir():
            return cls.from_moments(np.load(path / "mu.npy"), np.load(path / "cov.npy"), None)
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            if key is None and "mu" in files:
                cov_key = "cov" if "cov" in files else "sigma"
                n = int(z["n"]) if "n" in files else None
                return cls.from_moments(z["mu"], z[cov_key], n)
            models = sorted(f[: -len(".mu")] for f in files if f.endswith(".mu"))
            if key is None:
                if len(models) != 1:
                    raise ValueError(f"{path} holds statistics for several models; pass key= one of {models}")
                key = models[0]
            if f"{key}.mu" not in files:
                raise KeyError(f"{path} has no statistics for {key!r}; available: {models}")
            cov_key = f"{key}.cov" if f"{key}.cov" in files else f"{key}.sigma"
            n = int(z[f"{key}.n"]) if f"{key}.n" in files else None
            return cls.from_moments(z[f"{key}.mu"], z[cov_key], n)


def stats_keys(path: str | Path) -> list[str]:
    """Model keys of a multi-model statistics file (``[]`` for a single-model file)."""
    with np.load(path, allow_pickle=False) as z:
        return sorted(f[: -len(".mu")] for f in z.files if f.endswith(".mu"))


def fadtk_stats_path(name: str = "fma_pop") -> Path | None:
    """Path of a statistics file shipped in the fadtk package (``fadtk/stats/<name>.npz``), if installed."""
    for loc in installed_package_dirs("fadtk"):
        p = loc / "stats" / f"{name}.npz"
        if p.is_file():
            return p
    return None


def rank_deficient(n: int, dim: int) -> bool:
    """True when ``n`` frames cannot give a full-rank ``dim x dim`` covariance (``n - 1 < dim``)."""
    return n > 0 and n - 1 < dim


def warn_if_rank_deficient(n: int, dim: int, what: str) -> bool:
    """Log a warning when the covariance of ``what`` is rank deficient; returns the flag."""
    if rank_deficient(n, dim):
        log.warning(
            "%s: %d frames for a %d-dim covariance (n - 1 < dim): the covariance is rank deficient and "
            "the Frechet distance is biased upwards; use more clips/frames or a smaller embedding",
            what,
            n,
            dim,
        )
        return True
    return False
