"""A weight-free embedder: log-mel spectrogram frames (optionally averaged over segments).

Useful as a sanity baseline (a "spectral FAD") and wherever no learned model may run. Front end:
``torchaudio.transforms.MelSpectrogram`` (periodic Hann window, ``center=True`` reflect padding,
power 2, HTK mel scale, no normalisation), then ``log(mel + 1e-6)``. With ``segment_s`` the frames
are averaged over non-overlapping segments (mean of log-mel), which keeps the frame count per clip
small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.audio import AudioSpec
from bench.embedders.base import Embedder


class LogMelEmbedder(Embedder):
    """``(samples,)`` at 16 kHz -> ``(T, n_mels)`` log-mel frames (or segment means).

    Args:
        n_mels: mel bands. win_ms / hop_ms: STFT window and hop in milliseconds.
        n_fft: FFT size (>= window). f_min / f_max: mel range in Hz.
        segment_s: average frames over segments of this length (None keeps every frame).
    """

    name = "logmel"
    default_audio = AudioSpec(sample_rate=16000, mono="mean", resampler="torchaudio_sinc")

    def __init__(
        self,
        n_mels: int = 64,
        win_ms: float = 25.0,
        hop_ms: float = 10.0,
        n_fft: int = 512,
        f_min: float = 0.0,
        f_max: float | None = None,
        segment_s: float | None = 0.5,
        **kw: Any,
    ):
        super().__init__(**kw)
        import torchaudio

        sr = self.audio.sample_rate
        self.n_mels, self.win_ms, self.hop_ms, self.n_fft = int(n_mels), float(win_ms), float(hop_ms), int(n_fft)
        self.f_min, self.f_max, self.segment_s = float(f_min), f_max, segment_s
        win = round(sr * self.win_ms / 1000)
        if win > self.n_fft:
            raise ValueError(f"window {win} samples exceeds n_fft={self.n_fft}")
        self.hop = round(sr * self.hop_ms / 1000)
        self._mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sr, n_fft=self.n_fft, win_length=win, hop_length=self.hop, f_min=self.f_min,
            f_max=self.f_max, n_mels=self.n_mels, power=2.0, center=True, pad_mode="reflect", mel_scale="htk",
        ).to(self.device)

    def derived_params(self) -> dict[str, Any]:
        return {"log_offset": 1e-6}

    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        return self.embed_batch([wav])[0]

    def embed_batch(self, wavs: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        import torch

        out = []
        with torch.inference_mode():
            for w in wavs:
                x = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)).to(self.device)
                frames = torch.log(self._mel(x) + 1e-6).T.double().cpu().numpy()  # (T, n_mels)
                if self.segment_s:
                    per = max(1, round(self.segment_s * 1000 / self.hop_ms))
                    n_seg = max(1, frames.shape[0] // per)
                    frames = frames[: n_seg * per].reshape(n_seg, per, -1).mean(axis=1) if frames.shape[0] >= per \
                        else frames.mean(axis=0, keepdims=True)
                out.append({"emb": frames.astype(np.float32)})
        return out
