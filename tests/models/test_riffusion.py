"""Riffusion: the image -> audio conversion against known signals, and the adapter on a tiny random
``StableDiffusionPipeline`` (diffusers' fast-test component configs) saved and loaded back."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from bench.models.riffusion import (  # noqa: E402
    RiffusionModel,
    SpectrogramParams,
    image_from_spectrogram,
    peak_normalize,
    spectrogram_from_image,
    waveform_from_spectrogram,
)
from bench.prompts import Prompt  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")

SP = SpectrogramParams()


def _mel_amplitudes(wav: np.ndarray, n_mels: int) -> np.ndarray:
    """riffusion's forward transform: |STFT| (400 ms FFT, 100 ms window, 10 ms hop) -> HTK mel, 0-10 kHz."""
    import torchaudio.transforms as T

    spec = T.Spectrogram(n_fft=SP.n_fft, win_length=SP.win_length, hop_length=SP.hop_length, power=None)
    mel = T.MelScale(
        n_mels=n_mels, sample_rate=SP.sample_rate, f_min=0, f_max=10000, n_stft=SP.n_fft // 2 + 1, mel_scale="htk"
    )
    return mel(spec(torch.from_numpy(wav)).abs()).numpy()


def test_params_match_riffusion_defaults():
    assert (SP.n_fft, SP.win_length, SP.hop_length) == (17640, 4410, 441)


def test_pixel_mapping():
    img = np.array([[0, 255], [128, 64]], dtype=np.uint8)  # row 0 = top = highest band
    mel = spectrogram_from_image(img)
    # flipped vertically: output row 0 is the image's bottom row
    np.testing.assert_allclose(mel[0], [(127 / 255) ** 4 * 30e6, (191 / 255) ** 4 * 30e6], rtol=1e-6)
    np.testing.assert_allclose(mel[1], [30e6, 0.0], rtol=1e-6)


def test_image_roundtrip_and_audio_keeps_the_tones():
    sr = SP.sample_rate
    t = np.arange(sr // 2) / sr
    wav = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 1500 * t)).astype(np.float32)
    mel = _mel_amplitudes(wav, 512)
    img = image_from_spectrogram(mel)
    assert img.dtype == np.uint8 and img.shape == (*mel.shape, 3)
    back = spectrogram_from_image(img)
    # quantisation to 8 bits under a 4th-root curve: loud bins come back within a few percent
    loud = mel > 0.1 * mel.max()
    np.testing.assert_allclose(back[loud] / 30e6, (mel / mel.max())[loud], rtol=0.05)
    out = waveform_from_spectrogram(back, SP, seed=0)
    assert out.shape == ((mel.shape[1] - 1) * SP.hop_length,)
    spec = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    freqs = np.fft.rfftfreq(out.size, 1 / sr)
    power = spec**2
    near = lambda f0, bw: power[np.abs(freqs - f0) < bw].sum() / power.sum()  # noqa: E731
    # the tones come back at their frequencies with the input's power split (0.5^2 : 0.3^2)
    assert near(440, 20) == pytest.approx(0.25 / 0.34, abs=0.03)
    assert near(1500, 30) == pytest.approx(0.09 / 0.34, abs=0.03)
    fast = dataclasses.replace(SP, num_griffin_lim_iters=2)
    np.testing.assert_array_equal(waveform_from_spectrogram(back, fast, 3), waveform_from_spectrogram(back, fast, 3))
    assert np.abs(peak_normalize(out)).max() == pytest.approx(10 ** (-0.1 / 20), rel=1e-6)


@pytest.fixture(scope="module")
def tiny_riffusion(tiny_checkpoint):
    return tiny_checkpoint("riffusion")


def test_adapter_width_from_duration_and_peak_normalised(tiny_riffusion):
    m = RiffusionModel(
        checkpoint=str(tiny_riffusion),
        device="cpu",
        duration_s=0.5,
        num_inference_steps=2,
        height=64,
        width="auto",
        spectrogram={"num_griffin_lim_iters": 4},
    )
    assert m.sample_rate == 44100 and m.width == 56  # 0.5 s = 51 frames -> 56 px
    prompts = [Prompt("p1", "jazz piano"), Prompt("p2", "techno beat")]
    a, b = m.generate(prompts, [1, 2])
    assert a.shape == (22050,) and np.all(np.isfinite(a))
    assert np.abs(a).max() == pytest.approx(10 ** (-0.1 / 20), rel=1e-5)
    assert b.shape == (22050,) and np.abs(b - a).max() > 1e-3


@pytest.mark.gpu
def test_adapter_generates_on_cuda(tiny_riffusion):
    kw = dict(duration_s=0.5, num_inference_steps=2, height=64, width="auto", spectrogram={"num_griffin_lim_iters": 4})
    m = RiffusionModel(checkpoint=str(tiny_riffusion), device="cuda", **kw)
    prompts = [Prompt("p1", "jazz piano"), Prompt("p2", "techno beat")]
    a, b = m.generate(prompts, [1, 2])
    assert a.shape == b.shape == (22050,) and np.all(np.isfinite(a))
    (b_alone,) = m.generate(prompts[1:], [2])
    np.testing.assert_allclose(b_alone, b, atol=1e-2)
