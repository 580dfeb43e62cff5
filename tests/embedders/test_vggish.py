"""VGGish: front end vs the golden reference (Google vggish_input / torchvggish); network, whole pipeline and
PCA postprocessing vs torchvggish 0.2's own code (``_vgg``, ``waveform_to_examples``, ``Postprocessor``) with
random weights saved in the released key layout, on real music clips from the fadtk wheel; framing vs Google
TF-FAD's per-window algorithm; checkpoint resolution and verification."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from bench.audio import load_audio, prepare
from bench.checkpoints import CheckpointUnavailable, hub_hash_prefix
from bench.embedders.frontends import VGGishLogMel
from bench.embedders.vggish import (
    PCA_URL,
    VGGISH_URL,
    VGGishEmbedder,
    log_mel_examples,
    tf_fad_normalize,
)
from tests.parity import fadtk_clip_path, max_error
from tests.tiny_embedders import torchvggish, vggish_pca_params, vggish_reference

GOLDEN = Path(__file__).resolve().parent / "golden" / "vggish_frontend.npz"  # shipped; provenance: golden/README.md
CASES = ("sine440_16k_mono", "noise_44k_stereo", "chirp_48k_mono", "am_22k_mono", "silence_16k_mono")

# Max abs error (log-mel units) of our front end per golden case, measured here:
# - REF_RESAMPLED: golden wave resampled in float64 by resampy as the reference did -> only our
#   STFT/mel/log/framing differ: 2.4e-7 (float32 rounding of the golden file) for all cases.
# - PIPELINE: through bench.audio.prepare (float32 audio, resampy run in float64 since resampling
#   in float32 cost up to 1.04e-3 on am_22k): sine 2.0e-5, noise 9.0e-7, chirp 1.5e-5,
#   am 1.14e-4 (float32 output of prepare), silence 6.4e-8 (errors are amplified in near-silent mel
#   bands, log(x + 0.01)).
# - F32_INPUT: float32 input resampled in float64: the same numbers.
BOUND_REF_RESAMPLED = 1e-6
BOUND_PIPELINE = {
    "sine440_16k_mono": 5e-5,
    "noise_44k_stereo": 2e-6,
    "chirp_48k_mono": 5e-5,
    "am_22k_mono": 1.5e-4,
    "silence_16k_mono": 1e-6,
}
BOUND_F32_INPUT = 1e-4


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(GOLDEN))  # committed with the tests: a missing file is a failure, not a skip


def _examples(wav: np.ndarray, framing: str = "vggish") -> np.ndarray:
    return log_mel_examples(torch.from_numpy(np.asarray(wav)), VGGishLogMel(), framing).numpy()


@pytest.mark.parametrize("case", CASES)
def test_frontend_matches_golden_reference(golden, case):
    import resampy

    wave, sr, ref = golden[f"{case}__wave"], int(golden[f"{case}__sr"]), golden[f"{case}__examples"]
    x = wave.mean(axis=1) if wave.ndim == 2 else wave
    if sr != 16000:
        x = resampy.resample(x, sr, 16000)
    ours = _examples(x)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < BOUND_REF_RESAMPLED


@pytest.mark.parametrize("case", CASES)
def test_pipeline_frontend_matches_golden(golden, case):
    """Default audio spec (resampy kaiser_best, channel mean) + our front end, as the embedder runs."""
    wave, sr, ref = golden[f"{case}__wave"], int(golden[f"{case}__sr"]), golden[f"{case}__examples"]
    x = prepare(wave, sr, VGGishEmbedder.default_audio)
    ours = _examples(x)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < BOUND_PIPELINE[case]


@pytest.mark.parametrize("case", CASES)
def test_frontend_from_float32_audio(golden, case):
    import resampy

    wave, sr, ref = golden[f"{case}__wave"], int(golden[f"{case}__sr"]), golden[f"{case}__examples"]
    x = wave.astype(np.float32)
    x = x.mean(axis=1, dtype=np.float64).astype(np.float32) if x.ndim == 2 else x
    if sr != 16000:
        x = resampy.resample(x.astype(np.float64), sr, 16000)
    assert np.abs(_examples(x) - ref).max() < BOUND_F32_INPUT


def test_tf_fad_framing_matches_per_window_reference():
    """Google TF-FAD computes each 1 s window's own log-mel and keeps its first 96 frames."""
    rng = np.random.default_rng(1)
    wav = (0.1 * rng.standard_normal(16000 * 3 + 1234)).astype(np.float64)
    ours = _examples(wav, "tf_fad")
    fe = VGGishLogMel()
    ref = []
    for start in range(0, len(wav) - 16000 + 1, 8000):
        logmel = fe(torch.from_numpy(wav[start : start + 16000])[None])[0].numpy()
        ref.append(logmel[:96])
    ref = np.stack(ref)
    assert ours.shape == ref.shape == (5, 96, 64)
    assert np.abs(ours - ref).max() < 1e-9


def test_tf_fad_normalize_uses_signed_max_with_floor():
    x = np.array([-0.9, 0.2, 0.5], np.float32)
    np.testing.assert_allclose(tf_fad_normalize(x), x / 0.5)
    quiet = np.array([-0.05, 0.01], np.float32)
    np.testing.assert_allclose(tf_fad_normalize(quiet), quiet / 0.1)


def test_hub_hash_prefix():
    assert hub_hash_prefix(Path(VGGISH_URL).name) == "10086976"
    assert hub_hash_prefix(Path(PCA_URL).name) == "970ea276"
    assert hub_hash_prefix("my_weights.pth") is None


# -- torchvggish's own code (the sdist on PyPI; frechet-audio-distance and fadtk torch.hub-load the same) -------


def fadtk_clip(name: str = "mg-1634.opus") -> tuple[np.ndarray, int]:
    """A real 10 s 48 kHz music clip shipped in the fadtk wheel (MIT); soundfile decodes Opus."""
    x, sr = sf.read(fadtk_clip_path(name), dtype="float32")
    return x, sr


@pytest.fixture(scope="module")
def ref_files(tiny_embedder_checkpoint):
    """torchvggish's ``VGG`` with the weights of the session's random checkpoint in the released
    ``vggish-10086976.pth`` layout (its ``state_dict()``: torchvggish loads that file strictly), plus PCA parameters
    in the released ``vggish_pca_params-970ea276.pth`` layout (tests/tiny_embedders.py)."""
    ckpt, pca_path = tiny_embedder_checkpoint("vggish"), tiny_embedder_checkpoint("vggish_pca")
    return vggish_reference(ckpt), ckpt, pca_path, vggish_pca_params(0)


def _official_examples(wav: np.ndarray, sr: int) -> torch.Tensor:
    """torchvggish's front end: resampy to 16 kHz, numpy log-mel, 0.96 s examples -> (N, 1, 96, 64) float32."""
    return torchvggish().vggish_input.waveform_to_examples(wav.astype(np.float64), sr, return_tensor=True).detach()


def _official_postprocessor(pca: dict):
    """torchvggish's ``Postprocessor`` with the given PCA parameters (its __init__ would download them)."""
    post = object.__new__(torchvggish().torchvggish.Postprocessor)
    post._pca_matrix = torch.as_tensor(pca["pca_eigen_vectors"]).float()
    post._pca_means = torch.as_tensor(pca["pca_means"].reshape(-1, 1)).float()
    return post



def _rand_examples(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 96, 64, generator=g, dtype=torch.float64) * 2 - 2


def test_released_key_layout_is_accepted(ref_files, tmp_path):
    """Every parameter name and shape of the released file (torchvggish ``VGG.state_dict()``) loads, with the
    plain, ``{"state_dict": ...}`` and DataParallel ``module.`` spellings; a missing key is refused."""
    ref, ckpt, _, _ = ref_files
    layout = {k: tuple(v.shape) for k, v in torch.load(ckpt, weights_only=True).items()}
    assert len(layout) == 18 and layout["embeddings.0.weight"] == (4096, 12288)
    assert layout["features.0.weight"] == (64, 1, 3, 3) and layout["embeddings.4.weight"] == (128, 4096)
    emb = VGGishEmbedder(checkpoint=str(ckpt), device="cpu")
    assert {k: tuple(v.shape) for k, v in emb.net.state_dict().items()} == layout
    for name, obj in (
        ("wrapped.pth", {"state_dict": ref.state_dict()}),
        ("ddp.pth", {"module." + k: v for k, v in ref.state_dict().items()}),
    ):
        torch.save(obj, tmp_path / name)
        other = VGGishEmbedder(checkpoint=str(tmp_path / name), device="cpu")
        for k, v in other.net.state_dict().items():
            assert torch.equal(v, emb.net.state_dict()[k]), k
    partial = dict(ref.state_dict())
    partial.pop("embeddings.4.bias")
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(CheckpointUnavailable, match=r"embeddings\.4\.bias"):
        VGGishEmbedder(checkpoint=str(tmp_path / "partial.pth"), device="cpu")


# Measured on fadtk's clips (10 s, 48 kHz), relative = max abs diff / max |reference|:
# - same examples through both networks: 0 (identical float32 ops);
# - whole pipeline (our decode + resampy + torch front end vs torchvggish's resampy + numpy float64 front end):
#   mg-1634 max abs 2.0e-5 (rel 1.6e-6), mubert-130 1.5e-5 (rel 1.8e-6).
VGGISH_NET_RTOL = 1e-6
VGGISH_AUDIO_RTOL = 2e-5


def test_network_matches_torchvggish_on_real_audio(ref_files):
    """torchvggish's examples of a real clip through its ``VGG`` (final ReLU kept) vs our loaded network."""
    ref, ckpt, _, _ = ref_files
    wav, sr = fadtk_clip()
    ex = _official_examples(wav, sr)
    assert ex.shape == (10, 1, 96, 64)
    emb = VGGishEmbedder(checkpoint=str(ckpt), relu=True, device="cpu")
    with torch.no_grad():
        want = ref(ex).numpy()
    got = emb.forward_examples(ex[:, 0].double()).numpy()
    assert (want > 0).mean() > 0.3  # the random network is not dead on real audio
    _, rel = max_error(got, want)
    assert rel < VGGISH_NET_RTOL


@pytest.mark.parametrize("clip", ["mg-1634.opus", "mubert-130.opus"])
def test_embedding_matches_torchvggish_pipeline_on_real_audio(ref_files, clip):
    """The whole path on a real clip: our decode + resampy + torch front end + network vs torchvggish's
    ``waveform_to_examples`` + ``VGG`` with the final ReLU dropped (what frechet-audio-distance 0.3.4 and fadtk
    compute: ``use_activation=False``)."""
    ref, ckpt, _, _ = ref_files
    path = fadtk_clip_path(clip)
    emb = VGGishEmbedder(checkpoint=str(ckpt), device="cpu")
    ours = emb.embed(load_audio(path, emb.audio))["emb"]
    wav, sr = fadtk_clip(clip)
    with torch.no_grad():
        x = ref.features(_official_examples(wav, sr)).permute(0, 2, 3, 1).flatten(1)
        want = nn.Sequential(*list(ref.embeddings.children())[:-1])(x).numpy()
    assert ours.shape == want.shape == (10, 128)
    assert (want < 0).any()  # pre-activation: negative values survive
    _, rel = max_error(ours, want)
    assert rel < VGGISH_AUDIO_RTOL


def test_pca_postprocessing_matches_torchvggish_postprocessor(ref_files):
    """``postprocess="quantized"`` vs torchvggish ``Postprocessor.postprocess`` (the released default path)."""
    ref, ckpt, pca_path, pca = ref_files
    emb = VGGishEmbedder(
        checkpoint=str(ckpt), pca_checkpoint=str(pca_path), relu=True, postprocess="quantized", device="cpu"
    )
    wav, sr = fadtk_clip("mlm-483.opus")
    ex = _official_examples(wav, sr)
    with torch.no_grad():
        want = _official_postprocessor(pca).postprocess(ref(ex)).numpy()
    got = emb.forward_examples(ex[:, 0].double()).numpy()
    assert got.min() >= 0 and got.max() <= 255 and len(np.unique(want)) > 20
    # float rounding may flip a value sitting on a .5 boundary by one step
    assert np.mean(got == want) > 0.99 and np.abs(got - want).max() <= 1
    assert "pca_sha256" in emb.params() and set(emb.checkpoints()) == {"vggish", "pca"}


def test_pre_relu_embedding_of_random_examples(ref_files):
    ref, ckpt, _, _ = ref_files
    emb = VGGishEmbedder(checkpoint=str(ckpt), device="cpu")
    ex = _rand_examples()
    with torch.no_grad():
        feats = ref.features(ex.float()[:, None]).permute(0, 2, 3, 1).reshape(3, -1)
        want = nn.Sequential(*list(ref.embeddings.children())[:-1])(feats).numpy()
    np.testing.assert_allclose(emb.forward_examples(ex).numpy(), want, rtol=1e-4, atol=1e-4)


def test_embed_waveform_end_to_end(golden, ref_files):
    """Golden waveform -> our embedder vs torchvggish's network on the golden (Google front end) examples."""
    ref, ckpt, _, _ = ref_files
    emb = VGGishEmbedder(checkpoint=str(ckpt), relu=True, device="cpu")
    wave, sr = golden["noise_44k_stereo__wave"], int(golden["noise_44k_stereo__sr"])
    out = emb.embed(prepare(wave, sr, emb.audio))
    with torch.no_grad():
        want = ref(torch.from_numpy(golden["noise_44k_stereo__examples"])[:, None]).numpy()
    assert out["emb"].shape == (2, 128) and out["emb"].dtype == np.float32
    np.testing.assert_allclose(out["emb"], want, rtol=1e-3, atol=1e-3)


def test_batching_and_short_clips(ref_files):
    _, ckpt, _, _ = ref_files
    emb = VGGishEmbedder(checkpoint=str(ckpt), device="cpu", batch_size=2, max_examples_per_pass=3)
    rng = np.random.default_rng(3)
    wavs = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000 * 2, 8000, 16000 * 4 + 100)]
    batch = emb.embed_batch(wavs)
    assert [b["emb"].shape[0] for b in batch] == [emb.n_examples(len(w)) for w in wavs] == [2, 1, 4]
    for w, b in zip(wavs, batch):
        np.testing.assert_allclose(emb.embed(w)["emb"], b["emb"], rtol=1e-5, atol=1e-4)  # |emb| ~ 10
    strict = VGGishEmbedder(checkpoint=str(ckpt), device="cpu", pad_short=False)
    assert strict.embed(wavs[1])["emb"].shape == (0, 128)
    tf = VGGishEmbedder(checkpoint=str(ckpt), device="cpu", framing="tf_fad", peak_normalize=True)
    assert tf.embed(wavs[0])["emb"].shape == (3, 128)


def test_params_identify_weights_and_preprocessing(ref_files):
    _, ckpt, _, _ = ref_files
    emb = VGGishEmbedder(checkpoint=str(ckpt), device="cpu")
    p = emb.params()
    assert p["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert p["audio"]["resampler"] == "kaiser_best_polyphase" and p["audio"]["mono"] == "mean"
    assert p["frontend"]["n_mels"] == 64 and p["framing"] == "vggish" and p["relu"] is False


def test_env_var_resolution(ref_files, monkeypatch):
    _, ckpt, _, _ = ref_files
    monkeypatch.setenv("GENAUDIO_BENCH_VGGISH", str(ckpt))
    assert VGGishEmbedder(device="cpu").checkpoint_path == ckpt


def test_offline_missing_weights_explain_how_to_provide(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("GENAUDIO_BENCH_VGGISH", raising=False)
    with pytest.raises(CheckpointUnavailable) as exc:
        VGGishEmbedder(device="cpu", config_key="embedder.vggish_tf")
    msg = str(exc.value)
    assert "vggish-10086976.pth" in msg and VGGISH_URL in msg and "embedder.vggish_tf.checkpoint" in msg


def test_hash_prefix_mismatch_is_refused(tmp_path):
    fake = tmp_path / "vggish-10086976.pth"
    fake.write_bytes(b"not the published file")
    with pytest.raises(CheckpointUnavailable, match="10086976"):
        VGGishEmbedder(checkpoint=str(fake), device="cpu")


def test_wrong_layout_is_refused(tmp_path):
    p = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(2, 2)}, p)
    with pytest.raises(CheckpointUnavailable, match="layout"):
        VGGishEmbedder(checkpoint=str(p), device="cpu")
