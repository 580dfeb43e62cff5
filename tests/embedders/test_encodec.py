"""EnCodec embedder: random-init real EnCodec models (encodec 0.1.1), compared with the model's own encoder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("encodec")

from bench.checkpoints import CheckpointUnavailable  # noqa: E402
from bench.embedders.encodec import VARIANTS, EncodecEmbedder, build_encodec_model, to_channels  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parents[2] / "bench" / "configs" / "embedder"


def _random_model(variant: str, seed: int):
    torch.manual_seed(seed)
    return build_encodec_model(variant)


@pytest.fixture(scope="module")
def model24(tmp_path_factory):
    """A random 24 kHz EnCodec and its state dict saved under a non-official name."""
    model = _random_model("24khz", 0)
    path = tmp_path_factory.mktemp("encodec") / "my_encodec_24khz.th"
    torch.save(model.state_dict(), path)
    return model, path


@pytest.fixture(scope="module")
def emb24(model24):
    return EncodecEmbedder(checkpoint=model24[1], device="cpu", batch_size=4)


def _noise(n: int, seed: int, ch: int | None = None) -> np.ndarray:
    shape = (n,) if ch is None else (n, ch)
    return (0.1 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def test_24khz_matches_model_encoder(model24, emb24):
    """Loaded weights (not the embedder's own init) reproduce ``model.encoder``; T = ceil(n / 320) at 75 Hz."""
    x = _noise(31_200, 1)  # 1.3 s, not a multiple of the 320-sample hop
    out = emb24.embed(x)["emb"]
    with torch.no_grad():
        want = model24[0].encoder(torch.from_numpy(x)[None, None])[0].T.numpy()
    assert out.shape == (98, 128) and out.dtype == np.float32
    np.testing.assert_allclose(out, want, atol=1e-5)
    assert emb24.params()["checkpoint_sha256"] == emb24.checkpoints()["encodec"]["sha256"]


def test_24khz_batch_of_mixed_lengths_equals_single(emb24):
    clips = [_noise(24_000, 2), _noise(7_000, 3), _noise(24_000, 4)]
    batch = emb24.embed_batch(clips)
    assert [b["emb"].shape[0] for b in batch] == [75, 22, 75]
    for clip, b in zip(clips, batch):
        np.testing.assert_allclose(b["emb"], emb24.embed(clip)["emb"], atol=1e-5)


def test_48khz_segments_match_model_encoder(tmp_path):
    """48 kHz: 1-s non-overlapping segments, mono duplicated to stereo (fadtk's encodec-emb-48k loop)."""
    model = _random_model("48khz", 5)
    path = tmp_path / "enc48.th"
    torch.save(model.state_dict(), path)
    emb = EncodecEmbedder("48khz", checkpoint=path, device="cpu", batch_size=4)
    assert emb.audio.sample_rate == 48000 and emb.name == "encodec_48k"
    x = _noise(60_000, 6)  # 1.25 s: segments of 48000 and 12000 samples
    out = emb.embed(x)["emb"]
    stereo = torch.from_numpy(np.stack([x, x]))[None]
    with torch.no_grad():
        want = torch.cat([model.encoder(stereo[..., s : s + 48000])[0].T for s in range(0, 60_000, 48000)]).numpy()
    assert out.shape == (150 + 38, 128)
    np.testing.assert_allclose(out, want, atol=1e-5)

    # normalize=True: the encoder input EncodecModel._encode_frame builds (x / (1e-8 + rms)) for each segment
    norm = EncodecEmbedder("48khz", checkpoint=path, normalize=True, device="cpu")
    seen = []
    hook = model.encoder.register_forward_hook(lambda m, inp, o: seen.append(o[0].T.detach().numpy()))
    try:
        with torch.no_grad():
            model._encode_frame(stereo[..., :48000].clone())  # what encode() runs per 1-s segment
    finally:
        hook.remove()
    np.testing.assert_allclose(norm.embed(x[:48000])["emb"], seen[0], atol=1e-5)
    # stereo (samples, 2) input is used as is
    st = _noise(48_000, 7, ch=2)
    with torch.no_grad():
        want_st = model.encoder(torch.from_numpy(st.T.copy())[None])[0].T.numpy()
    np.testing.assert_allclose(emb.embed(st)["emb"], want_st, atol=1e-5)


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
def test_configs(key, variant, model24):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    raw = OmegaConf.load(CONFIG_DIR / f"{key}.yaml")
    assert list(raw) == [key] and raw[key].variant == variant and VARIANTS[variant].config_key == key
    if variant == "24khz":
        cfg = OmegaConf.merge({"device": "cpu", "batch_size": 2}, raw)
        e = instantiate(cfg[key], checkpoint=str(model24[1]))
        assert isinstance(e, EncodecEmbedder) and e.embed(_noise(3200, 8))["emb"].shape == (10, 128)
