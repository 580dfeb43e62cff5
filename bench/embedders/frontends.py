"""Log-mel front ends of VGGish and PANN (CNN14) and the shared STFT power, in torch so they batch on the model's device.

- :class:`VGGishLogMel` reproduces Google's ``mel_features.log_mel_spectrogram`` as used by
  ``vggish_input.waveform_to_examples`` (and torchvggish): 25 ms periodic-Hann frames every
  10 ms without centring, ``|rfft|`` with 512 points, an HTK-mel matrix (64 bands, 125-7500 Hz,
  DC row zeroed, no area normalisation), ``log(mel + 0.01)``. Computed in float64 like the
  numpy reference.
- :class:`PANNLogMel` reproduces torchlibrosa's ``Spectrogram`` + ``LogmelFilterBank`` with the
  PANN parameters (periodic Hann, ``center=True``, reflect padding, power 2, librosa's Slaney mel
  bank, ``10*log10(max(x, amin)) - 10*log10(max(amin, ref))``, no ``top_db``).

:func:`power_spectrogram` is the centred STFT power that PANN, PaSST, musicnn and chroma share.
The mel matrices are plain numpy functions (float64) so they can be checked against librosa
(:func:`slaney_mel_matrix` also serves musicnn).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

# -- STFT ---------------------------------------------------------------------------------------------


def power_spectrogram(x: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor, pad_mode: str = "reflect") -> torch.Tensor:
    """``|STFT(x)|**2``: ``(..., samples)`` -> ``(..., n_fft // 2 + 1, frames)``, ``frames = 1 + samples // hop``.

    Centred frames (``pad_mode`` padding of ``n_fft // 2`` each side); ``window`` (``win_length`` samples,
    ``<= n_fft``) is zero-padded to ``n_fft`` in the middle, as ``torch.stft`` does.
    """
    spec = torch.stft(
        x, n_fft, hop_length=hop, win_length=window.numel(), window=window, center=True, pad_mode=pad_mode,
        return_complex=True,
    )
    return spec.real.square() + spec.imag.square()


# -- mel matrices ---------------------------------------------------------------------------------


def periodic_hann(n: int) -> np.ndarray:
    """Periodic Hann window ``(n,)`` float64 (``0.5 - 0.5 cos(2 pi k / n)``), as TF/librosa use for STFTs."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi / n * np.arange(n))


def hz_to_mel_htk(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale ``1127 ln(1 + f / 700)`` (Hz -> mel)."""
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


def vggish_mel_matrix(
    n_fft_bins: int = 257, sample_rate: int = 16000, n_mels: int = 64, fmin: float = 125.0, fmax: float = 7500.0
) -> np.ndarray:
    """Google's ``spectrogram_to_mel_matrix``: ``(n_fft_bins, n_mels)`` float64 triangular HTK-mel weights.

    Band edges are equally spaced in HTK mel between ``fmin`` and ``fmax`` (Hz); the DC bin gets
    zero weight. Unlike librosa there is no area normalisation.
    """
    nyquist = sample_rate / 2.0
    if not 0.0 <= fmin < fmax <= nyquist:
        raise ValueError(f"need 0 <= fmin < fmax <= {nyquist} Hz, got {fmin}, {fmax}")
    bins_mel = hz_to_mel_htk(np.linspace(0.0, nyquist, n_fft_bins))
    edges = np.linspace(hz_to_mel_htk(fmin), hz_to_mel_htk(fmax), n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    lower_slope = (bins_mel[:, None] - lower) / (center - lower)
    upper_slope = (upper - bins_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(lower_slope, upper_slope))
    weights[0, :] = 0.0
    return weights


def hz_to_mel_slaney(f: np.ndarray | float) -> np.ndarray:
    """Slaney (auditory toolbox) mel scale: linear below 1 kHz, logarithmic above (librosa's default)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    lin = f / f_sp
    log = min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep
    return np.where(f >= min_log_hz, log, lin)


def mel_to_hz_slaney(m: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel_slaney`."""
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    lin = f_sp * m
    log = min_log_hz * np.exp(logstep * (m - min_log_mel))
    return np.where(m >= min_log_mel, log, lin)


def slaney_mel_matrix(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """librosa ``filters.mel(sr, n_fft, n_mels, fmin, fmax)`` (Slaney scale and area norm), transposed.

    Returns ``(n_fft // 2 + 1, n_mels)``; computed in float64 then rounded to float32 like librosa.
    """
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    mel_f = mel_to_hz_slaney(np.linspace(hz_to_mel_slaney(fmin), hz_to_mel_slaney(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.astype(np.float32).astype(np.float64).T


# -- VGGish -----------------------------------------------------------------------------------------


class VGGishLogMel(nn.Module):
    """Waveform ``(B, samples)`` at 16 kHz -> log-mel frames ``(B, n_frames, 64)`` float64.

    ``n_frames = 1 + (samples - 400) // 160`` (no padding; the trailing partial frame is dropped).
    """

    sample_rate = 16000
    win_length = 400  # 25 ms
    hop_length = 160  # 10 ms
    n_fft = 512  # next power of two above win_length
    n_mels = 64
    fmin, fmax = 125.0, 7500.0
    log_offset = 0.01

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.from_numpy(periodic_hann(self.win_length)), persistent=False)
        mel = vggish_mel_matrix(self.n_fft // 2 + 1, self.sample_rate, self.n_mels, self.fmin, self.fmax)
        self.register_buffer("mel", torch.from_numpy(mel), persistent=False)

    @classmethod
    def n_frames(cls, n_samples: int) -> int:
        return 0 if n_samples < cls.win_length else 1 + (n_samples - cls.win_length) // cls.hop_length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float64)
        frames = x.unfold(-1, self.win_length, self.hop_length) * self.window  # (B, T, 400)
        mag = torch.fft.rfft(frames, n=self.n_fft).abs()  # (B, T, 257)
        return torch.log(mag @ self.mel + self.log_offset)

    @staticmethod
    def params() -> dict:
        c = VGGishLogMel
        return {
            "kind": "vggish_logmel",
            "win": c.win_length,
            "hop": c.hop_length,
            "n_fft": c.n_fft,
            "n_mels": c.n_mels,
            "fmin": c.fmin,
            "fmax": c.fmax,
            "log_offset": c.log_offset,
        }


def frame_examples(logmel: torch.Tensor, window: int, hop: int, n: int | None = None) -> torch.Tensor:
    """``(T, F)`` frames -> ``(N, window, F)`` examples starting every ``hop`` frames (whole ones only).

    ``n`` keeps only the first ``n`` examples (the TF-FAD framing decides the count from samples).
    """
    if logmel.shape[0] < window:
        return logmel.new_zeros((0, window, logmel.shape[1]))
    ex = logmel.unfold(0, window, hop).transpose(1, 2)  # (N, window, F)
    return ex if n is None else ex[:n]


# -- PANN -------------------------------------------------------------------------------------------


class PANNLogMel(nn.Module):
    """Waveform ``(B, samples)`` -> log-mel power in dB ``(B, 1, n_frames, n_mels)`` float32.

    ``n_frames = 1 + samples // hop`` (centred frames, reflect padding of ``n_fft // 2``), as
    torchlibrosa's conv-based STFT. ``melW`` is a buffer so a checkpoint's own filter bank
    (``logmel_extractor.melW``) can replace the computed one.
    """

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int = 64,
        fmin: float = 50.0,
        fmax: float | None = None,
        amin: float = 1e-10,
        ref: float = 1.0,
    ) -> None:
        super().__init__()
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.amin = float(amin)
        self.db_offset = 10.0 * math.log10(max(amin, ref))
        fmax = sample_rate // 2 if fmax is None else fmax
        self.register_buffer("window", torch.from_numpy(periodic_hann(self.n_fft)).float(), persistent=False)
        mel = slaney_mel_matrix(sample_rate, self.n_fft, n_mels, fmin, fmax)
        self.register_buffer("melW", torch.from_numpy(mel).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        power = power_spectrogram(x.float(), self.n_fft, self.hop_length, self.window)  # (B, F, T)
        mel = power.transpose(1, 2) @ self.melW  # (B, T, n_mels)
        return (10.0 * torch.log10(mel.clamp_min(self.amin)) - self.db_offset)[:, None]

    def dft_kernels(self) -> tuple[np.ndarray, np.ndarray]:
        """torchlibrosa's windowed DFT conv kernels ``(n_fft // 2 + 1, 1, n_fft)`` (real, imag), float64."""
        n = self.n_fft
        k = np.arange(n // 2 + 1)[:, None]
        t = np.arange(n)[None, :]
        w = periodic_hann(n)[None, :]
        ang = -2.0 * np.pi * k * t / n
        return (np.cos(ang) * w)[:, None, :], (np.sin(ang) * w)[:, None, :]
