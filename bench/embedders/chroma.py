"""Chromagram "embedder": the per-frame pitch-class profile MusicGen's melody metric compares.

As AudioCraft's ``ChromaExtractor`` (MusicGen, Copet et al. 2023) with the MusicGen evaluation
settings (``n_chroma=12``, ``radix2_exp=14``; sample rate 32 kHz), re-implemented here:

- mono mix at 32 kHz; a clip shorter than ``n_fft`` is zero-padded on both sides to ``n_fft``;
- power spectrogram ``|STFT|^2``: ``n_fft = win = 2**radix2_exp`` (16384), hop ``win // 4`` (4096),
  periodic Hann window, centred frames with reflect padding, normalised by the window's L2 norm
  (torchaudio ``Spectrogram(normalized=True, power=2)``);
- chroma filterbank ``librosa.filters.chroma(sr, n_fft, tuning=0, n_chroma)`` applied to the power
  spectrum, then each frame divided by its maximum (``max(x, 1e-6)``, i.e. inf-norm normalisation);
- the clip's ``ceil(n_samples / hop)`` leading frames are kept (AudioCraft's ``chroma_lens``).

``embed`` returns ``{"emb": (T, n_chroma)}`` float32. The arg-max one-hot quantisation MusicGen's
metric applies (``argmax: true``) is a metric option (:class:`bench.metrics.melody.ChromaCosine`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from bench.audio import AudioSpec
from bench.embedders.base import Embedder
from bench.embedders.frontends import power_spectrogram


def chroma_filterbank(sr: int, n_fft: int, n_chroma: int = 12) -> np.ndarray:
    """``(n_chroma, n_fft // 2 + 1)`` librosa chroma filterbank with ``tuning=0`` (float32)."""
    from librosa import filters

    return filters.chroma(sr=sr, n_fft=n_fft, tuning=0.0, n_chroma=n_chroma).astype(np.float32)


def chromagram(
    wav: torch.Tensor, fbank: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """``(samples,)`` -> inf-norm-normalised chroma ``(ceil(samples / hop), n_chroma)``."""
    n = wav.shape[-1]
    x = wav
    if n < n_fft:
        pad = n_fft - n
        x = torch.nn.functional.pad(x, (pad // 2, pad // 2 + pad % 2))
    power = power_spectrogram(x, n_fft, hop, window) / window.square().sum()  # (freq, frames)
    raw = fbank @ power  # (n_chroma, frames)
    norm = raw / raw.abs().amax(dim=0, keepdim=True).clamp_min(eps)
    keep = max(1, math.ceil(n / hop))
    return norm.T[:keep]


class ChromaEmbedder(Embedder):
    """12-bin chromagram frames (MusicGen / AudioCraft chroma extractor settings).

    Args:
        n_chroma: pitch classes per octave.
        radix2_exp: STFT size ``2**radix2_exp`` (MusicGen evaluation: 14 -> 16384 samples, hop 4096).
    """

    name = "chroma"
    feature = "chroma"
    default_audio = AudioSpec(sample_rate=32000, mono="mean", resampler="torchaudio_sinc")

    def __init__(
        self,
        n_chroma: int = 12,
        radix2_exp: int = 14,
        device: str = "auto",
        batch_size: int = 8,
        audio: AudioSpec | dict | None = None,
    ):
        super().__init__(audio=audio, device=device, batch_size=batch_size)
        if not 6 <= int(radix2_exp) <= 16:
            raise ValueError(f"radix2_exp must be in 6..16, got {radix2_exp}")
        self.n_chroma = int(n_chroma)
        self.radix2_exp = int(radix2_exp)
        self.n_fft = 2**self.radix2_exp
        self.hop = self.n_fft // 4
        sr = self.audio.sample_rate
        self.fbank = torch.from_numpy(chroma_filterbank(sr, self.n_fft, self.n_chroma)).to(self.device)
        self.window = torch.hann_window(self.n_fft, periodic=True, device=self.device)

    def derived_params(self) -> dict[str, Any]:
        return {
            "n_fft": self.n_fft,
            "hop": self.hop,
            "window": "hann_periodic",
            "spectrogram": "power_window_normalized_center_reflect",
            "filterbank": "librosa.filters.chroma(tuning=0)",
            "norm": "inf",
            "frames": "ceil(n/hop)",
        }

    @torch.inference_mode()
    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)).to(self.device)
        c = chromagram(x, self.fbank, self.n_fft, self.hop, self.window)
        return {"emb": c.float().cpu().numpy()}
