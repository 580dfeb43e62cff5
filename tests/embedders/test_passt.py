"""PaSST-S: front end vs torchaudio's Kaldi banks / AugmentMelSTFT, ViT blocks vs torch's
TransformerEncoderLayer, clip protocols vs AudioCraft and stable-audio-metrics, loading."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.audio import AudioError  # noqa: E402
from bench.checkpoints import CheckpointUnavailable  # noqa: E402
from bench.embedders.passt import (  # noqa: E402
    PASST_S_ARCH,
    Block,
    PaSSTEmbedder,
    PasstMel,
    PaSSTNet,
    audiocraft_segments,
    kaldi_mel_banks,
    n_patches,
    stable_audio_windows,
)

SR = 32000
TINY = {"embed_dim": 32, "depth": 2, "num_heads": 2}


def _wave(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    return (0.4 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    net = PaSSTNet(**{**PASST_S_ARCH, **TINY})
    path = tmp_path_factory.mktemp("passt") / "passt-tiny.pt"
    torch.save(net.state_dict(), path)
    return path


def test_kaldi_mel_banks_match_torchaudio():
    kaldi = pytest.importorskip("torchaudio.compliance.kaldi")
    ref, _ = kaldi.get_mel_banks(128, 1024, 32000.0, 0.0, 15000.0, 100.0, -500.0, 1.0)
    ref = torch.nn.functional.pad(ref, (0, 1)).numpy()
    np.testing.assert_allclose(kaldi_mel_banks(128, 1024, 32000, 0.0, 15000.0), ref, rtol=1e-5, atol=1e-6)


def test_front_end_matches_augment_mel_stft_eval():
    """Transcription of hear21passt AugmentMelSTFT.forward (eval: no masking, fmin=0, fmax=15000)."""
    kaldi = pytest.importorskip("torchaudio.compliance.kaldi")
    x = torch.from_numpy(np.stack([_wave(1.3, 1), _wave(1.3, 2)]))
    pre = torch.as_tensor([[[-0.97, 1.0]]])
    y = torch.nn.functional.conv1d(x.unsqueeze(1), pre).squeeze(1)
    y = torch.stft(
        y,
        1024,
        hop_length=320,
        win_length=800,
        center=True,
        normalized=False,
        window=torch.hann_window(800, periodic=False),
        return_complex=True,
    )
    y = torch.view_as_real(y)
    y = (y**2).sum(dim=-1)
    mel_basis, _ = kaldi.get_mel_banks(
        128, 1024, 32000, 0.0, 15000, vtln_low=100.0, vtln_high=-500.0, vtln_warp_factor=1.0
    )
    mel_basis = torch.nn.functional.pad(mel_basis, (0, 1), mode="constant", value=0)
    ref = ((torch.matmul(mel_basis, y) + 0.00001).log() + 4.5) / 5.0
    got = PasstMel()(x)
    assert got.shape == ref.shape == (2, 128, 1 + (len(x[0]) - 1) // 320)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


def _torch_layer(blk: Block, dim: int, heads: int) -> torch.nn.TransformerEncoderLayer:
    ref = torch.nn.TransformerEncoderLayer(
        dim, heads, 4 * dim, dropout=0.0, activation="gelu", layer_norm_eps=1e-6, batch_first=True, norm_first=True
    ).eval()
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(blk.attn.qkv.weight)
        ref.self_attn.in_proj_bias.copy_(blk.attn.qkv.bias)
        ref.self_attn.out_proj.weight.copy_(blk.attn.proj.weight)
        ref.self_attn.out_proj.bias.copy_(blk.attn.proj.bias)
        ref.linear1.load_state_dict(blk.mlp.fc1.state_dict())
        ref.linear2.load_state_dict(blk.mlp.fc2.state_dict())
        ref.norm1.load_state_dict(blk.norm1.state_dict())
        ref.norm2.load_state_dict(blk.norm2.state_dict())
    return ref


def test_block_matches_torch_pre_norm_transformer_layer():
    torch.manual_seed(0)
    blk = Block(32, 4, 4.0).eval()
    ref = _torch_layer(blk, 32, 4)
    x = torch.randn(2, 9, 32)
    with torch.no_grad():
        torch.testing.assert_close(blk(x), ref(x), rtol=1e-5, atol=1e-5)


def test_network_matches_passt_forward_transcription():
    """hear21passt PaSST.forward_features/forward (eval, distilled) on torch reference layers."""
    torch.manual_seed(1)
    net = PaSSTNet(**{**PASST_S_ARCH, **TINY}).eval()
    layers = [_torch_layer(b, 32, 2) for b in net.blocks]
    x = torch.randn(2, 1, 128, 420)
    with torch.no_grad():
        y = net.patch_embed.proj(x)
        y = y + net.time_new_pos_embed[:, :, :, : y.shape[-1]]
        y = y + net.freq_new_pos_embed
        y = y.flatten(2).transpose(1, 2)
        cls = net.cls_token.expand(2, -1, -1) + net.new_pos_embed[:, :1, :]
        dist = net.dist_token.expand(2, -1, -1) + net.new_pos_embed[:, 1:, :]
        y = torch.cat((cls, dist, y), dim=1)
        for layer in layers:
            y = layer(y)
        y = net.norm(y)
        feats = (y[:, 0] + y[:, 1]) / 2
        logits, got_feats = net(x)
    torch.testing.assert_close(got_feats, feats, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logits, net.head(feats), rtol=1e-4, atol=1e-5)


def test_patch_grid_of_ten_seconds_is_12_by_99():
    assert n_patches(10 * SR) == 99
    net = PaSSTNet(**{**PASST_S_ARCH, **TINY})
    assert net.grid == (12, 99) and tuple(net.time_new_pos_embed.shape) == (1, 32, 1, 99)
    with torch.no_grad():
        logits, feats = net(torch.zeros(1, 1, 128, 1000))
    assert logits.shape == (1, 527) and feats.shape == (1, 32)


def test_audiocraft_segments_match_torch_split():
    wav = _wave(23.0)
    win, min_len = 10 * SR, int(0.15 * SR)
    ref = [s.numpy() for s in torch.split(torch.from_numpy(wav), win, dim=-1) if s.size(-1) > min_len]
    got = audiocraft_segments(wav, win, min_len)
    assert [len(g) for g in got] == [len(r) for r in ref] == [win, win, 3 * SR]
    assert len(audiocraft_segments(_wave(20.1), win, min_len)) == 2  # 0.1 s tail dropped


@pytest.mark.parametrize(("seconds", "n_windows"), [(1.0, 1), (10.0, 1), (10.5, 2), (30.0, 5)])
def test_stable_audio_windows(seconds, n_windows):
    wav = _wave(seconds)
    wins = stable_audio_windows(wav, 10 * SR, 5 * SR)
    assert len(wins) == n_windows
    if seconds > 1.5:
        assert all(len(w) == 10 * SR for w in wins)
    else:
        assert len(wins[0]) == len(wav)  # too short to pad: fed as is, like the reference


def test_embedder_outputs_and_protocols(tiny_ckpt):
    ac = PaSSTEmbedder(weights_path=str(tiny_ckpt), arch=TINY, device="cpu")
    wav = _wave(3.0)
    out = ac.embed(wav)
    assert out["emb"].shape == (1, 32) and out["logits"].shape == (1, 527) and out["probs"].shape == (527,)
    # AudioSet names in output order, so KL / Inception Score accept PaSST as a classifier
    assert len(ac.class_names) == 527 and ac.class_names[0] == "Speech" and ac.class_names[137] == "Music"
    np.testing.assert_allclose(out["probs"].sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out["probs"], torch.softmax(torch.from_numpy(out["logits"][0]), -1).numpy(), rtol=1e-5)

    sig = PaSSTEmbedder(weights_path=str(tiny_ckpt), arch=TINY, activation="sigmoid", device="cpu")
    np.testing.assert_allclose(sig.embed(wav)["probs"], 1 / (1 + np.exp(-out["logits"][0])), rtol=1e-5)
    assert sig.id != ac.id

    sa = PaSSTEmbedder(weights_path=str(tiny_ckpt), arch=TINY, protocol="stable_audio", device="cpu")
    padded = np.pad(wav, (0, 7 * SR))  # stable-audio pads a 3-s clip to one 10-s window
    np.testing.assert_allclose(sa.embed(wav)["logits"], ac.embed(padded)["logits"], rtol=1e-5, atol=1e-5)


def test_multi_segment_probs_are_segment_means_and_batching_is_exact(tiny_ckpt):
    emb = PaSSTEmbedder(weights_path=str(tiny_ckpt), arch=TINY, window_s=1.0, device="cpu", batch_size=3)
    wavs = [_wave(2.5, 1), _wave(1.0, 2), _wave(0.4, 3)]
    outs = emb.embed_batch(wavs)
    assert [o["emb"].shape[0] for o in outs] == [3, 1, 1]
    probs = torch.softmax(torch.from_numpy(outs[0]["logits"]), -1).mean(0).numpy()
    np.testing.assert_allclose(outs[0]["probs"], probs, rtol=1e-5)
    for w, o in zip(wavs, outs, strict=True):
        np.testing.assert_allclose(emb.embed(w)["logits"], o["logits"], rtol=1e-4, atol=1e-5)
    with pytest.raises(AudioError, match="too short"):
        emb.embed(_wave(0.1))


def test_wrong_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "bad.pt"
    torch.save({"patch_embed.proj.weight": torch.zeros(32, 1, 16, 16)}, path)
    with pytest.raises(RuntimeError, match="Missing key"):
        PaSSTEmbedder(weights_path=str(path), arch=TINY, device="cpu")


def test_offline_without_weights_says_how_to_provide(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GENAUDIO_BENCH_PASST_WEIGHTS", raising=False)
    with pytest.raises(CheckpointUnavailable) as exc:
        PaSSTEmbedder(device="cpu")
    msg = str(exc.value)
    assert "passt-s-f128-p16-s10-ap.476-swa.pt" in msg and "github.com/kkoutini/PaSST/releases" in msg
    assert "embedder.passt.weights_path" in msg and "GENAUDIO_BENCH_PASST_WEIGHTS" in msg


def test_hydra_config_instantiates(tiny_ckpt):
    hydra_utils = pytest.importorskip("hydra.utils")
    from pathlib import Path

    from omegaconf import OmegaConf

    cfg = OmegaConf.merge(
        {"device": "cpu", "batch_size": 2}, OmegaConf.load(Path(__file__).parents[2] / "bench/configs/embedder/passt.yaml")
    )
    cfg.passt.weights_path = str(tiny_ckpt)
    cfg.passt.arch = TINY
    emb = hydra_utils.instantiate(cfg.passt)
    assert isinstance(emb, PaSSTEmbedder) and emb.audio.sample_rate == SR and emb.protocol == "audiocraft"
