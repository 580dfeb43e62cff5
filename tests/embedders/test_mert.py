"""MERT: parity with MERT's own modeling code, released key layout, preprocessing, layer choice.

References (none goes through the converter under test):
- golden outputs of MERT's own ``MERTModel`` (``modeling_MERT.py`` of m-a-p/MERT-v1-95M, run by
  ``scripts/golden_mert.py``; not vendored) for two tiny random models, DeepNorm off and on, on a real
  clip: ``golden/mert_official_tiny.npz``;
- the released MERT-v1-95M parameter names/shapes, from the same code: ``golden/mert_v1_95m_layout.json``;
- ``transformers.HubertModel`` built from a ``HubertConfig`` written out here, run on the reference
  ``Wav2Vec2FeatureExtractor`` output, for the rest of the API (windows, batching, layers).
Checkpoints under test are written in MERT's on-disk format (legacy ``weight_g``/``weight_v``
weight-norm names, MERT config keys).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from bench.checkpoints import CheckpointUnavailable  # noqa: E402
from bench.embedders.mert import (  # noqa: E402
    MERTEmbedder,
    build_model,
    convert_state_dict,
    hubert_config_from_mert,
    normalize_input,
    receptive_field,
)
from tests.tiny_embedders import MERT_TINY_CONFIG, mert_format, mert_reference, write_mert_checkpoint  # noqa: E402

SR = 24000

TINY_CFG = MERT_TINY_CONFIG  # 2 layers, hidden 32
GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mert")
    ref = mert_reference(TINY_CFG)
    write_mert_checkpoint(folder, TINY_CFG, ref.state_dict())
    return folder, ref


def _wave(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(n) + 0.1).astype(np.float32)


def _reference_hidden(ref, wav: np.ndarray, layer: int) -> np.ndarray:
    fe = transformers.Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SR, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )
    inputs = fe(wav, sampling_rate=SR, return_tensors="pt")
    with torch.no_grad():
        out = ref(**inputs, output_hidden_states=True)
    return out.hidden_states[layer][0].numpy()


def test_normalize_matches_wav2vec2_feature_extractor():
    wav = _wave(SR // 2) * 0.2 + 0.03
    fe = transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, padding_value=0.0, do_normalize=True)
    ref = fe(wav, sampling_rate=SR, return_tensors="np").input_values[0]
    np.testing.assert_allclose(normalize_input(wav), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("layer", [0, 2, -1])
def test_embedder_matches_hubert_reference(ckpt, layer, fadtk_clip):
    folder, ref = ckpt
    emb = MERTEmbedder(checkpoint=str(folder), layer=layer, device="cpu")
    wav = fadtk_clip("mubert-806", SR, 1.0)[0]  # 1 s -> 24000 / 20 = 1200 frames for strides (5, 2, 2)
    out = emb.embed(wav)["emb"]
    expect = _reference_hidden(ref, wav, layer)
    assert out.dtype == np.float32 and out.shape == expect.shape == (1199, 32)
    np.testing.assert_allclose(out, expect, rtol=1e-4, atol=1e-4)
    assert emb.params()["layer"] == layer % 3
    assert set(emb.checkpoints()) == {"config", "weights"}


def test_windowed_mode_concatenates_window_frames(ckpt):
    folder, _ = ckpt
    emb = MERTEmbedder(checkpoint=str(folder), layer=2, window_s=0.25, device="cpu")
    wav = _wave(int(0.6 * SR))  # 3 windows of 6000 samples (last one padded)
    out = emb.embed(wav)["emb"]
    whole = MERTEmbedder(checkpoint=str(folder / "pytorch_model.bin"), layer=2, device="cpu")  # config.json next to it
    per_window = whole._forward(
        normalize_input(wav)[None, :6000]
    )[0]
    assert out.shape == (3 * per_window.shape[0], 32)
    np.testing.assert_allclose(out[: per_window.shape[0]], per_window, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["plain", "deepnorm"])
def test_matches_official_mert_model_outputs(tmp_path, variant):
    """MERT's own ``MERTModel`` (golden, see module docstring): its state dict, saved as a
    ``pytorch_model.bin`` + ``config.json`` snapshot, through our loader; every hidden state compared.
    Measured when generated: max abs difference 0.0 (same transformers modules) for both variants."""
    gold = np.load(GOLDEN / "mert_official_tiny.npz")
    prefix = f"{variant}__state__"
    state = {k[len(prefix) :]: torch.from_numpy(gold[k]) for k in gold.files if k.startswith(prefix)}
    cfg = json.loads(str(gold[f"{variant}__config"]))  # MERTConfig(...).to_dict(), as a config.json
    assert cfg["model_type"] == "mert_model" and cfg["deepnorm"] == (variant == "deepnorm")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    torch.save(state, tmp_path / "pytorch_model.bin")
    hidden = gold[f"{variant}__hidden"]  # (n_layers + 1, frames, hidden)
    for layer in range(hidden.shape[0]):
        out = MERTEmbedder(checkpoint=str(tmp_path), layer=layer, device="cpu").embed(gold["wav"])["emb"]
        assert out.shape == hidden[layer].shape == (599, 32)
        np.testing.assert_allclose(out, hidden[layer], rtol=0, atol=1e-5)


@pytest.mark.parametrize("weight_norm_names", ["legacy", "parametrized"])
def test_released_mert_v1_95m_layout_loads_strictly(weight_norm_names):
    """Every parameter name/shape of the released MERT-v1-95M checkpoint (golden, from MERT's own code) is
    accepted by our converter + strict ``load_state_dict``; nothing is missing or left over."""
    gold = json.loads((GOLDEN / "mert_v1_95m_layout.json").read_text())
    assert gold["n_parameters"] == 94_371_712  # "95M"
    state = {k: torch.empty(shape) for k, shape in gold["state_dict"].items()}
    if weight_norm_names == "parametrized":  # saved by a transformers release that uses torch parametrizations
        state = {
            k.replace("weight_g", "parametrizations.weight.original0").replace(
                "weight_v", "parametrizations.weight.original1"
            ): v
            for k, v in state.items()
        }
    model = build_model({**gold["config"], "model_type": "mert_model", "architectures": ["MERTModel"]})
    target = model.state_dict()
    converted = convert_state_dict(state, target)
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(v.shape) for k, v in target.items()}
    result = model.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_cqt_feature_config_is_refused():
    with pytest.raises(ValueError, match="feature_extractor_cqt"):
        hubert_config_from_mert({**TINY_CFG, "feature_extractor_cqt": True})


def test_convert_state_dict_strict():
    model = build_model(TINY_CFG)
    target = model.state_dict()
    state = {"mert_model." + k: v for k, v in mert_format(target).items()}
    state["label_embs_concat"] = torch.zeros(3)  # pre-training only: dropped
    del state["mert_model.masked_spec_embed"]  # pre-training only: may be absent
    assert set(convert_state_dict(state, target)) == set(target)
    del state["mert_model.encoder.layers.0.attention.q_proj.weight"]
    state["encoder.bogus.weight"] = torch.zeros(1)
    with pytest.raises(KeyError, match="bogus") as exc:
        convert_state_dict(state, target)
    assert "q_proj" in str(exc.value)


def test_receptive_field_of_mert_v1_encoder():
    # MERT-v1 / HuBERT-base conv stack: 400 samples per frame, hop 320
    assert receptive_field([10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2]) == 400


def test_offline_without_weights_says_how_to_provide(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("GENAUDIO_BENCH_MERT_V1_95M_WEIGHTS", raising=False)
    monkeypatch.delenv("GENAUDIO_BENCH_MERT_V1_95M_CONFIG", raising=False)
    with pytest.raises(CheckpointUnavailable) as exc:
        MERTEmbedder(device="cpu")
    msg = str(exc.value)
    assert "MERT-v1-95M" in msg and "huggingface.co/m-a-p/MERT-v1-95M/resolve/main/" in msg
    assert "embedder.mert." in msg


def test_huggingface_cache_snapshot_is_found(tmp_path, monkeypatch, ckpt):
    _, ref = ckpt
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    snap = tmp_path / "hf" / "models--m-a-p--MERT-v1-95M" / "snapshots" / "abc123"
    write_mert_checkpoint(snap, TINY_CFG, ref.state_dict())
    emb = MERTEmbedder(layer=1, device="cpu")
    assert str(snap) in emb.checkpoints()["weights"]["path"]
