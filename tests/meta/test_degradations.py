"""Each degradation does what it says, measured on synthetic signals (and is deterministic)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.meta import degradations as D

SR = 32000


def _sine(freq: float, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _music(seed: int = 0, seconds: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) / (k + 1) for k, f in enumerate([220, 440, 660, 2500, 9000]))
    return (0.3 * x / np.max(np.abs(x)) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _peak_hz(x: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[np.argmax(spec)])


def _band_energy(x: np.ndarray, lo: float, hi: float, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(x.size, 1 / sr)
    return float(spec[(f >= lo) & (f < hi)].sum())


@pytest.mark.parametrize("snr", [30.0, 10.0, 0.0, -5.0])
def test_noise_hits_the_requested_snr_exactly(snr):
    x = _music()
    y = D.add_noise(x, SR, snr, seed=3)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert D.snr_db(x, y) == pytest.approx(snr, abs=1e-3)  # float32 rounding of the sum only
    residual = y.astype(np.float64) - x
    assert abs(np.mean(residual)) < 0.05 * np.std(residual)  # zero-mean, white: flat-ish spectrum
    lo, hi = _band_energy(residual, 100, 4000), _band_energy(residual, 8000, 11900)
    assert 0.5 < (lo / 3900) / (hi / 3900) < 2.0


def test_noise_is_seeded_and_leaves_input_alone():
    x = _music()
    x0 = x.copy()
    a, b, c = D.add_noise(x, SR, 10, seed=1), D.add_noise(x, SR, 10, seed=1), D.add_noise(x, SR, 10, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(x, x0)
    assert np.array_equal(D.add_noise(np.zeros(100, np.float32), SR, 10), np.zeros(100, np.float32))


@pytest.mark.parametrize("cutoff", [1000.0, 4000.0, 8000.0])
def test_lowpass_removes_energy_above_the_cutoff_and_keeps_below(cutoff):
    x = _music(1)
    noise = np.random.default_rng(0).standard_normal(x.size).astype(np.float32) * 0.1
    x = x + noise  # broadband content everywhere
    y = D.lowpass(x, SR, cutoff)
    above_in, above_out = _band_energy(x, 1.5 * cutoff, SR / 2), _band_energy(y, 1.5 * cutoff, SR / 2)
    assert above_out < above_in * 1e-4  # > 40 dB down half an octave above
    below_in, below_out = _band_energy(x, 0, 0.5 * cutoff), _band_energy(y, 0, 0.5 * cutoff)
    assert below_out == pytest.approx(below_in, rel=0.01)
    assert np.array_equal(D.lowpass(x, SR, SR / 2), x)


@pytest.mark.parametrize("bits", [4, 6, 8, 12])
def test_bitdepth_quantises_to_the_grid_with_the_textbook_snr(bits):
    q = 2 ** (bits - 1)
    amp = (q - 1) / q  # the largest positive code: no clipping
    x = _sine(997.0, amp=amp)
    y = D.bitdepth(x, SR, bits)
    assert np.allclose(y * q, np.round(y * q), atol=1e-4)  # on the grid
    assert len(np.unique(y)) <= 2**bits
    assert np.max(np.abs(y - x)) <= 0.5 / q + 1e-6
    # uniform quantisation of a sine: SNR ~ 6.02 bits + 1.76 dB + 20 log10(amplitude / full scale)
    assert D.snr_db(x, y) == pytest.approx(6.02 * bits + 1.76 + 20 * np.log10(amp), abs=1.0)
    assert np.max(D.bitdepth(np.ones(4, np.float32), SR, bits)) == amp  # clipped to the top code


def test_time_stretch_changes_length_not_pitch():
    x = _sine(440.0, seconds=2.0)
    y = D.time_stretch(x, SR, 1.25)
    assert abs(y.size - x.size / 1.25) <= 0.01 * x.size
    assert _peak_hz(y) == pytest.approx(440.0, abs=5.0)
    z = D.time_stretch(x, SR, 0.8)
    assert abs(z.size - x.size / 0.8) <= 0.01 * x.size
    assert np.array_equal(D.time_stretch(x, SR, 1.0), x)


@pytest.mark.parametrize("semitones", [1.0, 4.0, -2.0])
def test_pitch_shift_moves_frequency_keeps_length(semitones):
    x = _sine(440.0, seconds=2.0)
    y = D.pitch_shift(x, SR, semitones)
    assert y.size == x.size
    assert _peak_hz(y) == pytest.approx(440.0 * 2 ** (semitones / 12), rel=0.01)


def test_shuffle_permutes_whole_segments_deterministically():
    x = np.arange(SR * 2, dtype=np.float32) / (SR * 2)  # a ramp: every sample is unique
    seg = int(0.25 * SR)
    y = D.shuffle(x, SR, 0.25, seed=5)
    assert y.size == x.size and not np.array_equal(x, y)
    assert np.array_equal(np.sort(y), np.sort(x))  # the same samples
    order = D.shuffle_order(x.size // seg, 5)
    assert np.array_equal(y, np.concatenate([x[i * seg:(i + 1) * seg] for i in order]))
    starts = y[::seg]
    assert sorted(np.round(starts * 2 * SR).astype(int) // seg) == list(range(x.size // seg))  # segments intact
    assert np.array_equal(y, D.shuffle(x, SR, 0.25, seed=5))
    assert not np.array_equal(y, D.shuffle(x, SR, 0.25, seed=6))
    for s in range(50):  # never the identity, even for two segments
        assert not np.array_equal(D.shuffle_order(2, s), [0, 1])


def test_apply_dispatches_and_rejects_unknown_names():
    x = _music()
    assert np.array_equal(D.apply("bitdepth", x, SR, 8), D.bitdepth(x, SR, 8))
    assert np.array_equal(D.apply("noise", x, SR, 10, seed=4), D.add_noise(x, SR, 10, seed=4))
    with pytest.raises(ValueError, match="unknown degradation"):
        D.apply("reverb", x, SR, 1)
    with pytest.raises(ValueError, match="mono"):
        D.add_noise(np.zeros((10, 2), np.float32), SR, 10)
    assert set(D.LADDERS) == set(D.DEGRADATIONS)
