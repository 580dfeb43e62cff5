"""Base class for audio embedders.

An embedder turns one preprocessed waveform (float32 ``(samples,)`` at
``self.audio.sample_rate``) into a dict of float32 arrays:

- ``"emb"``: frame embeddings ``(n_frames, dim)`` (required; clip-level models give 1 frame),
- ``"probs"``: optional clip-level class probabilities ``(n_classes,)`` for KL / Inception Score.

Everything that changes those numbers (checkpoint digest, preprocessing, windowing, layer)
goes into :meth:`params`, which keys the embedding cache and is written to the manifest: every
constructor argument (:mod:`bench.identity`) except the few in ``non_value_params``, plus what
:meth:`Embedder.derived_params` resolves (weight digests, fixed front-end settings).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from bench.audio import AudioSpec
from bench.identity import Configured

log = logging.getLogger(__name__)


class EmbedderUnavailable(RuntimeError):
    """The backend cannot run here (weights missing offline, optional package absent)."""


def resolve_device(device: str | None) -> str:
    """"auto" -> "cuda" when available else "cpu"."""
    if device in (None, "", "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def host_to_device(x: np.ndarray, device: str):
    """A float array as a tensor on ``device``; to CUDA through pinned memory with a non-blocking copy
    (the host goes on preparing the next input while the copy runs)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x))
    if str(device).startswith("cuda"):
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


class Embedder(Configured, ABC):
    """Audio -> frame embeddings. Subclasses set ``name`` and implement :meth:`embed`.

    Args:
        audio: preprocessing (:class:`AudioSpec` or its dict) applied before :meth:`embed`.
        device: "auto", "cpu", "cuda", "cuda:1", ...
        batch_size: waveforms per forward pass in :meth:`embed_batch`.
    """

    name: str = "embedder"
    #: default preprocessing of the backend (its reference pipeline)
    default_audio: AudioSpec = AudioSpec()
    #: class names when the backend is a classifier (``probs`` output), else None
    class_names: Sequence[str] | None = None
    #: whether the backend can output class probabilities at all (KL / Inception Score need them);
    #: read from the class at config time, so never-computable metric columns are dropped up front
    gives_probs: ClassVar[bool] = False
    #: constructor arguments that never change the embeddings
    non_value_params: ClassVar[tuple[str, ...]] = ("device", "batch_size", "progress", "num_workers", "config_key")

    def __init__(self, audio: AudioSpec | dict | None = None, device: str = "auto", batch_size: int = 8):
        if audio is None:
            self.audio = self.default_audio
        elif isinstance(audio, AudioSpec):
            self.audio = audio
        else:
            merged = {**self.default_audio.to_dict(), **dict(audio)}
            self.audio = AudioSpec.from_dict(merged)
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)

    # -- identity -----------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """Everything that changes the output: name, value-affecting constructor arguments, derived facts."""
        return {"name": self.name, **self.value_params(), **self.derived_params()}

    def derived_params(self) -> dict[str, Any]:
        """Resolved facts that change the output: weight digests (the ``param_aliases`` targets),
        fixed front-end settings. Backends override."""
        return {}

    def checkpoints(self) -> dict[str, dict[str, str]]:
        """``{role: {"path": ..., "sha256": ...}}`` of the weights in use (for the manifest)."""
        return {}

    def require_rate(self, rate: int, who: str | None = None) -> None:
        """Refuse an ``audio.sample_rate`` other than ``rate`` (Hz), the rate the network was trained at."""
        if self.audio.sample_rate != rate:
            raise ValueError(f"{who or self.name} needs {rate} Hz input; got audio.sample_rate="
                             f"{self.audio.sample_rate} (set audio.sample_rate: {rate})")

    # -- compute ------------------------------------------------------------------
    @abstractmethod
    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        """One waveform ``(samples,)`` float32 at ``self.audio.sample_rate`` -> ``{"emb": (T, D), ...}``."""

    def embed_batch(self, wavs: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Several waveforms; backends override to batch on the device."""
        return [self.embed(w) for w in wavs]

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Text embeddings ``(n, D)`` in the audio embedding space (joint text-audio models only)."""
        raise NotImplementedError(f"{self.name} has no text tower")

    @property
    def has_text(self) -> bool:
        return type(self).embed_text is not Embedder.embed_text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, device={self.device!r})"


def frame_windows(n_samples: int, win: int, hop: int, pad_last: bool = True) -> list[tuple[int, int]]:
    """Deterministic ``[start, end)`` windows covering ``n_samples``.

    Clips shorter than ``win`` give one window (to be zero-padded by the caller). With
    ``pad_last`` the tail that does not fill a whole hop gets a final padded window.
    """
    if n_samples <= win:
        return [(0, win)]
    starts = list(range(0, n_samples - win + 1, hop))
    if pad_last and starts[-1] + win < n_samples:
        starts.append(starts[-1] + hop)
    return [(s, s + win) for s in starts]


def window_batch(wav: np.ndarray, win: int, hop: int, pad_last: bool = True) -> np.ndarray:
    """Cut ``wav`` into windows ``(n_windows, win)`` (zero-padded at the end)."""
    spans = frame_windows(len(wav), win, hop, pad_last)
    out = np.zeros((len(spans), win), dtype=np.float32)
    for i, (s, e) in enumerate(spans):
        seg = wav[s:e]
        out[i, : len(seg)] = seg
    return out
