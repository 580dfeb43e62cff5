"""EnCodec embedder vs fadtk 1.1.0's ``EncodecEmbModel`` (its own ``load_wav``, whole-clip 24 kHz path and 1-s
48 kHz segmenting), random-init real EnCodec models (encodec 0.1.1) saved to a file and loaded by our embedder,
on real music clips from the fadtk wheel; released key layout from a golden list; loading and errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
pytest.importorskip("encodec")

from bench.audio import load_audio  # noqa: E402
from bench.checkpoints import CheckpointUnavailable  # noqa: E402
from bench.embedders.encodec import VARIANTS, EncodecEmbedder, to_channels  # noqa: E402
from tests.parity import fadtk_clip_path, max_error  # noqa: E402
from tests.tiny_embedders import encodec_model, load_reference  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parents[2] / "bench" / "configs" / "embedder"
GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.fixture(scope="module")
def model24(tiny_embedder_checkpoint):
    """encodec's random 24 kHz ``EncodecModel`` and its state dict saved under a non-official name (the session's
    checkpoint, tests/tiny_embedders.py)."""
    path = tiny_embedder_checkpoint("encodec_24khz")
    return load_reference(encodec_model("24khz", 0), path), path


@pytest.fixture(scope="module")
def emb24(model24):
    return EncodecEmbedder(checkpoint=model24[1], device="cpu", batch_size=4)


def _noise(n: int, seed: int, ch: int | None = None) -> np.ndarray:
    shape = (n,) if ch is None else (n, ch)
    return (0.1 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


# -- fadtk's EncodecEmbModel (fadtk 1.1.0 model_loader.py), run as it is, on real audio ------------------------



def _soundfile_torchaudio_load(path, *args, **kwargs):
    """``torchaudio.load`` as fadtk calls it (``(channels, samples)`` float32 in [-1, 1], sr). torchaudio 2.9 needs
    torchcodec for it, which is not installed; soundfile decodes the same Opus stream."""
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return torch.from_numpy(np.ascontiguousarray(x.T)), sr


@pytest.fixture
def fadtk_model(monkeypatch):
    """``fadtk.model_loader.EncodecEmbModel(variant)`` after its own ``load_model()``, with encodec's factory
    returning a given random model instead of downloading the released weights (the only change)."""
    try:
        from fadtk.model_loader import EncodecEmbModel
    except ImportError as exc:
        pytest.skip(f"fadtk cannot be imported ({exc}); requirements.txt installs hypy-utils for it")
    from encodec import EncodecModel

    monkeypatch.setattr("torchaudio.load", _soundfile_torchaudio_load)

    def make(variant: str, model):
        factory = VARIANTS["24khz" if variant == "24k" else "48khz"].factory
        loader = EncodecEmbModel(variant)
        loader.device = torch.device("cpu")
        with monkeypatch.context() as patch:  # only while fadtk builds its model
            patch.setattr(EncodecModel, factory, staticmethod(lambda: model))
            loader.load_model()
        assert loader.model is model
        return loader

    return make



# Measured on fadtk's clips (relative = max abs diff / max |fadtk|), float32 embeddings (``_get_embedding``):
# - 24 kHz, mubert-2120 (stereo, mixed to mono), both resampling 48 -> 24 kHz with torchaudio's sinc:
#   max abs 2.6e-7, rel 2.9e-6;
# - 48 kHz 1-s segments: mubert-2120 (stereo kept) max abs 1.4e-6, rel 3.8e-7; mlm-974 (mono duplicated) 0.
# fadtk stores its embeddings as float16 (``get_embedding``): against those, rel 3.4e-4 -- the largest remaining
# difference (we keep float32).
ENCODEC_RTOL = 1e-5
FLOAT16_RTOL = 1e-3


@pytest.mark.parametrize("clip", ["mubert-2120.opus"])
def test_24khz_matches_fadtk_encodec_emb_on_real_audio(fadtk_model, model24, emb24, clip):
    """fadtk ``encodec-emb``: ``load_wav`` (encodec's ``convert_audio`` to 24 kHz mono) + whole-clip encoder."""
    path = fadtk_clip_path(clip)
    loader = fadtk_model("24k", model24[0])
    full = loader.load_wav(path)
    assert full.shape == (1, 1, 240_000)
    wav = full[..., :96_000]  # 4 s of the resampled clip (CPU time); fadtk encodes what it gets in one pass
    want = loader._get_embedding(wav).numpy()
    stored = loader.get_embedding(wav)  # what fadtk caches and computes FAD from
    got = emb24.embed(load_audio(path, emb24.audio)[:96_000])["emb"]
    assert got.shape == want.shape == (300, 128) and got.dtype == np.float32
    assert max_error(got, want)[1] < ENCODEC_RTOL
    assert stored.dtype == np.float16 and max_error(got, stored.astype(np.float32))[1] < FLOAT16_RTOL


def test_24khz_frame_count(emb24):
    """T = ceil(n / 320) at 75 Hz, for clips of different lengths in one batch."""
    clips = [_noise(24_000, 2), _noise(7_000, 3), _noise(24_000, 4)]
    batch = emb24.embed_batch(clips)
    assert [b["emb"].shape[0] for b in batch] == [75, 22, 75]
    assert emb24.params()["checkpoint_sha256"] == emb24.checkpoints()["encodec"]["sha256"]


def test_48khz_matches_fadtk_segmenting_on_real_audio(fadtk_model, tiny_embedder_checkpoint):
    """fadtk ``encodec-emb-48k``: stereo kept, mono duplicated to stereo, consecutive 1-s segments encoded
    separately and the frames concatenated; our embedder loads the same weights from a file. Clips are cut to
    2.5 s / 1.5 s (CPU time), so the last segment is short."""
    path = tiny_embedder_checkpoint("encodec_48khz")
    model = load_reference(encodec_model("48khz", 5), path)
    emb = EncodecEmbedder("48khz", checkpoint=path, device="cpu", batch_size=4)
    assert emb.audio.sample_rate == 48000 and emb.name == "encodec_48k"
    loader = fadtk_model("48k", model)
    for name, seconds, channels in (("mubert-2120.opus", 2.5, 2), ("mlm-974.opus", 1.5, 1)):
        clip = fadtk_clip_path(name)
        n = int(seconds * 48000)
        wav = loader.load_wav(clip)[..., :n]
        assert wav.shape == (1, 2, n)
        want = loader._get_embedding(wav).numpy()
        x = sf.read(clip, dtype="float32")[0][:n]
        assert x.ndim == channels  # (samples, 2) stereo is used as is; mono is duplicated
        got = emb.embed(x)["emb"]
        assert got.shape == want.shape == (int(seconds * 150), 128)
        assert max_error(got, want)[1] < ENCODEC_RTOL

    # normalize=True: the encoder input EncodecModel._encode_frame builds (x / (1e-8 + rms)) for each segment
    norm = EncodecEmbedder("48khz", checkpoint=path, normalize=True, device="cpu")
    seen = []
    hook = model.encoder.register_forward_hook(lambda m, inp, o: seen.append(o[0].T.detach().numpy()))
    try:
        with torch.no_grad():
            model._encode_frame(wav[..., :48000].clone())  # what encode() runs per 1-s segment
    finally:
        hook.remove()
    np.testing.assert_allclose(norm.embed(x[:48000])["emb"], seen[0], atol=1e-5)


@pytest.mark.parametrize("variant", ["24khz", "48khz"])
def test_released_key_layout_is_accepted(variant, tmp_path):
    """The released file's exact names, shapes and dtypes (golden list: the state dict encodec 0.1.1 loads it
    into strictly; weight-norm ``weight_g``/``weight_v``, quantizer codebook buffers) load through our path."""
    golden = json.loads((GOLDEN / f"encodec_{variant}_keys.json").read_text())["keys"]
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.rand(shape, generator=g).to(getattr(torch, dtype)) for k, (shape, dtype) in golden.items()}
    path = tmp_path / f"released_layout_{variant}.th"
    torch.save(sd, path)
    emb = EncodecEmbedder(variant, checkpoint=path, device="cpu")
    loaded = emb.model.state_dict()
    assert {k: [list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in loaded.items()} == golden
    for k, v in sd.items():
        assert torch.equal(loaded[k], v), k
    sd.pop("encoder.model.0.conv.conv.bias")
    torch.save(sd, path)
    with pytest.raises(CheckpointUnavailable, match="not an EnCodec"):
        EncodecEmbedder(variant, checkpoint=path, device="cpu")


def test_to_channels():
    x = np.arange(6, dtype=np.float32)
    np.testing.assert_array_equal(to_channels(x, 2), [x, x])
    st = np.stack([x, 2 * x], axis=1)
    np.testing.assert_array_equal(to_channels(st, 1), [1.5 * x])
    np.testing.assert_array_equal(to_channels(st, 2), [x, 2 * x])


def test_official_name_with_wrong_digest_is_refused(tmp_path, monkeypatch, model24):
    home = tmp_path / "home"
    (home / "checkpoints").mkdir(parents=True)
    shutil.copy(model24[1], home / "checkpoints" / "encodec_24khz-d7cc33bc.th")
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("GENAUDIO_BENCH_ENCODEC_CKPT", raising=False)
    with pytest.raises(CheckpointUnavailable, match="d7cc33bc"):
        EncodecEmbedder(device="cpu")


def test_offline_without_weights_raises_with_how_to(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("GENAUDIO_BENCH_ENCODEC_CKPT", raising=False)
    with pytest.raises(CheckpointUnavailable) as info:
        EncodecEmbedder(device="cpu")
    msg = str(info.value)
    assert "https://dl.fbaipublicfiles.com/encodec/v0/encodec_24khz-d7cc33bc.th" in msg
    assert "embedder.encodec.checkpoint" in msg and "GENAUDIO_BENCH_ENCODEC_CKPT" in msg


def test_env_var_and_torch_hub_cache_are_used(tmp_path, monkeypatch, model24):
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GENAUDIO_BENCH_ENCODEC_CKPT", str(model24[1]))
    assert EncodecEmbedder(device="cpu").ckpt_path == model24[1]
    with pytest.raises(CheckpointUnavailable):
        EncodecEmbedder("48khz", device="cpu")  # its own env var is unset and nothing is cached


def test_wrong_architecture_checkpoint(tmp_path, model24):
    with pytest.raises(CheckpointUnavailable, match="not an EnCodec 48khz"):
        EncodecEmbedder("48khz", checkpoint=model24[1], device="cpu")


@pytest.mark.parametrize("key,variant", [("encodec", "24khz"), ("encodec_48k", "48khz")])
def test_configs(key, variant):
    from omegaconf import OmegaConf

    raw = OmegaConf.load(CONFIG_DIR / f"{key}.yaml")
    assert list(raw) == [key] and raw[key].variant == variant and VARIANTS[variant].config_key == key
