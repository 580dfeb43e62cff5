"""Audio I/O and preprocessing: decode with soundfile, mono mixdown, resampling.

Every choice that moves the numbers (sample rate, resampler, mixdown, length limits,
normalisation) lives in :class:`AudioSpec`, which is recorded in the run manifest and
is part of every embedding cache key.

Waveforms are ``np.float32`` arrays of shape ``(samples,)`` in [-1, 1] unless stated.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

#: Extensions libsndfile decodes (mp3 needs libsndfile >= 1.1, opus lives in .ogg/.opus).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au")


class AudioError(ValueError):
    """A file that cannot be used; the message is the per-file reason in errors.csv."""


@dataclass(frozen=True)
class AudioSpec:
    """How audio is turned into the waveform an embedder sees.

    sample_rate: target rate in Hz.
    mono: "mean" (average channels), "first" (channel 0) or "none" (keep channels; 2-D out).
    resampler: "torchaudio_sinc" (torchaudio.functional.resample, sinc_interp_hann, 6 zero
        crossings, rolloff 0.99), "torchaudio_kaiser_best" (kaiser window, 64 zero crossings,
        rolloff 0.9475937167399596, beta 14.769656459379492, as librosa's kaiser_best),
        or "resampy_kaiser_best" (resampy, what the VGGish/TF-FAD reference front ends use).
    normalize: None, "peak" (scale to peak 1), or "rms:-20" (scale to -20 dBFS RMS).
    min_duration_s / max_duration_s: shorter files are an error; longer ones are cut
        (``max_duration_s=None`` keeps everything).
    pad_to_s: zero-pad (at the end) to at least this many seconds, or None.
    """

    sample_rate: int = 16000
    mono: str = "mean"
    resampler: str = "torchaudio_sinc"
    normalize: str | None = None
    min_duration_s: float = 0.05
    max_duration_s: float | None = 600.0
    pad_to_s: float | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> AudioSpec:
        if d is None:
            return cls()
        return cls(**{k: v for k, v in dict(d).items() if k in {f.name for f in dataclasses.fields(cls)}})


def read_audio(path: str | Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode a file with soundfile. Returns ``(samples, channels)`` float32 and the rate in Hz.

    Raises :class:`AudioError` with a human-readable reason for anything unusable.
    """
    path = Path(path)
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises LibsndfileError/RuntimeError/TypeError
        raise AudioError(f"cannot decode ({type(exc).__name__}: {exc})") from exc
    if info.samplerate <= 0:
        raise AudioError(f"invalid sample rate {info.samplerate}")
    frames = -1
    if max_seconds is not None and info.frames > 0:
        frames = min(info.frames, int(math.ceil(max_seconds * info.samplerate)))
    try:
        data, sr = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"cannot decode ({type(exc).__name__}: {exc})") from exc
    if data.size == 0:
        raise AudioError("empty audio (0 samples)")
    return data, int(sr)


def mixdown(x: np.ndarray, method: str = "mean") -> np.ndarray:
    """``(samples, channels)`` -> ``(samples,)`` (or unchanged for method "none")."""
    if x.ndim == 1 or method == "none":
        return x
    if method == "mean":
        return x.mean(axis=1, dtype=np.float64).astype(np.float32)
    if method == "first":
        return np.ascontiguousarray(x[:, 0])
    raise ValueError(f"unknown mono mixdown {method!r}; choose mean, first or none")


def resample(x: np.ndarray, sr_in: int, sr_out: int, method: str = "torchaudio_sinc") -> np.ndarray:
    """Resample along axis 0. ``x`` is ``(samples,)`` or ``(samples, channels)`` float32."""
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    if method == "resampy_kaiser_best":
        import resampy

        return resampy.resample(x, sr_in, sr_out, axis=0, filter="kaiser_best").astype(np.float32)
    import torch
    import torchaudio.functional as AF

    t = torch.from_numpy(np.ascontiguousarray(x.T if x.ndim == 2 else x[None])).to(torch.float32)
    g = math.gcd(sr_in, sr_out)
    if method == "torchaudio_sinc":
        y = AF.resample(t, sr_in // g, sr_out // g)
    elif method == "torchaudio_kaiser_best":
        y = AF.resample(
            t,
            sr_in // g,
            sr_out // g,
            lowpass_filter_width=64,
            rolloff=0.9475937167399596,
            resampling_method="sinc_interp_kaiser",
            beta=14.769656459379492,
        )
    else:
        raise ValueError(
            f"unknown resampler {method!r}; choose torchaudio_sinc, torchaudio_kaiser_best or resampy_kaiser_best"
        )
    y = y.numpy()
    return np.ascontiguousarray(y.T if x.ndim == 2 else y[0])


def normalize(x: np.ndarray, method: str | None) -> np.ndarray:
    """Loudness normalisation: None, "peak", or "rms:<dBFS>"."""
    if not method:
        return x
    if method == "peak":
        peak = float(np.max(np.abs(x)))
        return x if peak == 0 else (x / peak).astype(np.float32)
    if method.startswith("rms:"):
        target = 10 ** (float(method.split(":", 1)[1]) / 20)
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        return x if rms == 0 else (x * (target / rms)).astype(np.float32)
    raise ValueError(f"unknown normalisation {method!r}; choose peak or rms:<dBFS>")


def check_waveform(x: np.ndarray, sr: int, spec: AudioSpec) -> None:
    """Raise :class:`AudioError` for non-finite or too-short audio."""
    if not np.all(np.isfinite(x)):
        n_bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise AudioError(f"{n_bad} non-finite samples (NaN/Inf)")
    dur = x.shape[0] / sr
    if dur < spec.min_duration_s:
        raise AudioError(f"too short: {dur * 1000:.1f} ms < min_duration_s={spec.min_duration_s}")


def prepare(x: np.ndarray, sr: int, spec: AudioSpec) -> np.ndarray:
    """Apply ``spec`` to an in-memory waveform ``(samples,)``/``(samples, channels)`` at ``sr``."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2 and x.shape[1] > x.shape[0]:  # (channels, samples) from a generator
        x = x.T
    check_waveform(x, sr, spec)
    if spec.max_duration_s is not None:
        x = x[: int(math.ceil(spec.max_duration_s * sr))]
    x = mixdown(x, spec.mono)
    x = resample(x, sr, spec.sample_rate, spec.resampler)
    x = normalize(x, spec.normalize)
    if spec.pad_to_s is not None:
        n = int(round(spec.pad_to_s * spec.sample_rate))
        if x.shape[0] < n:
            pad = [(0, n - x.shape[0])] + [(0, 0)] * (x.ndim - 1)
            x = np.pad(x, pad)
    return np.ascontiguousarray(x, dtype=np.float32)


def load_audio(path: str | Path, spec: AudioSpec) -> np.ndarray:
    """Decode ``path`` and apply ``spec``. Returns float32 ``(samples,)`` at ``spec.sample_rate``."""
    data, sr = read_audio(path, max_seconds=spec.max_duration_s)
    return prepare(data, sr, spec)


def write_audio(path: str | Path, x: np.ndarray, sr: int, subtype: str = "PCM_16") -> None:
    """Write a waveform atomically (temp file + rename). ``x`` is ``(samples,)`` or ``(samples, ch)``."""
    from bench.cache import atomic_path

    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2 and x.shape[0] < x.shape[1]:
        x = x.T
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(x, -1.0, 1.0), sr, subtype=subtype, format="WAV")
