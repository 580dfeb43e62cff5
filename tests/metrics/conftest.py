"""Shared fixtures of the metric tests: peer reference implementations and fadtk's shipped data.

fadtk is looked up as an installed package first, then as an unpacked wheel under /tmp
(``pip download --no-deps fadtk==1.1.0`` + unzip); tests that need it skip otherwise.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _fadtk_dir() -> Path | None:
    from bench.resources import installed_package_dirs

    dirs = installed_package_dirs("fadtk")
    if dirs:
        return dirs[0]
    for cand in sorted(glob.glob("/tmp/*/fadtk/fad.py")):
        return Path(cand).parent
    return None


@pytest.fixture(scope="session")
def peer_fd():
    """frechet_audio_distance's ``calculate_frechet_distance`` (scipy sqrtm), or skip."""
    from benchmarks.peers import frechet_audio_distance_fd

    try:
        return frechet_audio_distance_fd()
    except ImportError as exc:
        pytest.skip(f"frechet_audio_distance unavailable: {exc}")


@pytest.fixture(scope="session")
def fadtk_dir() -> Path:
    d = _fadtk_dir()
    if d is None:
        pytest.skip("fadtk not installed and no unpacked wheel under /tmp")
    return d


@pytest.fixture(scope="session")
def fadtk_fd(fadtk_dir):
    from benchmarks.peers import fadtk_fd as load

    return load(fadtk_dir / "fad.py")


@pytest.fixture(scope="session")
def fma_pop(fadtk_dir) -> Path:
    p = fadtk_dir / "stats" / "fma_pop.npz"
    if not p.is_file():
        pytest.skip("fadtk's fma_pop.npz not found")
    return p


def _random_gaussian(rng: np.random.Generator, n: int, d: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """Frames ``(n, d)`` with a random correlated covariance."""
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ a * scale + shift + rng.normal(size=d) * 0.1


@pytest.fixture(scope="session")
def random_gaussian():
    """``random_gaussian(rng, n, d, shift=0, scale=1)`` -> correlated Gaussian frames ``(n, d)``."""
    return _random_gaussian
