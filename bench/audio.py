"""Audio I/O and preprocessing: decode with soundfile, mono mixdown, resampling.

Every choice that moves the numbers (sample rate, resampler, mixdown, length limits,
normalisation) lives in :class:`AudioSpec`, which is recorded in the run manifest and
is part of every embedding cache key.

Waveforms are ``np.float32`` arrays of shape ``(samples,)`` in [-1, 1] unless stated.

Bad input policy (what :func:`load_audio_report` does with a file):

- cannot be decoded, 0 samples, truncated WAV (the header promises more data than the file
  holds), NaN/Inf samples, shorter than ``min_duration_s``: :class:`AudioError` (an *error*
  row in errors.csv; the file is left out).
- longer than ``max_duration_s``: only the first ``max_duration_s`` seconds are decoded (memory
  and time stay bounded for a 30-minute file) and a *warning* note "truncated to ... s" is
  returned.
- all-silent (every sample 0) or near-silent (peak below -80 dBFS): used, with a warning note.
- extension that does not match the decoded container (a WAV named ``.flac``): used (the content
  decides), with a warning note (:func:`extension_note`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.fields import from_fields

#: Extensions libsndfile decodes (mp3 needs libsndfile >= 1.1, opus lives in .ogg/.opus).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au")
#: container formats (``soundfile.info().format``) each extension may hold
_EXT_FORMATS = {
    ".wav": ("WAV", "WAVEX", "RF64", "W64", "NIST"),
    ".flac": ("FLAC",),
    ".ogg": ("OGG",),
    ".opus": ("OGG",),
    ".mp3": ("MP3", "MPEG"),
    ".aiff": ("AIFF",),
    ".aif": ("AIFF",),
    ".au": ("AU",),
}
MONO_METHODS = ("mean", "first", "none")
RESAMPLERS = ("torchaudio_sinc", "torchaudio_kaiser_best", "resampy_kaiser_best", "kaiser_best_polyphase")
#: peak below this (-80 dBFS) counts as near-silent
SILENCE_PEAK = 1e-4
#: frames decoded per block when mixing down long multi-channel files
_BLOCK = 1 << 18


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
        "resampy_kaiser_best" (resampy, what the VGGish/TF-FAD reference front ends use), or
        "kaiser_best_polyphase" (resampy's kaiser_best taps applied in polyphase form by
        :mod:`bench.polyphase`: within 1e-6 of resampy, 5-20x faster; see docs/throughput.md).
    normalize: None, "peak" (scale to peak 1), or "rms:-20" (scale to -20 dBFS RMS).
    min_duration_s / max_duration_s: shorter files are an error; longer ones are cut to
        ``max_duration_s`` (a warning in errors.csv; ``max_duration_s=None`` keeps everything).
    pad_to_s: zero-pad (at the end) to at least this many seconds, or None.
    """

    sample_rate: int = 16000
    mono: str = "mean"
    resampler: str = "torchaudio_sinc"
    normalize: str | None = None
    min_duration_s: float = 0.05
    max_duration_s: float | None = 600.0
    pad_to_s: float | None = None

    def __post_init__(self) -> None:
        sr = self.sample_rate
        if isinstance(sr, bool) or not isinstance(sr, numbers.Real) or sr <= 0 or float(sr) != int(sr):
            raise ValueError(f"AudioSpec.sample_rate must be a positive integer (Hz), got {sr!r}")
        object.__setattr__(self, "sample_rate", int(sr))
        if self.mono not in MONO_METHODS:
            raise ValueError(f"AudioSpec.mono must be one of {list(MONO_METHODS)}, got {self.mono!r}")
        if self.resampler not in RESAMPLERS:
            raise ValueError(f"AudioSpec.resampler must be one of {list(RESAMPLERS)}, got {self.resampler!r}")
        if self.normalize not in (None, "peak") and not str(self.normalize).startswith("rms:"):
            raise ValueError(f"AudioSpec.normalize must be null, 'peak' or 'rms:<dBFS>', got {self.normalize!r}")
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            raise ValueError(f"AudioSpec.max_duration_s must be > 0 or null, got {self.max_duration_s!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> AudioSpec:
        """Build from a dict; unknown keys raise ``ValueError`` listing the valid fields."""
        return from_fields(cls, d, "AudioSpec", "field", hint=True)


@dataclass
class LoadedAudio:
    """A decoded, preprocessed file and what is worth knowing about it.

    wav: float32 ``(samples,)`` (or ``(samples, channels)`` for ``mono="none"``) at ``spec.sample_rate``.
    source_rate: the file's sample rate in Hz. format: the container (``soundfile`` name, e.g. "WAV").
    notes: warning-level caveats (truncated, silent) for errors.csv; empty for a clean file.
    """

    wav: np.ndarray
    source_rate: int
    format: str
    notes: list[str] = field(default_factory=list)


def wav_declared_frames(path: str | Path, frame_bytes: int) -> int | None:
    """Frames the RIFF ``data`` chunk header of a WAV declares (None: not a plain RIFF/WAVE or size unknown)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            while True:
                ch = fh.read(8)
                if len(ch) < 8:
                    return None
                cid, size = ch[:4], struct.unpack("<I", ch[4:])[0]
                if cid == b"data":
                    if size in (0, 0xFFFFFFFF) or frame_bytes <= 0:  # streaming writers leave a placeholder
                        return None
                    return size // frame_bytes
                fh.seek(size + (size & 1), 1)
    except OSError:
        return None


_SUBTYPE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def _info(path: Path) -> sf._SoundFileInfo:
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises LibsndfileError/RuntimeError/TypeError
        raise AudioError(f"cannot decode ({type(exc).__name__}: {exc})") from exc
    if info.samplerate <= 0:
        raise AudioError(f"invalid sample rate {info.samplerate}")
    if info.frames == 0:
        raise AudioError("empty audio (0 samples)")
    if info.format == "WAV" and info.subtype in _SUBTYPE_BYTES:
        declared = wav_declared_frames(path, _SUBTYPE_BYTES[info.subtype] * info.channels)
        if declared is not None and declared > info.frames:
            raise AudioError(
                f"truncated file: the WAV header declares {declared} frames but only {info.frames} are present "
                "(interrupted write or copy?)"
            )
    return info


def read_audio(path: str | Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode a file with soundfile. Returns ``(samples, channels)`` float32 and the rate in Hz.

    At most ``max_seconds`` are decoded. Raises :class:`AudioError` with a human-readable reason
    for anything unusable (undecodable, empty, truncated WAV).
    """
    path = Path(path)
    info = _info(path)
    frames = -1
    if max_seconds is not None and info.frames > 0:
        frames = min(info.frames, int(math.ceil(max_seconds * info.samplerate)))
    return _read_frames(path, frames)


def _read_frames(path: Path, frames: int) -> tuple[np.ndarray, int]:
    """The first ``frames`` frames (-1: all) as ``(samples, channels)`` float32 and the rate in Hz."""
    try:
        data, sr = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"cannot decode ({type(exc).__name__}: {exc})") from exc
    if data.size == 0:
        raise AudioError("empty audio (0 samples)")
    return data, int(sr)


def _read_mixdowns(path: Path, frames: int, methods: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Decode the first ``frames`` frames block by block, mixing each block down by every method
    (memory: one mono copy per method, never the multichannel file)."""
    out = {m: np.empty(frames, dtype=np.float32) for m in methods}
    pos = 0
    try:
        with sf.SoundFile(str(path)) as f:
            while pos < frames:
                block = f.read(min(_BLOCK, frames - pos), dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                for m in methods:
                    out[m][pos : pos + block.shape[0]] = mixdown(block, m)
                pos += block.shape[0]
    except Exception as exc:
        raise AudioError(f"cannot decode ({type(exc).__name__}: {exc})") from exc
    if pos == 0:
        raise AudioError("empty audio (0 samples)")
    return {m: a[:pos] for m, a in out.items()}


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
    if method == "kaiser_best_polyphase":
        from bench.polyphase import resample_kaiser_best

        return resample_kaiser_best(x, sr_in, sr_out).astype(np.float32)
    if method == "resampy_kaiser_best":
        import resampy

        return resampy.resample(x.astype(np.float64), sr_in, sr_out, axis=0, filter="kaiser_best").astype(np.float32)
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
            f"unknown resampler {method!r}; choose one of {', '.join(RESAMPLERS)}"
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
    finite = np.isfinite(x)
    if not finite.all():
        n_bad = int(finite.size - np.count_nonzero(finite))
        raise AudioError(f"{n_bad} non-finite samples (NaN/Inf)")
    dur = x.shape[0] / sr
    if dur < spec.min_duration_s:
        raise AudioError(f"too short: {dur * 1000:.1f} ms < min_duration_s={spec.min_duration_s}")


def silence_note(x: np.ndarray) -> str | None:
    """A warning for all-silent / near-silent audio (peak below -80 dBFS), else None."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return "all-silent (every sample is 0)"
    if peak < SILENCE_PEAK:
        return f"near-silent (peak {20 * math.log10(peak):.1f} dBFS)"
    return None


def extension_note(path: str | Path, fmt: str | None) -> str | None:
    """A warning when the file name's extension does not match the decoded container ``fmt``."""
    if not fmt:
        return None
    ext = Path(path).suffix.lower()
    allowed = _EXT_FORMATS.get(ext)
    if allowed is None:
        return f"unrecognised extension {ext or '(none)'!r}; decoded as {fmt}"
    if fmt not in allowed:
        return f"extension {ext!r} but the content is {fmt}; decoded as {fmt}"
    return None


def _finish(x: np.ndarray, sr: int, spec: AudioSpec) -> np.ndarray:
    """Mixed-down ``x`` at ``sr`` -> resampled, normalised, padded float32 at ``spec.sample_rate``."""
    x = resample(x, sr, spec.sample_rate, spec.resampler)
    x = normalize(x, spec.normalize)
    if spec.pad_to_s is not None:
        n = int(round(spec.pad_to_s * spec.sample_rate))
        if x.shape[0] < n:
            pad = [(0, n - x.shape[0])] + [(0, 0)] * (x.ndim - 1)
            x = np.pad(x, pad)
    return np.ascontiguousarray(x, dtype=np.float32)


def prepare(x: np.ndarray, sr: int, spec: AudioSpec) -> np.ndarray:
    """Apply ``spec`` to an in-memory waveform ``(samples,)``/``(samples, channels)`` at ``sr``.

    A 2-D array with more columns than rows is taken to be ``(channels, samples)`` (generator output).
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2 and x.shape[1] > x.shape[0]:  # (channels, samples) from a generator
        x = x.T
    check_waveform(x, sr, spec)
    if spec.max_duration_s is not None:
        x = x[: int(math.ceil(spec.max_duration_s * sr))]
    return _finish(mixdown(x, spec.mono), sr, spec)


def load_audio_report(path: str | Path, spec: AudioSpec) -> LoadedAudio:
    """Decode ``path``, apply ``spec`` and collect warning notes (see the module docstring).

    Raises :class:`AudioError` for unusable files. Memory is bounded by ``max_duration_s``:
    multi-channel files are mixed down block by block while decoding.
    """
    path = Path(path)
    info = _info(path)
    sr = int(info.samplerate)
    notes: list[str] = []
    frames = int(info.frames)
    if spec.max_duration_s is not None:
        cap = int(math.ceil(spec.max_duration_s * sr))
        if frames > cap:
            notes.append(f"truncated to {spec.max_duration_s:g} s (file is {frames / sr:.1f} s)")
            frames = cap
    x = _decode_signals(path, info, frames, {spec.mono})[spec.mono]
    check_waveform(x, sr, spec)
    if note := silence_note(x):
        notes.append(note)
    return LoadedAudio(_finish(x, sr, spec), sr, str(info.format), notes)


def _spec_frames(spec: AudioSpec, sr: int, frames: int) -> int:
    """Frames of a ``frames``-long file that ``spec`` uses (``max_duration_s`` cap)."""
    if spec.max_duration_s is None:
        return frames
    return min(frames, int(math.ceil(spec.max_duration_s * sr)))


def _decode_signals(path: Path, info, frames: int, methods: set[str]) -> dict[str, np.ndarray]:
    """The first ``frames`` frames of ``path`` mixed down by every method in ``methods`` (decoded once).

    Values are those :func:`load_audio_report` produces for each method (mixdown is per frame, so
    reading more frames and slicing gives the same samples).
    """
    if info.channels > 1 and "none" not in methods:
        return _read_mixdowns(path, frames, tuple(methods))
    x, _ = _read_frames(path, frames)
    return {m: (x if m == "none" else mixdown(x, m)) for m in methods}


def load_audio_multi(path: str | Path, specs: list[AudioSpec]) -> list[LoadedAudio | AudioError]:
    """:func:`load_audio_report` for several specs at once: the file is decoded once (each mono method
    once, up to the longest ``max_duration_s``), and resampled once per (mono, length, rate, resampler).

    Returns, per spec, the same :class:`LoadedAudio` (bit for bit) as ``load_audio_report(path, spec)``
    or the :class:`AudioError` it would raise. Other exceptions propagate.
    """
    path = Path(path)
    try:
        info = _info(path)
    except AudioError as exc:
        return [exc] * len(specs)
    sr, total = int(info.samplerate), int(info.frames)
    frames = max(_spec_frames(s, sr, total) for s in specs)
    try:
        signals = _decode_signals(path, info, frames, {s.mono for s in specs})
    except AudioError as exc:
        return [exc] * len(specs)
    resampled: dict[tuple, np.ndarray] = {}
    out: list[LoadedAudio | AudioError] = []
    for spec in specs:
        n = _spec_frames(spec, sr, total)
        x = signals[spec.mono][:n]
        notes = [f"truncated to {spec.max_duration_s:g} s (file is {total / sr:.1f} s)"] if n < total else []
        try:
            check_waveform(x, sr, spec)
        except AudioError as exc:
            out.append(exc)
            continue
        if note := silence_note(x):
            notes.append(note)
        key = (spec.mono, x.shape[0], spec.sample_rate, spec.resampler)
        if key not in resampled:
            resampled[key] = resample(x, sr, spec.sample_rate, spec.resampler)
        y = normalize(resampled[key], spec.normalize)
        if spec.pad_to_s is not None:
            m = int(round(spec.pad_to_s * spec.sample_rate))
            if y.shape[0] < m:
                y = np.pad(y, [(0, m - y.shape[0])] + [(0, 0)] * (y.ndim - 1))
        out.append(LoadedAudio(np.ascontiguousarray(y, dtype=np.float32), sr, str(info.format), notes))
    return out


def load_audio(path: str | Path, spec: AudioSpec) -> np.ndarray:
    """Decode ``path`` and apply ``spec``. Returns float32 ``(samples,)`` at ``spec.sample_rate``."""
    return load_audio_report(path, spec).wav


def write_audio(path: str | Path, x: np.ndarray, sr: int, subtype: str = "PCM_16") -> None:
    """Write a waveform atomically (temp file + rename). ``x`` is ``(samples,)`` or ``(samples, ch)``."""
    from bench.cache import atomic_path

    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2 and x.shape[0] < x.shape[1]:
        x = x.T
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(x, -1.0, 1.0), sr, subtype=subtype, format="WAV")
