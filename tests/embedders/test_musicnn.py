"""musicnn: preprocessing vs librosa, the torch nets vs an NHWC numpy transcription of musicnn/models.py
(run on the real TF weights), tag sanity on clearly different clips, determinism, batching, errors.

Needs the ``musicnn==0.1.0`` wheel (scripts/setup.sh installs it with --no-deps); skips without it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

from bench.embedders.base import EmbedderUnavailable  # noqa: E402
from bench.embedders.musicnn import (  # noqa: E402
    MSD_LABELS,
    MTT_LABELS,
    MusicnnEmbedder,
    installed_package_dir,
    log_mel,
    make_patches,
    mel_filterbank_slaney,
    model_variables,
    time_to_frames,
)
from bench.formats.tf_checkpoint import TFCheckpoint  # noqa: E402
from tests.parity import fadtk_clip_path  # noqa: E402

SR = 16000


def _root() -> Path:
    root = installed_package_dir()
    if root is None or not (root / "MSD_musicnn" / ".index").is_file():
        pytest.skip("musicnn==0.1.0 wheel not installed (pip install --no-deps musicnn==0.1.0)")
    return root


@pytest.fixture(scope="module")
def mtt() -> MusicnnEmbedder:
    _root()
    return MusicnnEmbedder("MTT_musicnn", device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def msd() -> MusicnnEmbedder:
    _root()
    return MusicnnEmbedder("MSD_musicnn", device="cpu", batch_size=4)


# -- synthetic but clearly different "music" -----------------------------------------------------


def piano_like(seconds: float = 6.0) -> np.ndarray:
    """A slow melody of decaying harmonic tones (C major arpeggio), like solo piano."""
    t = np.arange(int(seconds * SR)) / SR
    out = np.zeros_like(t)
    notes = [261.6, 329.6, 392.0, 523.3, 440.0, 349.2, 293.7, 261.6] * 4
    for k, f0 in enumerate(notes):
        s = int(k * 0.6 * SR)
        if s >= len(t):
            break
        tt = t[s:] - t[s]
        out[s:] += sum(0.5**h * np.sin(2 * np.pi * f0 * (h + 1) * tt) for h in range(6)) * np.exp(-3 * tt)
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def drum_like(seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    """A 120 bpm kick / snare (noise burst) pattern with hi-hats on the off-beats."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n)
    step = SR // 4
    for b in range(n // step):
        s = b * step
        tt = np.arange(min(step, n - s)) / SR
        if b % 2 == 0:  # kick: pitch-swept sine
            out[s : s + len(tt)] += np.sin(2 * np.pi * (50 + 100 * np.exp(-30 * tt)) * tt) * np.exp(-15 * tt)
        else:  # snare: noise burst
            out[s : s + len(tt)] += 0.5 * rng.standard_normal(len(tt)) * np.exp(-30 * tt)
        h = s + step // 2
        m = min(800, n - h)
        if m > 0:
            out[h : h + m] += 0.2 * rng.standard_normal(m) * np.exp(-np.arange(m) / 100)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def _top(emb: MusicnnEmbedder, probs: np.ndarray, k: int) -> list[str]:
    return [emb.class_names[i] for i in np.argsort(probs)[::-1][:k]]


# -- preprocessing vs librosa (the reference musicnn used) ---------------------------------------


def test_mel_filterbank_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=SR, n_fft=512, n_mels=96)
    np.testing.assert_allclose(mel_filterbank_slaney(SR, 512, 96), ref, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("seconds", [3, 3.1, 1.0, 0.5, 2.0, 10.0])
def test_time_to_frames_matches_librosa(seconds: float) -> None:
    librosa = pytest.importorskip("librosa")
    assert time_to_frames(seconds) == int(librosa.time_to_frames(seconds, sr=SR, n_fft=512, hop_length=256))
    if seconds == 3:
        assert time_to_frames(seconds) + 1 == 187  # the models' n_frames


def test_log_mel_matches_librosa_float32() -> None:
    librosa = pytest.importorskip("librosa")
    y = drum_like(2.0) + piano_like(2.0)
    S = librosa.feature.melspectrogram(y=y, sr=SR, hop_length=256, n_fft=512, n_mels=96, pad_mode="reflect").T
    ref = np.log10(10000 * S.astype(np.float32) + 1)
    ours = log_mel(torch.from_numpy(y), torch.from_numpy(mel_filterbank_slaney(SR, 512, 96))).numpy()
    assert ours.shape == ref.shape == (1 + len(y) // 256, 96)
    np.testing.assert_allclose(ours, ref, atol=2e-4, rtol=1e-4)
    # The extractor casts S to float16 before 10000 * S. Under numpy 1.x (musicnn's era) the python int
    # promoted the product to float32, so only the float16 rounding of S mattered: stay within that.
    legacy = np.log10(np.float32(10000) * S.astype(np.float16).astype(np.float32) + 1)
    np.testing.assert_allclose(ours, legacy, atol=5e-4)
    # Under numpy >= 2 (NEP 50) the product stays float16 and overflows on loud bins; ours stays finite.
    with np.errstate(over="ignore"):
        assert np.isinf(np.float16(10000) * S.astype(np.float16)).any()
    assert np.isfinite(ours).all()


@pytest.mark.parametrize("n_total, hop", [(626, 187), (626, 61), (187, 187), (188, 187), (900, 93)])
def test_patches_match_extractor_batching(n_total: int, hop: int) -> None:
    rep = np.random.default_rng(0).standard_normal((n_total, 96)).astype(np.float32)
    # musicnn.extractor.batch_data, transcribed
    ref = [rep[s : s + 187] for s in range(0, rep.shape[0] - 187 + 1, hop)]
    ours = make_patches(torch.from_numpy(rep), 187, hop).numpy()
    np.testing.assert_array_equal(ours, np.stack(ref))


def test_short_clip_padding() -> None:
    rep = torch.arange(50 * 96, dtype=torch.float32).reshape(50, 96)
    rep_pad = make_patches(rep, 187, 187, "repeat")
    assert rep_pad.shape == (1, 187, 96)
    np.testing.assert_array_equal(rep_pad[0, 50:100].numpy(), rep.numpy())
    zero_pad = make_patches(rep, 187, 187, "zero")
    assert float(zero_pad[0, 50:].abs().sum()) == 0.0


# -- the nets vs a numpy transcription of musicnn/models.py (TF NHWC layout, TF weights as stored) --


def _bn(x: np.ndarray, tf: dict, name: str) -> np.ndarray:
    mean, var = tf[f"{name}/moving_mean"], tf[f"{name}/moving_variance"]
    return (x - mean) / np.sqrt(var + 1e-3) * tf[f"{name}/gamma"] + tf[f"{name}/beta"]


def _conv_valid(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """TF conv2d padding='valid' on one example: x (H, W, C), kernel (kh, kw, C, O) -> (H', W', O)."""
    kh, kw = kernel.shape[:2]
    win = sliding_window_view(x, (kh, kw), axis=(0, 1))  # (H', W', C, kh, kw)
    return np.einsum("hwcij,ijco->hwo", win, kernel, optimize=True) + bias


def _conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """TF padding='same', stride 1: pad_before = (k - 1) // 2, rest after."""
    kh, kw = kernel.shape[:2]
    pads = ((kh - 1) // 2, kh - 1 - (kh - 1) // 2), ((kw - 1) // 2, kw - 1 - (kw - 1) // 2), (0, 0)
    return _conv_valid(np.pad(x, pads), kernel, bias)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def musicnn_reference(x: np.ndarray, tf: dict) -> dict[str, np.ndarray]:
    """``build_musicnn`` for one patch ``(187, 96)``."""
    inp = _bn(x[:, :, None], tf, "batch_normalization")  # (T, 96, 1)
    pad7 = np.pad(inp, ((3, 3), (0, 0), (0, 0)))

    def block(z: np.ndarray, conv: str, bn: str, same: bool) -> np.ndarray:
        f = (_conv_same if same else _conv_valid)(z, tf[f"{conv}/kernel"], tf[f"{conv}/bias"])
        return _bn(_relu(f), tf, bn).max(axis=1)  # max_pooling2d over the whole frequency axis, squeeze

    f74 = block(pad7, "conv2d", "batch_normalization_1", False)
    f77 = block(pad7, "conv2d_1", "batch_normalization_2", False)
    s1 = block(inp, "conv2d_2", "batch_normalization_3", True)
    s2 = block(inp, "conv2d_3", "batch_normalization_4", True)
    s3 = block(inp, "conv2d_4", "batch_normalization_5", True)
    front = np.concatenate([f74, f77, s1, s2, s3], axis=1)[:, :, None]  # (T, 561, 1)

    def mid(z: np.ndarray, conv: str, bn: str) -> np.ndarray:
        c = _conv_valid(np.pad(z, ((3, 3), (0, 0), (0, 0))), tf[f"{conv}/kernel"], tf[f"{conv}/bias"])
        return np.transpose(_bn(_relu(c), tf, bn), (0, 2, 1))  # (T, 1, 64) -> (T, 64, 1)

    c1 = mid(front, "conv2d_5", "batch_normalization_6")
    c2 = mid(c1, "conv2d_6", "batch_normalization_7") + c1
    c3 = mid(c2, "conv2d_7", "batch_normalization_8") + c2
    feats = np.concatenate([front, c1, c2, c3], axis=1)  # (T, 753, 1)
    max_pool, mean_pool = feats.max(axis=0), feats.mean(axis=0)  # (753, 1)
    flat = np.concatenate([max_pool, mean_pool], axis=1).reshape(-1)  # tf.layers.flatten of (753, 2)
    flat = _bn(flat, tf, "batch_normalization_9")
    pen = _bn(_relu(flat @ tf["dense/kernel"] + tf["dense/bias"]), tf, "batch_normalization_10")
    logits = pen @ tf["dense_1/kernel"] + tf["dense_1/bias"]
    return {"penultimate": pen, "mean_pool": mean_pool[:, 0], "max_pool": max_pool[:, 0], "logits": logits}


def _max_pool_valid(x: np.ndarray, k: tuple[int, int], s: tuple[int, int]) -> np.ndarray:
    win = sliding_window_view(x, k, axis=(0, 1))[:: s[0], :: s[1]]
    return win.max(axis=(-2, -1))


def vgg_reference(x: np.ndarray, tf: dict) -> dict[str, np.ndarray]:
    """``models.vgg`` for one patch ``(187, 96)``."""
    z = _bn(x[:, :, None], tf, "batch_normalization")
    pools = [((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4))]
    for i, (k, s) in enumerate(pools):
        c = _conv_same(z, tf[f"{i + 1}CNN/kernel"], tf[f"{i + 1}CNN/bias"])
        z = _max_pool_valid(_bn(_relu(c), tf, f"batch_normalization_{i + 1}"), k, s)
    pool5 = z.reshape(-1)
    return {"pool5": pool5, "logits": pool5 @ tf["dense/kernel"] + tf["dense/bias"]}


@pytest.mark.parametrize("model", ["MSD_musicnn", "MTT_vgg"])
def test_net_matches_numpy_transcription_of_models_py(model: str) -> None:
    root = _root()
    emb = MusicnnEmbedder(model, device="cpu")
    ckpt = TFCheckpoint(root / model)
    tf = {k: v.astype(np.float64) for k, v in ckpt.read_all(model_variables(ckpt.names())).items()}
    patch = emb.patches(drum_like(3.2) + piano_like(3.2))[:1]  # a real log-mel patch (1, 187, 96)
    with torch.inference_mode():
        ours = {k: v[0].double().numpy() for k, v in emb.net(patch).items()}
    ref = (musicnn_reference if emb.arch == "musicnn" else vgg_reference)(patch[0].double().numpy(), tf)
    for key, val in ref.items():
        np.testing.assert_allclose(ours[key], val, rtol=1e-3, atol=1e-3, err_msg=key)


# -- behaviour on audio --------------------------------------------------------------------------


def test_tags_are_sensible_on_piano_vs_drums(mtt: MusicnnEmbedder, msd: MusicnnEmbedder) -> None:
    piano, drums = mtt.embed(piano_like()), mtt.embed(drum_like())
    p_idx, d_idx = MTT_LABELS.index("piano"), MTT_LABELS.index("drums")
    assert "piano" in _top(mtt, piano["probs"], 3)
    assert set(_top(mtt, drums["probs"], 5)) & {"drums", "techno", "beat", "beats", "electronic"}
    assert piano["probs"][p_idx] > 3 * drums["probs"][p_idx]
    assert drums["probs"][d_idx] > 3 * piano["probs"][d_idx]
    assert "piano" not in _top(mtt, drums["probs"], 10)
    msd_drums = msd.embed(drum_like())
    assert _top(msd, msd_drums["probs"], 1) == ["electronic"]
    e = MSD_LABELS.index("electronic")
    assert msd_drums["probs"][e] > 2 * msd.embed(piano_like())["probs"][e]
    # embeddings: two drum takes are closer to each other than to the piano
    d2 = mtt.embed(drum_like(seed=1))["emb"].mean(0)
    d1, p = drums["emb"].mean(0), piano["emb"].mean(0)
    assert np.linalg.norm(d1 - d2) < 0.5 * np.linalg.norm(d1 - p)


@pytest.mark.parametrize(
    "clip, expected",
    [
        ("mg-974.opus", {"techno", "electronic"}),
        ("mubert-2120.opus", {"indian", "sitar"}),
        ("mg-66.opus", {"guitar", "rock"}),
        ("mubert-2545.opus", {"piano", "guitar", "slow", "quiet"}),
    ],
)
def test_tags_on_real_generated_music(mtt: MusicnnEmbedder, clip: str, expected: set[str]) -> None:
    from bench.audio import load_audio

    wav = load_audio(fadtk_clip_path(clip), mtt.audio)
    assert set(_top(mtt, mtt.embed(wav)["probs"], 3)) & expected


def test_output_shapes_layers_and_probs(mtt: MusicnnEmbedder) -> None:
    wav = drum_like(6.5)
    n_frames = 1 + len(wav) // 256  # 407 frames -> 2 whole 187-frame patches, the tail is dropped
    out = mtt.embed(wav)
    assert out["emb"].shape == (n_frames // 187, 200) == (2, 200) and out["emb"].dtype == np.float32
    assert out["probs"].shape == (50,) and len(mtt.class_names) == 50
    assert ((out["probs"] > 0) & (out["probs"] < 1)).all()
    tg = MusicnnEmbedder("MTT_musicnn", layer="taggram", device="cpu")
    taggram = tg.embed(wav)
    np.testing.assert_allclose(taggram["probs"], taggram["emb"].mean(0), atol=1e-6)
    np.testing.assert_allclose(taggram["probs"], out["probs"], atol=1e-5)
    pool = MusicnnEmbedder("MTT_musicnn", layer="pool", input_overlap=1.0, device="cpu").embed(wav)
    assert pool["emb"].shape == (len(range(0, n_frames - 187 + 1, 61)), 1506)
    assert mtt.embed(wav[: SR // 2])["emb"].shape == (1, 200)  # shorter than a patch: repeat-padded


def test_params_and_checkpoints(msd: MusicnnEmbedder, mtt: MusicnnEmbedder) -> None:
    p = msd.params()
    assert p["checkpoint_sha256"] == "8579734ee6388f799ed0def4bbd0d1fdcbeaf213ef2a9dc860917bd76a303de6"
    assert p["features"]["n_fft"] == 512 and p["features"]["hop"] == 256 and p["features"]["n_mels"] == 96
    assert p["patch_frames"] == 187 and p["patch_hop_frames"] == 187
    assert p["audio"]["sample_rate"] == 16000 and p["audio"]["resampler"] == "kaiser_best_polyphase"
    assert msd.checkpoints()["musicnn"]["sha256"] == p["checkpoint_sha256"]
    assert msd.name == "musicnn" and mtt.name == "musicnn_mtt"
    hop = MusicnnEmbedder("MSD_musicnn", input_overlap=1.0, device="cpu")
    assert hop.params()["patch_hop_frames"] == 61


def test_missing_checkpoint_raises_with_howto(tmp_path, monkeypatch) -> None:
    with pytest.raises(EmbedderUnavailable, match=r"pip install --no-deps musicnn==0\.1\.0"):
        MusicnnEmbedder(checkpoint=str(tmp_path), device="cpu")
    monkeypatch.setenv("GENAUDIO_BENCH_MUSICNN_DIR", str(tmp_path / "nope"))
    with pytest.raises(EmbedderUnavailable, match="GENAUDIO_BENCH_MUSICNN_DIR"):
        MusicnnEmbedder(device="cpu")
    monkeypatch.delenv("GENAUDIO_BENCH_MUSICNN_DIR")
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path))
    monkeypatch.setattr("bench.embedders.musicnn.installed_package_dir", lambda: None)
    with pytest.raises(EmbedderUnavailable, match=r"embedder\.<key>\.checkpoint "):
        MusicnnEmbedder(device="cpu")


def test_explicit_dir_and_corrupt_copy(tmp_path) -> None:
    src = _root() / "MTT_musicnn"
    dst = tmp_path / "MTT_musicnn"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".meta", "*.tsv"))
    ok = MusicnnEmbedder("MTT_musicnn", checkpoint=str(tmp_path), device="cpu")
    assert ok.checkpoints()["musicnn"]["path"].startswith(str(tmp_path))
    data = dst / ".data-00000-of-00001"
    entry = TFCheckpoint(dst).entries["conv2d_5/kernel"]  # a model weight (not an Adam slot)
    raw = bytearray(data.read_bytes())
    raw[entry.offset + 123] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(EmbedderUnavailable, match="sha256"):
        MusicnnEmbedder("MTT_musicnn", checkpoint=str(dst), device="cpu")
    with pytest.raises(EmbedderUnavailable, match="crc32c"):
        MusicnnEmbedder("MTT_musicnn", checkpoint=str(dst), verify_sha256=False, device="cpu")
