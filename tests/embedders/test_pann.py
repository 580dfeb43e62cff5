"""PANN CNN14: mel bank vs librosa, front end vs torchlibrosa, whole model vs the official code --
``Cnn14_16k`` / ``Cnn14`` vendored in frechet-audio-distance 0.3.4 and ``Cnn14`` of the authors' panns_inference
0.1.1 -- with random weights saved as a checkpoint in the published ``{"model": state_dict}`` layout and loaded
through our real path, on synthetic noise and on real music clips from the fadtk wheel; released key layout."""

from __future__ import annotations

import importlib
import importlib.util
import logging

import numpy as np
import pytest
import torch

from bench.checkpoints import CheckpointUnavailable
from bench.embedders.frontends import PANNLogMel, slaney_mel_matrix
from bench.embedders.pann import VARIANTS, PANNEmbedder, audioset_labels
from tests.parity import fadtk_clip_path, max_error
from tests.tiny_embedders import (
    cnn14_16k_reference,
    cnn14_32k_reference,
    fad_pann_module,
    load_reference,
    randomise_bn,
)


@pytest.fixture(scope="module")
def ref16(tiny_embedder_checkpoint):
    """frechet-audio-distance's ``Cnn14_16k`` with the session's random checkpoint (``{"iteration", "model"}``,
    the released layout; tests/tiny_embedders.py)."""
    path = tiny_embedder_checkpoint("pann_16k")
    return load_reference(cnn14_16k_reference(), path, "model"), path


def _noise(n: int, seed: int = 0, scale: float = 0.3) -> np.ndarray:
    return (scale * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_mel_bank_matches_librosa(variant):
    librosa = pytest.importorskip("librosa")

    v = VARIANTS[variant]
    want = librosa.filters.mel(sr=v.sample_rate, n_fft=v.window_size, n_mels=v.mel_bins, fmin=v.fmin, fmax=v.fmax).T
    got = slaney_mel_matrix(v.sample_rate, v.window_size, v.mel_bins, v.fmin, v.fmax)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)


def test_frontend_matches_torchlibrosa():
    librosa = pytest.importorskip("librosa")
    stft = pytest.importorskip("torchlibrosa.stft")
    Spectrogram, LogmelFilterBank = stft.Spectrogram, stft.LogmelFilterBank

    spec = Spectrogram(n_fft=512, hop_length=160, win_length=512, window="hann", center=True, pad_mode="reflect")
    mel = LogmelFilterBank(sr=16000, n_fft=512, n_mels=64, fmin=50, fmax=8000, ref=1.0, amin=1e-10, top_db=None)
    ours = PANNLogMel(16000, 512, 160, 64, 50, 8000)
    t = np.arange(16000 * 2) / 16000
    x = np.stack([_noise(len(t)), (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)])
    x[1, 8000:12000] = 0.0  # digital silence exercises the amin floor
    xt = torch.from_numpy(x)
    with torch.no_grad():
        want, got = mel(spec(xt)).numpy(), ours(xt).numpy()
    assert got.shape == want.shape == (2, 1, 201, 64)
    # float64 truth: centred reflect-padded periodic-Hann STFT, librosa mel bank, 10 log10(max(., 1e-10))
    xp = np.pad(x.astype(np.float64), ((0, 0), (256, 256)), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(xp, 512, axis=1)[:, ::160] * librosa.filters.get_window(
        "hann", 512
    )
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    truth = 10 * np.log10(
        np.maximum(power @ librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=50, fmax=8000).T, 1e-10)
    )
    loud = want > -60.0  # dB; below that float32 STFT rounding dominates in both implementations
    assert np.abs(got - want)[loud].max() < 1e-3
    assert np.abs(got - truth[:, None]).max() < 0.1  # measured 0.04 dB (torchlibrosa: 0.02 dB) at about -95 dB


@pytest.fixture(scope="module")
def emb16(ref16):
    """audioldm_eval-style defaults (first channel, DC removed, padded to 32000 samples)."""
    return PANNEmbedder(checkpoint=str(ref16[1]), device="cpu", batch_size=2)


def test_embedding_and_probs_match_reference_cnn14_16k(ref16, emb16):
    ref, _ = ref16
    x = _noise(16000 * 2 + 500)
    out = emb16.embed(x)
    with torch.no_grad():
        r = ref(torch.from_numpy(emb16.segments(x)), None)
    assert out["emb"].shape == (1, 2048) and out["probs"].shape == (527,) and out["logits"].shape == (527,)
    np.testing.assert_allclose(out["emb"][0], r["embedding"][0].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["probs"], r["clipwise_output"][0].numpy(), rtol=1e-4, atol=1e-6)
    assert emb16.mel_source == "checkpoint" and emb16.class_names == audioset_labels()
    assert emb16.params()["checkpoint_sha256"] == emb16.checkpoints()["cnn14_16k"]["sha256"]


def test_audioldm_eval_preprocessing(emb16):
    """audioldm_eval WaveDataset: ``audio - audio.mean()``, then ``pad_short_audio(min_samples=32000)``."""
    assert emb16.audio.mono == "first" and emb16.audio.resampler == "torchaudio_sinc"
    x = _noise(16000, seed=2) + 0.2  # 1 s with a DC offset
    audio = torch.from_numpy(x)[None]
    audio = audio - audio.mean()
    audio = torch.nn.functional.pad(audio, (0, 32000 - audio.size(-1)), mode="constant", value=0.0)
    np.testing.assert_allclose(emb16.segments(x), audio.numpy(), atol=1e-7)
    long = _noise(40000, seed=3)
    assert emb16.segments(long).shape == (1, 40000)


def test_batches_equal_lengths_only(ref16, emb16):
    wavs = [_noise(32000, 0), _noise(32000, 1), _noise(33000, 2)]
    batch = emb16.embed_batch(wavs)
    for w, b in zip(wavs, batch):
        np.testing.assert_allclose(emb16.embed(w)["emb"], b["emb"], rtol=1e-4, atol=1e-5)
    win = PANNEmbedder(checkpoint=str(ref16[1]), device="cpu", window_s=1.0, hop_s=0.5, min_samples=0)
    out = win.embed(_noise(16000 * 2))
    assert out["emb"].shape == (3, 2048) and out["probs"].shape == (527,)


def test_reference_cnn14_32k_with_its_own_mel_bank(tmp_path, caplog):
    """frechet-audio-distance builds the 32 kHz model with fmax=16000; the checkpoint's filter bank wins."""
    torch.manual_seed(1)
    ref = fad_pann_module().Cnn14(
        sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=16000, classes_num=527
    )
    randomise_bn(ref, 1)
    ref.eval()
    path = tmp_path / "cnn14_32k_random.pth"
    torch.save({"model": ref.state_dict()}, path)
    with caplog.at_level(logging.WARNING, logger="bench.embedders.pann"):
        emb = PANNEmbedder(checkpoint=str(path), variant="cnn14_32k", device="cpu", remove_dc=False, min_samples=0)
    assert "mel filter bank differs" in caplog.text  # configured fmax=14000 vs the file's 16000
    assert emb.audio.sample_rate == 32000
    x = _noise(32000 + 700, seed=5)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)[None], None)["embedding"][0].numpy()
    np.testing.assert_allclose(emb.embed(x)["emb"][0], want, rtol=1e-4, atol=1e-5)
    # a 60 ms clip is padded to the 32 frames CNN14 needs (the reference code would fail on it)
    assert emb.segments(_noise(2000)).shape == (1, 32 * 320)
    assert np.isfinite(emb.embed(_noise(2000))["emb"]).all()


def test_checkpoint_for_other_rate_is_refused(ref16):
    _, path = ref16
    with pytest.raises(CheckpointUnavailable, match="window_size"):
        PANNEmbedder(checkpoint=str(path), variant="cnn14_32k", device="cpu")


def test_offline_missing_weights_explain_how_to_provide(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HOME", str(tmp_path))  # audioldm_eval / panns_inference dirs
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("GENAUDIO_BENCH_PANN", raising=False)
    with pytest.raises(CheckpointUnavailable) as exc:
        PANNEmbedder(device="cpu")
    msg = str(exc.value)
    assert "Cnn14_16k_mAP=0.438.pth" in msg and VARIANTS["cnn14_16k"].url in msg
    assert "embedder.pann.checkpoint" in msg and "GENAUDIO_BENCH_PANN" in msg


def test_published_name_with_wrong_md5_is_refused(tmp_path):
    fake = tmp_path / "Cnn14_16k_mAP=0.438.pth"
    fake.write_bytes(b"truncated download")
    with pytest.raises(CheckpointUnavailable, match="md5"):
        PANNEmbedder(checkpoint=str(fake), device="cpu")


def test_checkpoint_found_in_audioldm_eval_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("GENAUDIO_BENCH_PANN", raising=False)
    d = tmp_path / ".cache" / "audioldm_eval" / "ckpt"
    d.mkdir(parents=True)
    (d / "Cnn14_16k_mAP=0.438.pth").write_bytes(b"placeholder")
    # found there (not "not available"), then refused by the Zenodo md5 check
    with pytest.raises(CheckpointUnavailable, match="md5"):
        PANNEmbedder(device="cpu")


def test_labels():
    names = audioset_labels()
    assert len(names) == 527 and len(set(names)) == 527
    assert (names[0], names[137], names[500], names[526]) == ("Speech", "Music", "Silence", "Field recording")


# -- official code on real audio: panns_inference (32 kHz) and frechet-audio-distance's pipeline (16 kHz) ----




@pytest.fixture(scope="module")
def ref32(tiny_embedder_checkpoint):
    """panns_inference's ``Cnn14`` as its ``AudioTagging`` builds it (32 kHz, fmax 14000) with the session's random
    checkpoint saved like the released ``Cnn14_mAP=0.431.pth`` (``{"iteration", "model"}``; AudioTagging reads
    ``["model"]``)."""
    path = tiny_embedder_checkpoint("pann_32k")
    return load_reference(cnn14_32k_reference(), path, "model"), path


@pytest.mark.parametrize("variant", ["cnn14_16k", "cnn14_32k"])
def test_released_key_layout_is_accepted(variant, ref16, ref32):
    """Every name and shape of the official ``state_dict()`` (front-end STFT kernels and mel bank included)
    is consumed by our loader: the CNN keys load strictly, the front-end keys are checked and used."""
    ref, path = ref16 if variant == "cnn14_16k" else ref32
    layout = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert layout["logmel_extractor.melW"] == ((257, 64) if variant == "cnn14_16k" else (513, 64))
    emb = PANNEmbedder(checkpoint=str(path), variant=variant, device="cpu")
    ours = {k: tuple(v.shape) for k, v in emb.net.state_dict().items()}
    ours["logmel_extractor.melW"] = tuple(emb.frontend.melW.shape)
    real, imag = emb.frontend.dft_kernels()
    ours["spectrogram_extractor.stft.conv_real.weight"] = real.shape
    ours["spectrogram_extractor.stft.conv_imag.weight"] = imag.shape
    assert ours == layout
    sd = ref.state_dict()
    for k, v in emb.net.state_dict().items():
        assert torch.equal(v, sd[k]), k
    assert torch.equal(emb.frontend.melW.float(), sd["logmel_extractor.melW"].float())


# Measured on fadtk's clips (relative = max abs diff / max |reference embedding|):
# - panns_inference Cnn14 on the same 32 kHz waveform: embedding max abs 1.2e-6 / 1.3e-6 (rel 3.4e-7 / 3.7e-7)
#   on mg-1634 / mubert-1348, probabilities rel 3.5e-7 / 4.2e-7;
# - frechet-audio-distance 0.3.4's whole pann pipeline (soundfile + resampy to 16 kHz + Cnn14_16k) vs ours
#   configured as it (mono mean, resampy, no DC removal, no padding), mlm-1698: max abs 1.2e-6 (rel 3.0e-7).
PANN_RTOL = 1e-5


@pytest.mark.parametrize("clip", ["mg-1634.opus", "mubert-1348.opus"])
def test_cnn14_32k_matches_panns_inference_on_real_audio(ref32, clip):
    """``AudioTagging.inference`` = ``model.eval(); model(audio, None)`` on the 32 kHz waveform; both sides get
    the waveform our pipeline decoded and resampled (panns_inference's README resamples with librosa)."""
    from bench.audio import load_audio

    ref, path = ref32
    emb = PANNEmbedder(checkpoint=str(path), variant="cnn14_32k", device="cpu", remove_dc=False, min_samples=0)
    assert emb.mel_source == "checkpoint"
    wav = load_audio(fadtk_clip_path(clip), emb.audio)
    out = emb.embed(wav)
    with torch.no_grad():
        r = ref(torch.from_numpy(wav)[None], None)
    want_e, want_p = r["embedding"][0].numpy(), r["clipwise_output"][0].numpy()
    assert (want_e > 0).mean() > 0.2  # a live network on real music
    assert max_error(out["emb"][0], want_e)[1] < PANN_RTOL
    assert max_error(out["probs"], want_p)[1] < PANN_RTOL


def test_cnn14_16k_matches_frechet_audio_distance_pipeline_on_real_audio(ref16):
    """frechet-audio-distance 0.3.4's pann path end to end: ``load_audio_task`` (soundfile, channel mean, resampy
    to 16 kHz) then ``model(audio, None)["embedding"]``, vs our decode + resample + embed configured the same."""
    from bench.audio import load_audio

    ref, path = ref16
    clip = fadtk_clip_path("mlm-1698.opus")
    fad_utils = (fad_pann_module(), importlib.import_module("_fad_ref.utils"))[1]
    audio = fad_utils.load_audio_task(str(clip), 16000, 1, "float32")
    with torch.no_grad():
        want = ref(torch.tensor(audio).float()[None], None)["embedding"][0].numpy()
    emb = PANNEmbedder(
        checkpoint=str(path), device="cpu", remove_dc=False, min_samples=0,
        audio={"mono": "mean", "resampler": "resampy_kaiser_best"},
    )
    got = emb.embed(load_audio(clip, emb.audio))["emb"][0]
    assert max_error(got, want)[1] < PANN_RTOL
