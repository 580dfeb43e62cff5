"""Real audio for the embedder parity tests: fadtk's sample clips (MusicGen/MusicLM/Mubert
generations, 10 s, 48 kHz mono Opus, MIT licence), shipped in the ``fadtk`` wheel that
``scripts/setup.sh`` installs. Tests skip (with the reason) when the wheel is missing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bench.audio import resample


def _samples_dir() -> Path:
    fadtk = pytest.importorskip("fadtk", reason="fadtk wheel (sample clips) not installed; run scripts/setup.sh")
    folder = Path(fadtk.__file__).parent / "test" / "samples"
    if not folder.is_dir():
        pytest.skip(f"fadtk sample clips missing at {folder}")
    return folder


def load_fadtk_clip(name: str, sr: int | None = None, seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 ``(samples,)`` of ``fadtk/test/samples/<name>.opus`` (first ``seconds``), resampled to
    ``sr`` with the project's default resampler when given."""
    import soundfile as sf

    wav, native = sf.read(str(_samples_dir() / f"{name}.opus"), dtype="float32", always_2d=True)
    wav = wav.mean(axis=1)
    if seconds is not None:
        wav = wav[: int(round(seconds * native))]
    if sr is not None and sr != native:
        wav = resample(wav, native, sr)
    return np.ascontiguousarray(wav, dtype=np.float32), sr or native


@pytest.fixture
def fadtk_clip() -> Callable[..., tuple[np.ndarray, int]]:
    """``fadtk_clip(name, sr=None, seconds=None) -> (wav, sr)``; see :func:`load_fadtk_clip`."""
    return load_fadtk_clip
