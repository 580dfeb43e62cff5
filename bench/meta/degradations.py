"""Controlled degradations for metric meta-evaluation (``bench sensitivity``): pure functions.

Every function takes a mono waveform ``x`` float32 ``(samples,)`` at ``sr`` Hz and returns a new
float32 array (the input is never modified); randomised ones take an explicit ``seed``, so the
same call gives the same bytes. Severity grows with the parameter as listed in :data:`LADDERS`.

========================  ===========================================================  ===================
name                      what                                                          parameter
========================  ===========================================================  ===================
``noise``                 additive white Gaussian noise at an exact SNR                ``snr_db`` (lower = worse)
``lowpass``               zero-phase 8th-order Butterworth low-pass (order 16 overall)  ``cutoff_hz`` (lower = worse)
``bitdepth``              uniform mid-tread quantisation to ``bits`` bits, no dither    ``bits`` (lower = worse)
``time_stretch``          phase-vocoder tempo change, pitch kept (librosa)              ``rate`` (>1 faster; further from 1 = worse)
``pitch_shift``           pitch shift, tempo kept (librosa, soxr_hq resampling)         ``semitones`` (further from 0 = worse)
``shuffle``               cut into segments, permute them (never the identity order)     ``segment_s`` (shorter = worse)
========================  ===========================================================  ===================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _mono(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"degradations take a mono waveform (samples,), got shape {x.shape}")
    return x


def snr_db(clean: np.ndarray, degraded: np.ndarray) -> float:
    """``10 log10(sum clean^2 / sum (degraded - clean)^2)`` in dB (float64)."""
    c = np.asarray(clean, dtype=np.float64)
    e = np.asarray(degraded, dtype=np.float64) - c
    return float(10.0 * np.log10(np.sum(c * c) / np.sum(e * e)))


def add_noise(x: np.ndarray, sr: int, snr_db: float, seed: int = 0) -> np.ndarray:
    """``x`` + white Gaussian noise scaled so the signal-to-noise power ratio is exactly ``snr_db`` dB
    (the noise's own sample power is used, not its expectation). Silent input is returned unchanged."""
    x = _mono(x)
    p_sig = float(np.mean(np.square(x, dtype=np.float64)))
    if p_sig == 0.0:
        return x.copy()
    n = np.random.default_rng(int(seed)).standard_normal(x.shape[0])
    n *= np.sqrt(p_sig / 10.0 ** (float(snr_db) / 10.0) / np.mean(n * n))
    return (x.astype(np.float64) + n).astype(np.float32)


def lowpass(x: np.ndarray, sr: int, cutoff_hz: float, order: int = 8) -> np.ndarray:
    """Zero-phase Butterworth low-pass (``sosfiltfilt``: ``order`` applied twice, -6 dB at ``cutoff_hz``).
    A cut-off at or above Nyquist returns ``x`` unchanged."""
    from scipy.signal import butter, sosfiltfilt

    x = _mono(x)
    if cutoff_hz >= sr / 2:
        return x.copy()
    sos = butter(int(order), float(cutoff_hz), btype="low", fs=sr, output="sos")
    return sosfiltfilt(sos, x.astype(np.float64)).astype(np.float32)


def bitdepth(x: np.ndarray, sr: int, bits: int) -> np.ndarray:
    """Uniform quantisation to ``bits`` bits: ``round(x * 2^(bits-1)) / 2^(bits-1)``, clipped to the
    signed range ``[-2^(bits-1), 2^(bits-1) - 1]`` (so at most ``2^bits`` distinct values)."""
    x = _mono(x)
    if not 1 <= int(bits) <= 24:
        raise ValueError(f"bits must be in [1, 24], got {bits}")
    q = float(2 ** (int(bits) - 1))
    y = np.clip(np.round(x.astype(np.float64) * q), -q, q - 1) / q
    return y.astype(np.float32)


def time_stretch(x: np.ndarray, sr: int, rate: float) -> np.ndarray:
    """Tempo change by ``rate`` (2.0 = twice as fast, half the length), pitch unchanged (phase vocoder)."""
    import librosa

    x = _mono(x)
    if float(rate) == 1.0:
        return x.copy()
    return np.asarray(librosa.effects.time_stretch(x, rate=float(rate)), dtype=np.float32)


def pitch_shift(x: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """Pitch shift by ``semitones`` (frequencies x ``2^(semitones/12)``), length and tempo unchanged."""
    import librosa

    x = _mono(x)
    if float(semitones) == 0.0:
        return x.copy()
    y = librosa.effects.pitch_shift(x, sr=int(sr), n_steps=float(semitones), res_type="soxr_hq")
    return np.asarray(y, dtype=np.float32)


def shuffle_order(n_segments: int, seed: int) -> np.ndarray:
    """A seeded permutation of ``range(n_segments)`` that is not the identity (when ``n_segments > 1``)."""
    order = np.random.default_rng(int(seed)).permutation(n_segments)
    if n_segments > 1 and np.array_equal(order, np.arange(n_segments)):
        order = np.roll(order, 1)
    return order


def shuffle(x: np.ndarray, sr: int, segment_s: float, seed: int = 0) -> np.ndarray:
    """Cut ``x`` into consecutive ``segment_s``-second segments (the last one may be shorter) and
    concatenate them in the order :func:`shuffle_order` gives: same samples, same length, scrambled
    musical time."""
    x = _mono(x)
    seg = max(1, int(round(float(segment_s) * sr)))
    parts = [x[i : i + seg] for i in range(0, x.shape[0], seg)]
    order = shuffle_order(len(parts), seed)
    return np.concatenate([parts[i] for i in order]).astype(np.float32)


#: name -> (function, parameter name, whether the function takes a seed)
DEGRADATIONS: dict[str, tuple[Callable[..., np.ndarray], str, bool]] = {
    "noise": (add_noise, "snr_db", True),
    "lowpass": (lowpass, "cutoff_hz", False),
    "bitdepth": (bitdepth, "bits", False),
    "time_stretch": (time_stretch, "rate", False),
    "pitch_shift": (pitch_shift, "semitones", False),
    "shuffle": (shuffle, "segment_s", True),
}

#: default severity ladders, mildest first (``bench/configs``' ``sensitivity.degradations`` overrides)
LADDERS: dict[str, list[float]] = {
    "noise": [30.0, 20.0, 10.0, 0.0],
    "lowpass": [8000.0, 4000.0, 2000.0, 1000.0],
    "bitdepth": [12, 8, 6, 4],
    "time_stretch": [1.05, 1.1, 1.25, 1.5],
    "pitch_shift": [0.5, 1.0, 2.0, 4.0],
    "shuffle": [2.0, 1.0, 0.5, 0.25],
}


def apply(name: str, x: np.ndarray, sr: int, level: Any, seed: int = 0) -> np.ndarray:
    """Apply degradation ``name`` at parameter value ``level`` (e.g. ``apply("noise", x, sr, 10.0, seed=3)``)."""
    try:
        fn, param, seeded = DEGRADATIONS[name]
    except KeyError:
        raise ValueError(f"unknown degradation {name!r}; choose from {sorted(DEGRADATIONS)}") from None
    kwargs: dict[str, Any] = {param: int(level) if param == "bits" else float(level)}
    if seeded:
        kwargs["seed"] = int(seed)
    return fn(x, int(sr), **kwargs)
