"""Shared pieces of the parity tests: fadtk's real sample clips and the error measure they report.

fadtk's wheel ships 23 generated music clips (MusicGen / MusicLM / Mubert, 10 s, 48 kHz mono Opus, MIT
licence) in ``fadtk/test/samples/``; ``scripts/setup.sh`` installs it ``--no-deps``. The package is found
without importing it (``bench.resources.installed_package_dirs``); tests skip, with the reason, without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.resources import installed_package_dirs


def fadtk_samples_dir() -> Path:
    """``fadtk/test/samples`` of the installed wheel (skips the test when it is not there)."""
    dirs = installed_package_dirs("fadtk")
    if not dirs:
        pytest.skip("fadtk wheel (sample clips) not installed; run scripts/setup.sh (installs it --no-deps)")
    folder = dirs[0] / "test" / "samples"
    if not folder.is_dir():
        pytest.skip(f"fadtk sample clips missing at {folder}")
    return folder


def fadtk_clip_path(name: str) -> Path:
    """One of fadtk's clips by file name, e.g. ``"mg-1634.opus"``."""
    return fadtk_samples_dir() / name


def load_fadtk_clip(name: str, sr: int | None = None, seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 ``(samples,)`` of ``fadtk/test/samples/<name>.opus`` (first ``seconds``), resampled to
    ``sr`` with the project's default resampler when given."""
    import soundfile as sf

    from bench.audio import resample

    wav, native = sf.read(str(fadtk_clip_path(f"{name}.opus")), dtype="float32", always_2d=True)
    wav = wav.mean(axis=1)
    if seconds is not None:
        wav = wav[: int(round(seconds * native))]
    if sr is not None and sr != native:
        wav = resample(wav, native, sr)
    return np.ascontiguousarray(wav, dtype=np.float32), sr or native


def max_error(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """``(max |got - want|, that over max |want|)``: the absolute and relative error parity tests bound
    (an all-zero ``want`` counts as 1e-12, so a difference from it is huge rather than a division by zero)."""
    err = float(np.abs(got - want).max())
    return err, err / max(float(np.abs(want).max()), 1e-12)
