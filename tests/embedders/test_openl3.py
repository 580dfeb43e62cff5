"""OpenL3 against the official PyTorch port (torchopenl3 1.0.1: its front end, network and
``get_audio_embedding``; random weights loaded into ours through the real loader) on real audio
(fadtk's sample clips); filterbanks vs librosa, the kapre 0.3 front end vs a librosa pipeline, framing
vs openl3's code, weights via the restricted numpy unpickler, embedder API (mono and stereo)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.checkpoints import CheckpointUnavailable  # noqa: E402
from bench.embedders.openl3 import (  # noqa: E402
    OpenL3Embedder,
    OpenL3Spectrogram,
    load_pickled_numpy,
    mel_filterbank,
    openl3_frames,
)
from tests.tiny_embedders import openl3_layer_dict, save_openl3_layers, torchopenl3_reference  # noqa: E402

SR = 48000


def _wave(seconds: float, seed: int = 0, freq: float = 440.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def weights(tiny_embedder_checkpoint):
    return tiny_embedder_checkpoint("openl3")  # openl3_mel256_music_layer_weights.npz, torchopenl3's numpy format


@pytest.fixture(scope="module")
def embedder(weights):
    return OpenL3Embedder(checkpoint=str(weights), device="cpu")


@pytest.mark.filterwarnings("ignore:Empty filters")  # 256 htk bands at n_fft 2048: also empty in openl3
@pytest.mark.parametrize("htk", [True, False])
def test_mel_filterbank_matches_librosa(htk):
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=SR, n_fft=2048, n_mels=256, htk=htk, norm="slaney")
    np.testing.assert_allclose(mel_filterbank(SR, 2048, 256, htk), ref, rtol=1e-5, atol=1e-9)


def test_kapre_v03_front_end_matches_librosa_pipeline():
    """openl3 0.4: tf.signal.stft(pad_end) magnitude -> slaney mel (htk=False) -> kapre-0.1.4 dB."""
    librosa = pytest.importorskip("librosa")
    x = _wave(1.0, 1)
    padded = np.pad(x, (0, 198 * 242 + 2048 - SR))
    mag = np.abs(librosa.stft(padded, n_fft=2048, hop_length=242, window="hann", center=False))
    mel = librosa.filters.mel(sr=SR, n_fft=2048, n_mels=256, htk=False, norm="slaney") @ mag
    db = 10 * np.log10(np.maximum(mel, 1e-10))
    ref = np.maximum(db - db.max(), -80.0)
    got = OpenL3Spectrogram(256, "kapre_v0.3")(torch.from_numpy(x[None]))[0, 0].numpy()
    assert got.shape == ref.shape == (256, 199)
    np.testing.assert_allclose(got, ref, atol=2e-3)


# -- parity with the official code: torchopenl3 1.0.1 -------------------------------------------------


def _torchopenl3_model(input_repr: str, embedding_size: int, slaney: bool, seed: int = 0):
    """:func:`tests.tiny_embedders.torchopenl3_reference`, skipping where torchopenl3 / librosa are missing."""
    pytest.importorskip("librosa")
    pytest.importorskip("torchopenl3.models", reason="torchopenl3==1.0.1 not installed")
    return torchopenl3_reference(input_repr, embedding_size, slaney, seed)


@pytest.mark.filterwarnings("ignore:Empty filters")
def test_kapre_v014_front_end_matches_torchopenl3_custom_mel_stft(fadtk_clip):
    """torchopenl3 ``CustomMelSTFT`` (kapre 0.1.4 port: 'same' padding, float32 conv1d DFT kernels, power,
    mel, sqrt, dB, per-example max, -80 dB floor) on 1-s frames of real music."""
    m = _torchopenl3_model("mel256", 512, slaney=True)
    for name in ("mg-1634", "mlm-1619", "mubert-130"):
        wav, _ = fadtk_clip(name, None, 1.0)  # native 48 kHz
        with torch.no_grad():
            ref = m.speclayer(torch.from_numpy(wav)[None, None]).squeeze(-1)[0]
        got = OpenL3Spectrogram(256, "kapre_v0.1.4")(torch.from_numpy(wav)[None])[0, 0]
        assert got.shape == ref.shape == (256, 199)
        diff = (got - ref).abs()
        # measured: <= 0.003 dB where the reference is above -60 dB, <= 0.21 dB anywhere (the quietest bins,
        # where torchopenl3's float32 DFT-by-convolution rounds; ours is float64, see the float64 test)
        assert diff[ref > -60].max() < 0.01
        assert diff.max() < 0.5


@pytest.mark.filterwarnings("ignore:Empty filters")
def test_kapre_v014_front_end_matches_float64_dft(fadtk_clip):
    """kapre 0.1.4 maths in float64 numpy ('same' padding, DFT, power, slaney htk mel, sqrt, dB) on real music:
    the reference for the low-energy bins where torchopenl3's float32 DFT kernels lose precision."""
    x32 = fadtk_clip("mlm-1619", None, 1.0)[0]
    x = x32.astype(np.float64)
    n_dft, n_hop = 2048, 242
    pad = n_dft - (SR % n_hop)
    xp = np.pad(x, (pad // 2, pad - pad // 2)).astype(np.float64)
    k = np.arange(n_dft // 2 + 1)[:, None] * 2 * np.pi / n_dft * np.arange(n_dft)[None, :]
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_dft) / n_dft)  # hann, fftbins=True
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_dft)[::n_hop]
    power = (frames @ (np.cos(k) * win).T) ** 2 + (frames @ (-np.sin(k) * win).T) ** 2  # (T, 1025)
    librosa = pytest.importorskip("librosa")
    basis = librosa.filters.mel(sr=SR, n_fft=n_dft, n_mels=256, htk=True, norm="slaney", dtype=np.float64)
    mel = np.sqrt(basis @ power.T)
    db = 10 * np.log10(np.maximum(mel, 1e-10))
    ref = np.maximum(db - db.max(), -80.0)
    got = OpenL3Spectrogram(256, "kapre_v0.1.4")(torch.from_numpy(x32[None]))[0, 0].numpy()
    assert got.shape == ref.shape == (256, 199)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-3)


@pytest.mark.filterwarnings("ignore:Empty filters")
@pytest.mark.parametrize(("input_repr", "embedding_size"), [("mel256", 512), ("mel128", 6144)])
def test_torchopenl3_checkpoint_loads_and_embeddings_match(tmp_path, fadtk_clip, input_repr, embedding_size):
    """The official ``PytorchOpenl3`` state dict (released layout: conv/BN names plus the ``speclayer.*``
    buffers, a ``*.pth.tar`` file) loads through our loader (strict); ``torchopenl3.get_audio_embedding``
    (its framing, resampy ``kaiser_best`` from 44.1 kHz, its network) vs ours on real audio."""
    torchopenl3 = pytest.importorskip("torchopenl3")
    m = _torchopenl3_model(input_repr, embedding_size, slaney=True)
    path = tmp_path / f"torchopenl3_{input_repr}_music_{embedding_size}.pth.tar"
    torch.save(m.state_dict(), path)
    ours = OpenL3Embedder(
        input_repr=input_repr, embedding_size=embedding_size, frontend="kapre_v0.1.4", hop_size=0.5,
        checkpoint=str(path), device="cpu",
    )  # fmt: skip
    from bench.audio import prepare

    wav, sr = fadtk_clip("mg-1648", 44100, 1.6)
    ref, _ = torchopenl3.get_audio_embedding(
        wav, sr, model=m, hop_size=0.5, center=True, sampler="resampy", verbose=False
    )
    ref = ref[0].numpy()
    got = ours.embed(prepare(wav, sr, ours.audio))["emb"]
    assert got.shape == ref.shape == (4, embedding_size)
    # measured (mel256/512): max abs <= 3.1e-6 with max |embedding| 0.34
    np.testing.assert_allclose(got, ref, rtol=0, atol=3e-5 * np.abs(ref).max())


def _openl3_reference_frames(audio: np.ndarray, hop_size: float, center: bool) -> np.ndarray:
    """openl3.core._preprocess_audio_batch (mono, 48 kHz) as published."""
    frame_len, hop_len = SR, int(hop_size * SR)
    if center:
        audio = np.pad(audio, (int(frame_len / 2.0), 0), mode="constant", constant_values=0)
    audio_len = audio.size
    if audio_len < frame_len:
        pad_length = frame_len - audio_len
    else:
        pad_length = int(np.ceil((audio_len - frame_len) / float(hop_len))) * hop_len - (audio_len - frame_len)
    if pad_length > 0:
        audio = np.pad(audio, (0, pad_length), mode="constant", constant_values=0)
    n_frames = 1 + int((len(audio) - frame_len) / float(hop_len))
    return np.lib.stride_tricks.as_strided(
        audio, shape=(frame_len, n_frames), strides=(audio.itemsize, hop_len * audio.itemsize)
    ).T


@pytest.mark.parametrize(
    ("seconds", "hop", "center"), [(0.3, 0.5, True), (1.0, 0.5, True), (2.7, 0.1, False), (3.05, 0.5, True)]
)
def test_framing_matches_openl3(seconds, hop, center):
    x = _wave(seconds, 3)
    np.testing.assert_array_equal(openl3_frames(x, hop, center), _openl3_reference_frames(x, hop, center))


def test_restricted_unpickler_loads_numpy_and_refuses_code(tmp_path):
    layers = openl3_layer_dict(seed=3)
    path = tmp_path / "w.npz"
    save_openl3_layers(layers, path)
    ref = np.load(path, allow_pickle=True).item()
    got = load_pickled_numpy(path)
    assert set(got) == set(ref)
    np.testing.assert_array_equal(got["conv2d_3"]["weights"], ref["conv2d_3"]["weights"])

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    bad = tmp_path / "evil.npz"
    bad.write_bytes(pickle.dumps({"conv2d_1": Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_pickled_numpy(bad)


def test_embedder_shapes_and_weights(embedder, tmp_path):
    assert embedder.embed(_wave(0.4))["emb"].shape == (1, 512)  # 0.4 s + 0.5 s centring pad -> one 1-s frame
    # same weights in Keras kernel layout (kh, kw, in, out) load to the same network
    keras = tmp_path / "keras_layout.npz"
    save_openl3_layers(openl3_layer_dict(keras_layout=True), keras)
    other = OpenL3Embedder(checkpoint=str(keras), device="cpu")
    for k, v in embedder.net.state_dict().items():
        torch.testing.assert_close(other.net.state_dict()[k], v)
    assert embedder.params()["frontend"] == "kapre_v0.3" and embedder.checkpoints()["openl3"]["sha256"]


def test_front_end_is_gain_invariant():
    """Per-example max-normalised dB: stable-audio-metrics' peak normalisation does not matter."""
    x = torch.from_numpy(_wave(1.0, 6)[None])
    for frontend in ("kapre_v0.3", "kapre_v0.1.4"):
        spec = OpenL3Spectrogram(256, frontend)
        torch.testing.assert_close(spec(0.1 * x), spec(x), rtol=1e-3, atol=1e-3)


def test_stereo_concatenates_channel_embeddings(weights, embedder):
    st = OpenL3Embedder(checkpoint=str(weights), channels=2, device="cpu")
    assert st.audio.mono == "none"
    left, right = _wave(0.5, 4), _wave(0.5, 5, freq=220.0)
    out = st.embed(np.stack([left, right], axis=1))["emb"]
    ref = embedder.embed_batch([left, right])
    assert out.shape == (1, 1024)
    np.testing.assert_allclose(out[:, :512], ref[0]["emb"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out[:, 512:], ref[1]["emb"], rtol=1e-4, atol=1e-4)
    dup = st._channels(left)  # mono input is duplicated ("fake stereo")
    assert len(dup) == 2 and np.array_equal(dup[0], left) and np.array_equal(dup[1], left)


def test_offline_without_weights_says_how_to_provide(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GENAUDIO_BENCH_OPENL3_WEIGHTS", raising=False)
    with pytest.raises(CheckpointUnavailable) as exc:
        OpenL3Embedder(device="cpu")
    msg = str(exc.value)
    assert "openl3_mel256_music_layer_weights.npz" in msg and "turian/openl3_numpy_weights" in msg
    assert "embedder.openl3.checkpoint" in msg
