"""PaSST-S against the official code (hear21passt 0.0.26: its model, front end and wrapper, random
weights loaded into ours through the real loader) on real audio (fadtk's sample clips); clip protocols
vs AudioCraft and stable-audio-metrics; mel banks vs torchaudio; loading and errors."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.audio import AudioError  # noqa: E402
from bench.checkpoints import CheckpointUnavailable  # noqa: E402
from bench.embedders.passt import (  # noqa: E402
    PASST_S_ARCH,
    PaSSTEmbedder,
    PasstMel,
    PaSSTNet,
    audiocraft_segments,
    kaldi_mel_banks,
    n_patches,
    stable_audio_windows,
)
from tests.tiny_embedders import PASST_TINY  # noqa: E402

SR = 32000
TINY = PASST_TINY


def _wave(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    return (0.4 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_ckpt(tiny_embedder_checkpoint):
    return tiny_embedder_checkpoint("passt")


def test_kaldi_mel_banks_match_torchaudio():
    kaldi = pytest.importorskip("torchaudio.compliance.kaldi")
    ref, _ = kaldi.get_mel_banks(128, 1024, 32000.0, 0.0, 15000.0, 100.0, -500.0, 1.0)
    ref = torch.nn.functional.pad(ref, (0, 1)).numpy()
    np.testing.assert_allclose(kaldi_mel_banks(128, 1024, 32000, 0.0, 15000.0), ref, rtol=1e-5, atol=1e-6)


# -- parity with the official code: hear21passt 0.0.26 ------------------------------------------------


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """hear21passt's own ``passt_s_swa_p16_128_ap476`` + ``AugmentMelSTFT`` + ``PasstBasicWrapper``, built as
    ``hear21passt.base.get_basic_model`` does but with random weights (every parameter perturbed so LayerNorm
    gains/biases and the positional embeddings all matter); its ``state_dict()`` -- the released checkpoint's
    layout -- is saved like the released ``.pt`` file."""
    pytest.importorskip("timm", reason="hear21passt needs timm")
    passt = pytest.importorskip("hear21passt.models.passt", reason="hear21passt==0.0.26 not installed")
    from hear21passt.models.preprocess import AugmentMelSTFT
    from hear21passt.wrapper import PasstBasicWrapper

    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = passt.get_model(arch="passt_s_swa_p16_128_ap476", pretrained=False)
        mel = AugmentMelSTFT(
            n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=48, timem=192, htk=False,
            fmin=0.0, fmax=None, norm=1, fmin_aug_range=10, fmax_aug_range=2000,
        )  # fmt: skip
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    wrapper = PasstBasicWrapper(mel=mel, net=net, mode="all").eval()
    path = tmp_path_factory.mktemp("passt-official") / "passt-official-random.pt"
    torch.save(net.state_dict(), path)
    return wrapper, path


def _official(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        return fn(*args)


def test_front_end_matches_official_augment_mel_stft(official, fadtk_clip):
    wrapper, _ = official
    wav, _ = fadtk_clip("mg-1648", SR, 2.5)
    x = torch.from_numpy(np.stack([wav, wav[::-1].copy()]))
    ref = _official(wrapper.mel, x)
    got = PasstMel()(x)
    assert got.shape == ref.shape == (2, 128, 1 + (x.shape[1] - 1) // 320)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-5)  # measured: 0.0


def test_released_layout_loads_and_matches_official_scene_embeddings(official, fadtk_clip):
    """hear21passt ``get_scene_embeddings`` (mode "all": logits ++ features) on a <= 10-s real clip equals
    our one-segment output, with the official state dict loaded through our real loader (strict)."""
    wrapper, path = official
    ours = PaSSTEmbedder(checkpoint=str(path), device="cpu")
    for name in ("mg-1634", "mlm-1619"):
        wav, _ = fadtk_clip(name, SR, 2.0)
        ref = _official(wrapper.get_scene_embeddings, torch.from_numpy(wav)[None])[0].numpy()
        out = ours.embed(wav)
        assert out["logits"].shape == (1, 527) and out["emb"].shape == (1, 768)
        # measured max abs difference: logits <= 4.2e-6 (max |logit| 5.6), features <= 1.8e-6 (max 3.2)
        np.testing.assert_allclose(out["logits"][0], ref[:527], rtol=0, atol=1e-4)
        np.testing.assert_allclose(out["emb"][0], ref[527:], rtol=0, atol=1e-4)
        np.testing.assert_allclose(out["probs"], torch.softmax(torch.from_numpy(ref[:527]), -1).numpy(), atol=1e-6)


def test_audiocraft_protocol_matches_official_model_on_split_segments(official, fadtk_clip):
    """AudioCraft's ``PasstKLDivergenceMetric``: ``torch.split`` into windows, drop <= 0.15-s tails, call the
    official model per segment, softmax; here with a 1-s window so a 2.3-s real clip gives 3 segments."""
    wrapper, path = official
    ours = PaSSTEmbedder(checkpoint=str(path), window_s=1.0, device="cpu")
    wav, _ = fadtk_clip("mubert-130", SR, 2.3)
    segs = [s for s in torch.split(torch.from_numpy(wav), SR) if s.shape[-1] > int(0.15 * SR)]
    ref = np.stack([_official(wrapper, s[None])[0].numpy() for s in segs])
    out = ours.embed(wav)
    assert out["logits"].shape == (3, 527)
    np.testing.assert_allclose(out["logits"], ref[:, :527], rtol=0, atol=1e-4)
    np.testing.assert_allclose(out["emb"], ref[:, 527:], rtol=0, atol=1e-4)
    probs = torch.softmax(torch.from_numpy(ref[:, :527]), -1).mean(0).numpy()
    np.testing.assert_allclose(out["probs"], probs, rtol=0, atol=1e-6)


def test_known_checkpoint_variants_load_like_the_released_file(official, tmp_path):
    """hear21passt's ``checkpoint_filter_fn`` accepts a ``{"model": ...}`` wrapper and the pre-conv 2-D
    patch-embedding weight; training checkpoints carry a ``net.`` prefix. All load to the same network."""
    wrapper, _ = official
    state = wrapper.net.state_dict()
    variant = {f"net.{k}": v.clone() for k, v in state.items()}
    variant["net.patch_embed.proj.weight"] = state["patch_embed.proj.weight"].reshape(768, -1).clone()
    path = tmp_path / "wrapped.pt"
    torch.save({"model": variant}, path)
    ours = PaSSTEmbedder(checkpoint=str(path), device="cpu")
    for k, v in ours.net.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)


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
    ac = PaSSTEmbedder(checkpoint=str(tiny_ckpt), arch=TINY, device="cpu")
    wav = _wave(3.0)
    out = ac.embed(wav)
    assert out["emb"].shape == (1, 32) and out["logits"].shape == (1, 527) and out["probs"].shape == (527,)
    # AudioSet names in output order, so KL / Inception Score accept PaSST as a classifier
    assert len(ac.class_names) == 527 and ac.class_names[0] == "Speech" and ac.class_names[137] == "Music"
    np.testing.assert_allclose(out["probs"].sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out["probs"], torch.softmax(torch.from_numpy(out["logits"][0]), -1).numpy(), rtol=1e-5)

    sig = PaSSTEmbedder(checkpoint=str(tiny_ckpt), arch=TINY, activation="sigmoid", device="cpu")
    np.testing.assert_allclose(sig.embed(wav)["probs"], 1 / (1 + np.exp(-out["logits"][0])), rtol=1e-5)

    sa = PaSSTEmbedder(checkpoint=str(tiny_ckpt), arch=TINY, protocol="stable_audio", device="cpu")
    padded = np.pad(wav, (0, 7 * SR))  # stable-audio pads a 3-s clip to one 10-s window
    np.testing.assert_allclose(sa.embed(wav)["logits"], ac.embed(padded)["logits"], rtol=1e-5, atol=1e-5)


def test_multi_segment_probs_are_segment_means_and_batching_is_exact(tiny_ckpt):
    emb = PaSSTEmbedder(checkpoint=str(tiny_ckpt), arch=TINY, window_s=1.0, device="cpu", batch_size=3)
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
        PaSSTEmbedder(checkpoint=str(path), arch=TINY, device="cpu")


def test_offline_without_weights_says_how_to_provide(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GENAUDIO_BENCH_PASST_WEIGHTS", raising=False)
    with pytest.raises(CheckpointUnavailable) as exc:
        PaSSTEmbedder(device="cpu")
    msg = str(exc.value)
    assert "passt-s-f128-p16-s10-ap.476-swa.pt" in msg and "github.com/kkoutini/PaSST/releases" in msg
    assert "embedder.passt.checkpoint" in msg and "GENAUDIO_BENCH_PASST_WEIGHTS" in msg
