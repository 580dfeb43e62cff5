"""Real audio for the embedder parity tests: fadtk's sample clips (``tests/parity.py``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tests.parity import load_fadtk_clip


@pytest.fixture
def fadtk_clip() -> Callable[..., tuple[np.ndarray, int]]:
    """``fadtk_clip(name, sr=None, seconds=None) -> (wav, sr)``; see :func:`tests.parity.load_fadtk_clip`."""
    return load_fadtk_clip
