"""LAION-CLAP embedder: random-init real architectures, compared with laion_clap's own functions.

laion_clap cannot be imported offline as is (it downloads the bert/roberta/bart tokenizers at import and
roberta-base weights in ``CLAP.__init__``). For the reference side we let those ``from_pretrained`` calls
return a tiny *real* ``RobertaTokenizer`` (BPE vocab, tests/tiny_embedders.py) and a tiny *real* ``RobertaModel``
(1 layer, hidden 768 because laion_clap hard-codes ``Linear(768, 512)``), then run laion_clap's
``CLAP_Module.get_audio_embedding_from_data`` / ``get_text_embedding`` / ``get_audio_features`` /
``get_mel`` with the same weights and inputs as our embedder.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
if importlib.util.find_spec("laion_clap") is None:
    pytest.skip("laion_clap not installed", allow_module_level=True)

import transformers  # noqa: E402

from bench.audio import load_audio  # noqa: E402
from bench.checkpoints import CheckpointUnavailable  # noqa: E402
from bench.embedders.base import EmbedderUnavailable  # noqa: E402
from bench.embedders.clap import (  # noqa: E402
    CLIP_SAMPLES,
    VARIANTS,
    ClapEmbedder,
    clap_windows,
    fill,
    fusion_input,
    hf_cache_roberta,
    int16_roundtrip,
    is_roberta_vocabulary,
    load_clap_state_dict,
    log_mel,
    resolve_roberta_tokenizer,
)
from tests.parity import fadtk_clip_path, max_error  # noqa: E402
from tests.tiny_embedders import (  # noqa: E402
    clap_reference_module,
    clap_text_config,
    hf_stand_ins,
    save_clap_checkpoint,
)

SR = 48000
CONFIG_DIR = Path(__file__).resolve().parents[2] / "bench" / "configs" / "embedder"
GOLDEN = Path(__file__).resolve().parent / "golden"


# -- fixtures -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tok_dir(tiny_embedder_checkpoint) -> Path:
    return tiny_embedder_checkpoint("roberta_tokenizer")


@pytest.fixture(scope="module")
def text_cfg() -> dict:
    return clap_text_config()


@pytest.fixture(scope="module")
def laion(tok_dir, text_cfg):
    """laion_clap's ``training.data`` module and ``CLAP_Module`` class."""
    with hf_stand_ins(tok_dir, text_cfg):
        import laion_clap
        from laion_clap.training import data
    return laion_clap, data


def _reference_module(laion, tok_dir, text_cfg, fusion: bool, seed: int, amodel: str = "HTSAT-tiny"):
    """laion_clap's own CLAP_Module (HTSAT-tiny or -base, RoBERTa), randomly initialised."""
    return clap_reference_module(tok_dir, fusion, seed, amodel)


@pytest.fixture(scope="module")
def ref(laion, tok_dir, text_cfg):
    """Reference non-fusion CLAP_Module; its weights are the checkpoint ``emb`` loads."""
    return _reference_module(laion, tok_dir, text_cfg, fusion=False, seed=0)


@pytest.fixture(scope="module")
def ckpt(ref, tmp_path_factory) -> Path:
    return save_clap_checkpoint(ref.model, tmp_path_factory.mktemp("clap") / "tiny.pt")


@pytest.fixture(scope="module")
def emb(ckpt, tok_dir, text_cfg) -> ClapEmbedder:
    return ClapEmbedder(checkpoint=ckpt, tokenizer=tok_dir, text_config=text_cfg, device="cpu", batch_size=4)


def _audio(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * (220 + 200 * rng.random()) * t) + 0.05 * rng.standard_normal(t.size)
    return x.astype(np.float32)


# -- pure front end vs laion_clap -------------------------------------------------------------------------------
def test_int16_roundtrip_matches_laion_clap(laion):
    data = laion[1]
    x = np.random.default_rng(0).uniform(-1.5, 1.5, 20000).astype(np.float32)
    np.testing.assert_array_equal(int16_roundtrip(x), data.int16_to_float32(data.float32_to_int16(x)))


@pytest.mark.parametrize("filling", ["repeatpad", "pad", "repeat"])
@pytest.mark.parametrize("n", [1000, 3 * SR + 17, CLIP_SAMPLES - 1, CLIP_SAMPLES])
def test_fill_matches_get_audio_features(laion, emb, filling, n):
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    out = laion[1].get_audio_features({}, torch.from_numpy(x), CLIP_SAMPLES, "rand_trunc", filling, emb.audio_cfg)
    np.testing.assert_array_equal(fill(x, CLIP_SAMPLES, filling), out["waveform"].numpy())
    assert not bool(out["longer"])


def test_log_mel_matches_get_mel(laion, emb):
    x = torch.from_numpy(_audio(2.3, 1))
    np.testing.assert_allclose(log_mel(x, emb.audio_cfg).numpy(), laion[1].get_mel(x, emb.audio_cfg).numpy(), atol=1e-4)


@pytest.mark.parametrize("seconds", [4.0, 10.005, 23.3])
def test_fusion_input_matches_get_audio_features(laion, emb, monkeypatch, seconds):
    """Deterministic fusion chunks == laion_clap's with its random draws pinned to the centre of each third."""
    monkeypatch.setattr(np.random, "choice", lambda a: a[len(a) // 2])
    x = _audio(seconds, 2)
    out = laion[1].get_audio_features({}, torch.from_numpy(x), CLIP_SAMPLES, "fusion", "repeatpad", emb.audio_cfg)
    mel, longer = fusion_input(x, emb.audio_cfg)
    assert longer == bool(out["longer"]) == (seconds > 10.01)
    assert mel.shape == out["mel_fusion"].shape == (4, 1001, 64)
    np.testing.assert_allclose(mel.numpy(), out["mel_fusion"].numpy(), atol=1e-4)


# -- windowing (hand-computed expectations) -------------------------------------------------------------------
def test_clap_windows_short_clip_is_one_filled_window():
    x = np.arange(1, 4, dtype=np.float32)
    w = clap_windows(x, win=8, hop=8)
    np.testing.assert_array_equal(w, [[1, 2, 3, 1, 2, 3, 0, 0]])


def test_clap_windows_tail_modes():
    x = np.arange(1, 24, dtype=np.float32)  # 23 samples, windows of 10
    np.testing.assert_array_equal(clap_windows(x, 10, 10, "drop"), [x[:10], x[10:20]])
    np.testing.assert_array_equal(clap_windows(x, 10, 10, "end"), [x[:10], x[10:20], x[13:23]])
    filled = clap_windows(x, 10, 10, "fill")
    np.testing.assert_array_equal(filled[2], [21, 22, 23, 21, 22, 23, 21, 22, 23, 0])
    assert len(clap_windows(x, 10, 10, "fill", min_tail=4)) == 2  # 3-sample tail is below min_tail
    np.testing.assert_array_equal(clap_windows(x, 10, 10, "fill", filling="pad")[2], [21, 22, 23] + [0] * 7)
    # overlapping windows: starts 0, 5, 10; tail = x[15:] (8 samples), repeat-padded once + zeros
    ov = clap_windows(x, 10, 5, "fill")
    np.testing.assert_array_equal(ov[:3], [x[0:10], x[5:15], x[10:20]])
    np.testing.assert_array_equal(ov[3], np.concatenate([x[15:], [0, 0]]))
    assert len(clap_windows(np.ones(20, np.float32), 10, 10)) == 2  # exact multiple: no tail
    with pytest.raises(ValueError):
        clap_windows(x, 10, 11)


# -- end to end vs CLAP_Module --------------------------------------------------------------------------------
def test_audio_embedding_matches_reference(emb, ref):
    """Clips <= 10 s: our (batched) embeddings == CLAP_Module.get_audio_embedding_from_data, one row per clip."""
    clips = [_audio(3.0, 3), _audio(10.0, 4)]
    ours = emb.embed_batch(clips)
    for x, o in zip(clips, ours):
        assert o["emb"].shape == (1, 512) and o["emb"].dtype == np.float32
        np.testing.assert_allclose(o["emb"], ref.get_audio_embedding_from_data(x[None]), atol=2e-5)
        np.testing.assert_allclose(np.linalg.norm(o["emb"], axis=1), 1.0, atol=1e-5)


def test_long_audio_windows_match_reference_crops(emb, ref, monkeypatch):
    """13 s -> windows [0,10) and [10,13)+repeatpad == laion_clap's crop at offset 0 and its 3-s clip."""
    x = _audio(13.0, 5)
    ours = emb.embed(x)["emb"]
    assert ours.shape == (2, 512)
    monkeypatch.setattr(np.random, "randint", lambda lo, hi: 0)  # laion_clap's random crop -> offset 0
    first = ref.get_audio_embedding_from_data(x[None])
    last = ref.get_audio_embedding_from_data(x[None, 10 * SR :])
    np.testing.assert_allclose(ours[0], first[0], atol=2e-5)
    np.testing.assert_allclose(ours[1], last[0], atol=2e-5)




# Measured on fadtk's clips (mg-1741 mono, mubert-2120 stereo, mubert-806; 10 s and 3-4 s cuts), HTSAT-tiny and
# HTSAT-base: max abs difference 0 (the same laion_clap model code and the same float32 operations on the same
# samples). The bound leaves room for thread-count dependent reductions on other machines.
CLAP_RTOL = 1e-5
CLAP_FADTK_RTOL = 1e-5  # measured on mg-1648 (3.5 s, 4 windows): max abs 6.1e-8, rel 4.0e-7


@pytest.mark.parametrize("clip", ["mg-1741.opus", "mubert-2120.opus"])
def test_real_audio_matches_reference(emb, ref, clip):
    """Real 10 s music (mono, and stereo mixed down by channel mean as librosa.load(mono=True) does) and a real
    3 s cut: our decode + embed vs ``CLAP_Module.get_audio_embedding_from_data`` (clips at 48 kHz: no resampling)."""
    path = fadtk_clip_path(clip)
    x = load_audio(path, emb.audio)
    raw, sr = sf.read(path, dtype="float32")
    assert sr == SR
    mono = raw.mean(axis=1, dtype=np.float64).astype(np.float32) if raw.ndim == 2 else raw
    for ours_in, ref_in in ((x, mono), (x[: 3 * SR], mono[: 3 * SR])):
        got = emb.embed(ours_in)["emb"]
        want = ref.get_audio_embedding_from_data(ref_in[None])
        assert got.shape == want.shape == (1, 512)
        assert max_error(got, want)[1] < CLAP_RTOL


def test_fadtk_windows_match_fadtk_clap_laion_model(ref, ckpt, tok_dir, text_cfg):
    """fadtk 1.1.0 ``CLAPLaionModel._get_embedding`` (its own code: int16 round trip, 10-s chunks every 1 s,
    zero-padded, each through ``CLAP_Module.get_audio_embedding_from_data``) on a real clip read by its own
    ``load_wav``, vs ours with ``hop_s=1, tail="all", filling="pad"`` (what ``bench verify`` uses) on the same
    samples. fadtk quantises twice (its own round trip, then laion_clap's), we once: at most 1 LSB apart."""
    try:
        from fadtk.model_loader import CLAPLaionModel
    except ImportError as exc:
        pytest.skip(f"fadtk cannot be imported ({exc})")
    loader = object.__new__(CLAPLaionModel)  # its __init__ downloads the released checkpoint
    loader.name, loader.sr, loader.min_len, loader.type = "clap-laion-audio", SR, -1, "audio"
    loader.model, loader.device = ref, torch.device("cpu")
    wav = loader.load_wav(fadtk_clip_path("mg-1648.opus"))[: int(3.5 * SR)]  # int16 / 32768, float64
    want = loader._get_embedding(wav).numpy()
    ours = ClapEmbedder(
        checkpoint=ckpt, tokenizer=tok_dir, text_config=text_cfg, device="cpu", hop_s=1.0, tail="all", filling="pad"
    )
    got = ours.embed(wav.astype(np.float32))["emb"]
    assert got.shape == want.shape == (4, 512)
    assert max_error(got, want)[1] < CLAP_FADTK_RTOL


def test_text_embedding_matches_reference_and_counts_truncation(emb, ref, caplog):
    long_text = "the sound of " + "rain on a tin roof " * 8  # > 77 byte-level tokens with the tiny vocab
    texts = ["a dog barks", "the sea", long_text]
    with caplog.at_level(logging.WARNING, logger="bench.embedders.clap"):
        ours = emb.embed_text(texts)
    theirs = ref.get_text_embedding(texts)
    assert ours.shape == (3, 512)
    np.testing.assert_allclose(ours, theirs, atol=2e-5)
    assert emb.last_text_truncated == 1 and emb.last_text_truncated_idx == [2]
    assert "truncated" in caplog.text
    emb.embed_text(texts[:2])
    assert emb.last_text_truncated == 0 and emb.text_truncated_total == 1
    assert emb.has_text and emb.embed_text([]).shape == (0, 512)


def test_params_and_checkpoint_record(emb, ckpt):
    p = emb.params()
    assert p["variant"] == "630k-audioset" and p["amodel"] == "HTSAT-tiny" and p["audio"]["sample_rate"] == SR
    assert len(p["checkpoint_sha256"]) == 64
    assert emb.checkpoints()["clap"]["path"] == str(ckpt)
    assert emb.id.startswith("clap-")


# -- fusion and HTSAT-base variants ---------------------------------------------------------------------------
@pytest.mark.slow
def test_fusion_variant_matches_reference(tmp_path, tok_dir, text_cfg, laion, ckpt, monkeypatch):
    """25 s clip (global + 3 centre chunks) and 4 s clip (mel x4) == laion_clap fusion with pinned draws."""
    ref = _reference_module(laion, tok_dir, text_cfg, fusion=True, seed=1)
    path = save_clap_checkpoint(ref.model, tmp_path / "fusion.pt")
    ours = ClapEmbedder("630k-audioset-fusion", checkpoint=path, tokenizer=tok_dir, text_config=text_cfg, device="cpu")
    monkeypatch.setattr(np.random, "choice", lambda a: a[len(a) // 2])
    clips = [_audio(25.0, 8), _audio(4.0, 9)]
    got = ours.embed_batch(clips)
    assert [g["emb"].shape for g in got] == [(1, 512), (1, 512)]
    want = np.concatenate([ref.get_audio_embedding_from_data(c[None]) for c in clips])
    np.testing.assert_allclose(np.concatenate([g["emb"] for g in got]), want, atol=2e-5)
    # the non-fusion checkpoint does not fit the fusion architecture
    with pytest.raises(CheckpointUnavailable, match="does not fit"):
        ClapEmbedder("630k-audioset-fusion", checkpoint=ckpt, text_config=text_cfg, device="cpu")


@pytest.mark.slow
def test_music_variant_matches_reference_on_real_audio(tmp_path, tok_dir, text_cfg, laion):
    """``music`` (HTSAT-base, fadtk's clap-laion-music) vs laion_clap's ``CLAP_Module(amodel="HTSAT-base")``
    on a real 10 s clip and a real 4 s cut (repeat-padded)."""
    ref = _reference_module(laion, tok_dir, text_cfg, fusion=False, seed=2, amodel="HTSAT-base")
    path = save_clap_checkpoint(ref.model, tmp_path / "music.pt")
    music = ClapEmbedder("music", checkpoint=path, tokenizer=tok_dir, text_config=text_cfg, device="cpu")
    assert music.model_cfg["audio_cfg"]["model_name"] == "base"
    x = load_audio(fadtk_clip_path("mubert-806.opus"), music.audio)
    for clip in (x, x[: 4 * SR]):
        got = music.embed(clip)["emb"]
        want = ref.get_audio_embedding_from_data(clip[None])
        assert got.shape == want.shape == (1, 512)
        assert max_error(got, want)[1] < CLAP_RTOL


def _released_checkpoint(arch: str, path: Path, fadtk_unpatched: bool = False) -> dict:
    """A file with the released checkpoint's exact layout (golden names/shapes/dtypes, see
    golden/make_clap_layout.py) inside a training checkpoint dict (epoch, name, optimizer). Every tensor is a
    stride-0 view of one value, so the file is small but loads with the full shapes. fadtk >= 1.1 rewrites the
    position_ids entry of its cached copy to the integer 0 (``unpatch_model_430``)."""
    golden = json.loads((GOLDEN / f"clap_{arch}_keys.json").read_text())["keys"]
    sd = {}
    for i, (k, (shape, dtype)) in enumerate(golden.items()):
        sd[k] = torch.full((), (i % 89) / 89.0, dtype=getattr(torch, dtype)).expand(shape)
    sd["module.text_branch.embeddings.position_ids"] = 0 if fadtk_unpatched else torch.arange(514)[None]
    optimizer = {
        "state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.zeros(3), "exp_avg_sq": torch.zeros(3)}},
        "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "params": [0]}],
    }
    torch.save({"epoch": 45, "name": arch, "state_dict": sd, "optimizer": optimizer}, path)
    return golden


@pytest.mark.slow
@pytest.mark.parametrize(
    "arch,variant,fadtk_unpatched",
    [("htsat_tiny", "630k-audioset", False), ("htsat_tiny_fusion", "630k-fusion", False), ("htsat_base", "music", True)],
)
def test_released_key_layout_is_accepted(arch, variant, fadtk_unpatched, tmp_path):
    """The full-size released layout (RoBERTa-base text tower, ``module.`` keys, position_ids, optimizer state)
    loads through our real path with no missing or unexpected key, every tensor where it belongs."""
    path = tmp_path / VARIANTS[variant].filename.replace(".pt", "_layout.pt")
    golden = _released_checkpoint(arch, path, fadtk_unpatched)
    assert path.stat().st_size < 5_000_000
    emb = ClapEmbedder(variant, checkpoint=path, device="cpu")
    loaded = emb.model.state_dict()
    want = {k.removeprefix("module."): v for k, v in golden.items() if not k.endswith("embeddings.position_ids")}
    assert {k: [list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in loaded.items()} == want
    for i, k in enumerate(golden):
        name = k.removeprefix("module.")
        if name in loaded:
            assert bool((loaded[name] == torch.tensor((i % 89) / 89.0, dtype=loaded[name].dtype)).all()), name


# -- loading and availability ---------------------------------------------------------------------------------
def test_offline_without_weights_raises_with_how_to(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("GENAUDIO_BENCH_CLAP_MUSIC_CKPT", raising=False)
    with pytest.raises(CheckpointUnavailable) as info:
        ClapEmbedder("music", device="cpu")
    msg = str(info.value)
    assert "https://huggingface.co/lukewys/laion_clap/resolve/main/music_audioset_epoch_15_esc_90.14.pt" in msg
    assert "embedder.clap_music.checkpoint" in msg and "GENAUDIO_BENCH_CLAP_MUSIC_CKPT" in msg


@pytest.fixture
def no_hf_roberta():
    """Skip when roberta-base is in this machine's HF cache (it would win over the paths tested here)."""
    if hf_cache_roberta() is not None:
        pytest.skip("roberta-base tokenizer is in the HF cache")


def test_tokenizer_unavailable_offline(tmp_path, monkeypatch, no_hf_roberta):
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("GENAUDIO_BENCH_ROBERTA_TOKENIZER", raising=False)
    with pytest.raises(EmbedderUnavailable, match="roberta-base tokenizer"):
        resolve_roberta_tokenizer(None)


def test_tokenizer_from_bench_checkpoint_dir(tmp_path, tok_dir, monkeypatch, no_hf_roberta):
    home = tmp_path / "home"
    (home / "checkpoints").mkdir(parents=True)
    os.symlink(tok_dir / "vocab.json", home / "checkpoints" / "roberta-base-vocab.json")
    os.symlink(tok_dir / "merges.txt", home / "checkpoints" / "roberta-base-merges.txt")
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok, source = resolve_roberta_tokenizer(None)
    assert source == str(home / "checkpoints")
    ref = transformers.RobertaTokenizer.from_pretrained(str(tok_dir))
    assert tok("the sea")["input_ids"] == ref("the sea")["input_ids"] == [0, 87, 262, 268, 72, 68, 2]


def test_placeholder_tokenizers_are_refused(tmp_path, monkeypatch, no_hf_roberta):
    """transformers 5 returns a 5-token tokenizer instead of raising when the vocabulary is missing; such a
    tokenizer maps every prompt to <s></s> (one text embedding for all). Refused from every source."""
    folder = tmp_path / "placeholder"
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    placeholder = transformers.RobertaTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    assert not is_roberta_vocabulary(placeholder)
    with pytest.raises(EmbedderUnavailable, match=r"placeholder.* has 5 tokens and cannot spell a word"):
        resolve_roberta_tokenizer(folder)
    # from the HF cache: skipped, the next source is tried (here: none, so the how-to message)
    monkeypatch.setattr(transformers.RobertaTokenizer, "from_pretrained", classmethod(lambda c, *a, **k: placeholder))
    assert hf_cache_roberta() is None
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("GENAUDIO_BENCH_ROBERTA_TOKENIZER", raising=False)
    with pytest.raises(EmbedderUnavailable, match="needs the roberta-base tokenizer"):
        resolve_roberta_tokenizer(None)


class _NotData:
    pass


def test_state_dict_loading_refuses_code_and_reads_safetensors(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "obj": _NotData()}, bad)
    with pytest.raises(CheckpointUnavailable, match="refusing"):
        load_clap_state_dict(bad)
    from safetensors.torch import save_file

    st = tmp_path / "w.safetensors"
    save_file({"module.a.weight": torch.ones(2), "module.text_branch.embeddings.position_ids": torch.zeros(3)}, st)
    sd = load_clap_state_dict(st)
    assert list(sd) == ["a.weight"]


# -- Hydra configs --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key,variant,amodel",
    [
        ("clap", "630k-audioset", "HTSAT-tiny"),
        ("clap_fusion", "630k-audioset-fusion", "HTSAT-tiny"),
        ("clap_music", "music", "HTSAT-base"),
        ("clap_music_speech", "music_speech", "HTSAT-base"),
    ],
)
def test_configs_name_the_published_checkpoints(key, variant, amodel):
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(CONFIG_DIR / f"{key}.yaml")
    assert list(cfg) == [key]
    assert cfg[key]._target_ == "bench.embedders.clap.ClapEmbedder" and cfg[key].variant == variant
    spec = VARIANTS[variant]
    assert spec.amodel == amodel and spec.config_key == key
    assert spec.spec().url.startswith("https://huggingface.co/lukewys/laion_clap/resolve/main/")
