"""bench.polyphase: resampy's kaiser_best in polyphase form vs resampy itself (the reference package)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.audio import AudioSpec, prepare, resample
from bench.polyphase import TOLERANCE, resample_kaiser_best

resampy = pytest.importorskip("resampy")

PAIRS = [(48000, 16000), (44100, 16000), (32000, 16000), (22050, 16000), (8000, 16000), (16000, 48000),
         (44100, 48000), (48000, 24000)]


def _signal(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    tone = 0.4 * np.sin(2 * np.pi * 0.01 * t + 0.3) * np.sin(2 * np.pi * 1e-5 * t)
    return (tone + 0.2 * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize(("sr_in", "sr_out"), PAIRS)
def test_matches_resampy_kaiser_best(sr_in, sr_out):
    x = _signal(int(2.3 * sr_in) + 7, sr_in)
    ref = resampy.resample(x.astype(np.float64), sr_in, sr_out, filter="kaiser_best")
    ours = resample_kaiser_best(x, sr_in, sr_out)
    assert ours.shape == ref.shape and ours.dtype == np.float64
    err = np.abs(ours - ref).max()
    assert err < TOLERANCE
    if sr_in % sr_out == 0:  # integer downsampling: resampy's t_out is exact, the same taps; only sum order differs
        assert err < 1e-13


def test_short_input_multichannel_and_errors():
    x = _signal(3000, 1).reshape(-1, 2)  # 1500 frames, stereo: shorter than the filter
    ref = resampy.resample(x.astype(np.float64), 44100, 16000, axis=0, filter="kaiser_best")
    ours = resample_kaiser_best(x, 44100, 16000)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < TOLERANCE
    np.testing.assert_array_equal(resample_kaiser_best(x, 16000, 16000), x.astype(np.float64))
    with pytest.raises(ValueError, match="too small"):
        resample_kaiser_best(np.zeros(2), 48000, 16000)


def test_audio_option_and_spec():
    x = _signal(48000, 3)
    y = resample(x, 48000, 16000, "kaiser_best_polyphase")
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, resample(x, 48000, 16000, "resampy_kaiser_best"), atol=TOLERANCE, rtol=0)
    spec = AudioSpec(resampler="kaiser_best_polyphase")
    assert prepare(x, 48000, spec).shape == (16000,)
    assert AudioSpec(resampler="resampy_kaiser_best").to_dict() != spec.to_dict()  # distinct cache ids
