"""resampy's ``kaiser_best`` resampler in polyphase form: the same filter taps, a fraction of the cost.

resampy (0.4.x) computes every output sample ``t`` with a numba loop: the input time
``t_out = t * (sr_in / sr_out)`` is split into an integer sample ``n`` and a fraction, and the two
wings of the windowed-sinc table (``kaiser_best``: 50 zero crossings, 2**13 points per crossing,
scaled by ``sr_out / sr_in`` when downsampling) are read at ``offset + i * index_step`` with linear
interpolation between table points. For a rational ratio ``L / M`` (reduced ``sr_out / sr_in``) the
fraction takes only ``L`` values, so the weights form ``L`` fixed FIR filters (phases). Here each
phase's weights are computed with resampy's own formula (its table, ``index_step``, wing lengths
and interpolation), and the phase is applied to all its outputs at once as a matrix-vector product
over a strided view of the zero-padded input (resampy drops taps outside the signal, which is the
same as zero padding). Outputs where resampy's floating-point ``t_out`` lands on a different
integer sample than exact arithmetic (``t_out`` just below an integer) are recomputed with
resampy's per-output parameters, so every output uses the same taps as resampy's.

What differs is only floating-point rounding: the order of the float64 sums (BLAS dot products or
FFT correlation instead of a sequential loop) and, for ratios whose ``sr_in / sr_out`` is not exact in
binary, the ``eta`` interpolation factor, which resampy derives from ``t_out`` with a rounding error
that grows with ``t``. Measured against ``resampy.resample(x.astype(float64), filter="kaiser_best")``
on 10-s music and noise: integer downsampling (48k -> 16k/24k, 32k -> 16k) gives float64 differences
below 3e-15 and the same float32 values; 44.1k/22.05k -> 16k and 16k/44.1k -> 48k differ by at most
1.2e-7 (a few float32 ulps on 1 in 1000-8000 samples). The stated tolerance, checked in
tests/throughput/test_polyphase.py, is :data:`TOLERANCE` = 1e-6.

Cost: phases whose strided input rows do not overlap (``taps <= M``) are BLAS matrix-vector
products on a view; otherwise each phase is split into ``M`` decimated streams correlated by FFT
(scipy ``oaconvolve``). 48 kHz -> 16 kHz, 10 s: about 25 ms against resampy's 140-220 ms here.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from bench.resources import installed_package_dirs

#: tolerance stated in the docs and checked by the tests: max |polyphase - resampy| (float32 output)
TOLERANCE = 1e-6


@lru_cache(maxsize=1)
def kaiser_best_table() -> tuple[np.ndarray, int]:
    """resampy's ``kaiser_best`` half-window table (float64, 50 * 8192 + 1 points) and points per zero crossing.

    Read from resampy's data file without importing resampy (which imports numba).
    """
    dirs = installed_package_dirs("resampy")
    if not dirs:
        raise ImportError("resampy is not installed (pip install resampy); its kaiser_best table is needed")
    path = dirs[0] / "data" / "kaiser_best.npz"
    with np.load(path) as z:
        win = np.asarray(z["half_window"], dtype=np.float64)
        num_table = int(z["precision"])  # resampy passes this as num_table
    return win, num_table


class _Wings:
    """resampy's per-output weight computation for ``sr_in -> sr_out``, vectorised over outputs (float64)."""

    def __init__(self, sr_in: int, sr_out: int):
        win, self.num_table = kaiser_best_table()
        g = math.gcd(sr_in, sr_out)
        self.L, self.M = sr_out // g, sr_in // g
        self.ratio = float(sr_out) / sr_in
        if self.ratio < 1:
            win = self.ratio * win
        self.win = win
        self.delta = np.diff(win, append=win[-1])
        self.scale = min(1.0, self.ratio)
        self.index_step = int(self.scale * self.num_table)
        self.time_increment = 1.0 / self.ratio

    def params(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """resampy's input sample ``n`` and fraction for outputs ``t``."""
        t_out = t * self.time_increment
        n = t_out.astype(np.int64)
        return n, self.scale * (t_out - n)

    def offsets(self, frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Table offsets of the left and right wing."""
        return (frac * self.num_table).astype(np.int64), ((self.scale - frac) * self.num_table).astype(np.int64)

    def wing(self, frac: np.ndarray) -> np.ndarray:
        """Weights of one wing ``(outputs, max taps)``, zero beyond each output's wing length."""
        nwin = self.win.shape[0]
        index_frac = frac * self.num_table
        offset = index_frac.astype(np.int64)
        eta = index_frac - offset
        length = (nwin - offset) // self.index_step
        k = np.arange(int(length.max()))
        valid = k[None, :] < length[:, None]
        idx = np.where(valid, offset[:, None] + k[None, :] * self.index_step, 0)
        w = self.win[idx] + eta[:, None] * self.delta[idx]
        return np.where(valid, w, 0.0)

    def filters(self, frac: np.ndarray) -> tuple[np.ndarray, int]:
        """Whole filters ``(outputs, K)``: column ``c`` multiplies ``x[n - left + c]``; and ``left``."""
        lw, rw = self.wing(frac), self.wing(self.scale - frac)
        return np.concatenate([lw[:, ::-1], rw], axis=1), lw.shape[1] - 1


@lru_cache(maxsize=16)
def _phases(sr_in: int, sr_out: int) -> tuple[_Wings, np.ndarray, np.ndarray, int]:
    """The ``L`` phase filters ``(L, K)``, their input samples ``n0`` for the first period, and ``left``."""
    w = _Wings(sr_in, sr_out)
    n0, frac = w.params(np.arange(w.L))  # resampy's own values for the first period
    filters, left = w.filters(frac)
    filters.setflags(write=False)
    return w, filters, n0, left


def resample_kaiser_best(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """resampy ``kaiser_best`` resampling of ``x`` ``(samples,)`` or ``(samples, channels)`` along axis 0.

    Returns float64 of resampy's output length ``int(n * sr_out / sr_in)``.
    """
    sr_in, sr_out = int(sr_in), int(sr_out)
    x = np.asarray(x, dtype=np.float64)
    if sr_in == sr_out:
        return x.copy()
    if x.ndim == 2:
        return np.stack([resample_kaiser_best(x[:, c], sr_in, sr_out) for c in range(x.shape[1])], axis=1)
    n_in = x.shape[0]
    n_out = int(n_in * float(sr_out) / float(sr_in))
    if n_out < 1:
        raise ValueError(f"input length {n_in} is too small to resample from {sr_in} to {sr_out} Hz")
    w, filters, n0, left = _phases(sr_in, sr_out)
    L, M, K = w.L, w.M, filters.shape[1]
    j_max = -(-n_out // L)  # outputs per phase, rounded up
    xp = np.zeros(max(int(n0.max()) + M * (j_max - 1) + K, left + n_in), dtype=np.float64)
    xp[left : left + n_in] = x
    y = np.empty(j_max * L, dtype=np.float64)
    if K <= M:  # rows of the strided view do not overlap: BLAS reads it in place
        s = xp.strides[0]
        for p in range(L):
            frames = np.lib.stride_tricks.as_strided(xp[int(n0[p]) :], shape=(j_max, K), strides=(M * s, s))
            y[p::L] = frames @ filters[p]
    else:  # overlapping rows (small M): split each phase into M decimated streams, FFT-correlate each
        from scipy.signal import oaconvolve

        for p in range(L):
            acc = np.zeros(j_max, dtype=np.float64)
            for r in range(M):
                g = filters[p, r::M]
                start = int(n0[p]) + r
                stream = xp[start : start + M * (j_max + g.shape[0] - 1) : M]
                acc += oaconvolve(stream, g[::-1], mode="valid")
            y[p::L] = acc
    y = y[:n_out]
    _fix_rounding(w, y, xp, left, n_in)
    return y


def _fix_rounding(w: _Wings, y: np.ndarray, xp: np.ndarray, left: int, n_in: int) -> None:
    """Recompute, with resampy's per-output parameters, the outputs whose resampy input sample or wing
    offsets differ from their phase's (``t_out`` rounded across an integer or a table point)."""
    t = np.arange(y.shape[0], dtype=np.int64)
    n, frac = w.params(t)
    p = t % w.L
    n_ref, frac_ref = w.params(p)
    ol, orr = w.offsets(frac)
    ol_ref, or_ref = w.offsets(frac_ref)
    bad = np.flatnonzero((n != n_ref + (t // w.L) * w.M) | (ol != ol_ref) | (orr != or_ref))
    if bad.size == 0:
        return
    filt, left_b = w.filters(frac[bad])
    for r, tb in enumerate(bad):
        idx = left + int(n[tb]) - left_b + np.arange(filt.shape[1])  # positions in xp
        ok = (idx >= left) & (idx < left + n_in)
        y[tb] = filt[r, ok] @ xp[idx[ok]]
