"""A "model" whose outputs are each prompt's paired real clip, degraded in a controlled way.

Used by ``bench sensitivity`` (:mod:`bench.meta.sensitivity`): one instance per degradation x
severity, so the ordinary pipeline (gather -> embed -> score, caches, bootstrap) measures how
every metric moves. ``degradation: none`` gives the clean baseline (severity 0) through the same
path (mono mixdown, resampling to ``sample_rate``, cropping to ``duration_s``, 16-bit WAV).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.audio import mixdown, read_audio, resample
from bench.meta import degradations as D
from bench.models.base import Model
from bench.prompts import Prompt


class DegradedClips(Model):
    """Each prompt's reference clip (``Prompt.reference``), mono, at ``sample_rate``, degraded.

    Args:
        degradation: a key of :data:`bench.meta.degradations.DEGRADATIONS`, or ``"none"``.
        level: the degradation's parameter value (SNR in dB, cut-off in Hz, bits, rate, semitones,
            segment seconds); ignored for ``"none"``.
        sample_rate: rate (Hz) the clip is resampled to before degrading (and written at).
        duration_s: clips are cropped to their first ``duration_s`` seconds before degrading.
        seed: base seed; each clip's noise / shuffle order uses the pipeline's per-item seed.
    """

    name = "degraded"

    def __init__(self, degradation: str = "none", level: float | None = None, sample_rate: int = 48000,
                 resampler: str = "torchaudio_sinc", **kw):
        super().__init__(**kw)
        if degradation != "none" and degradation not in D.DEGRADATIONS:
            raise ValueError(f"unknown degradation {degradation!r}; choose none or one of {sorted(D.DEGRADATIONS)}")
        if degradation != "none" and level is None:
            raise ValueError(f"degradation {degradation!r} needs a level")
        self.degradation = degradation
        self.level = None if degradation == "none" else float(level)
        self.sample_rate = int(sample_rate)
        self.resampler = resampler

    def source(self, path: str) -> np.ndarray:
        """The clean clip: mono (mean), at :attr:`sample_rate`, first :attr:`duration_s` seconds."""
        x, sr = read_audio(path, max_seconds=self.duration_s)
        return resample(mixdown(x, "mean"), sr, self.sample_rate, self.resampler)

    def generate(self, prompts: Sequence[Prompt], seeds: Sequence[int]) -> list[np.ndarray]:
        out = []
        for p, s in zip(prompts, seeds):
            if not p.reference:
                raise ValueError(f"prompt {p.id!r} has no clip to degrade")
            x = self.source(p.reference)
            if self.degradation != "none":
                x = D.apply(self.degradation, x, self.sample_rate, self.level, seed=s)
            peak = float(np.max(np.abs(x))) if x.size else 0.0
            if peak > 1.0:  # e.g. 0 dB SNR noise on a loud clip: scale instead of hard clipping on write
                x = x / peak
            out.append(x.astype(np.float32))
        return out
