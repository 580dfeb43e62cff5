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

SR = 24000

#: a MERT-style config.json (field names as in m-a-p/MERT-v1-95M), tiny sizes
TINY_CFG = {
    "architectures": ["MERTModel"],
    "auto_map": {"AutoConfig": "configuration_MERT.MERTConfig", "AutoModel": "modeling_MERT.MERTModel"},
    "model_type": "mert_model",
    "attention_relax": -1.0,
    "deepnorm": False,
    "feature_extractor_cqt": False,
    "feature_extractor_cqt_bins": 336,
    "sample_rate": SR,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 48,
    "conv_dim": [16, 16, 16],
    "conv_kernel": [10, 3, 3],
    "conv_stride": [5, 2, 2],
    "conv_bias": False,
    "feat_extract_norm": "group",
    "feat_proj_layer_norm": True,
    "do_stable_layer_norm": False,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "layer_norm_eps": 1e-5,
    "mask_time_prob": 0.05,
    "hidden_act": "gelu",
}


GOLDEN = Path(__file__).parent / "golden"


def _reference_model(cfg: dict, seed: int = 0):
    """``HubertModel`` whose config is written out field by field from the MERT config (not converted)."""
    torch.manual_seed(seed)
    hcfg = transformers.HubertConfig(
        hidden_size=cfg["hidden_size"],
        num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"],
        intermediate_size=cfg["intermediate_size"],
        hidden_act=cfg["hidden_act"],
        layer_norm_eps=cfg["layer_norm_eps"],
        conv_dim=cfg["conv_dim"],
        conv_kernel=cfg["conv_kernel"],
        conv_stride=cfg["conv_stride"],
        conv_bias=cfg["conv_bias"],
        feat_extract_norm=cfg["feat_extract_norm"],
        feat_proj_layer_norm=cfg["feat_proj_layer_norm"],
        do_stable_layer_norm=cfg["do_stable_layer_norm"],
        num_conv_pos_embeddings=cfg["num_conv_pos_embeddings"],
        num_conv_pos_embedding_groups=cfg["num_conv_pos_embedding_groups"],
        conv_pos_batch_norm=False,
        mask_time_prob=cfg["mask_time_prob"],
    )
    return transformers.HubertModel(hcfg).eval()


def _mert_format(state: dict) -> dict:
    """HubertModel state dict -> MERT's saved layout (transformers 4.25: legacy weight-norm names)."""
    out = {}
    for k, v in state.items():
        k = k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        )
        out[k] = v.clone()
    return out


def _write_checkpoint(folder, cfg: dict, state: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg))
    torch.save(_mert_format(state), folder / "pytorch_model.bin")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mert")
    ref = _reference_model(TINY_CFG)
    _write_checkpoint(folder, TINY_CFG, ref.state_dict())
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


def test_batch_of_unequal_lengths_equals_single_calls(ckpt):
    folder, _ = ckpt
    emb = MERTEmbedder(checkpoint=str(folder / "pytorch_model.bin"), layer=1, device="cpu", batch_size=2)
    wavs = [_wave(6000, 1), _wave(4000, 2), _wave(6000, 3)]
    batched = emb.embed_batch(wavs)
    for w, b in zip(wavs, batched, strict=True):
        np.testing.assert_allclose(b["emb"], emb.embed(w)["emb"], rtol=1e-5, atol=1e-5)


def test_windowed_mode_concatenates_window_frames(ckpt):
    folder, _ = ckpt
    emb = MERTEmbedder(checkpoint=str(folder), layer=2, window_s=0.25, device="cpu")
    wav = _wave(int(0.6 * SR))  # 3 windows of 6000 samples (last one padded)
    out = emb.embed(wav)["emb"]
    per_window = MERTEmbedder(checkpoint=str(folder), layer=2, device="cpu")._forward(
        normalize_input(wav)[None, :6000]
    )[0]
    assert out.shape == (3 * per_window.shape[0], 32)
    np.testing.assert_allclose(out[: per_window.shape[0]], per_window, rtol=1e-5, atol=1e-5)
    assert emb.id != MERTEmbedder(checkpoint=str(folder), layer=2, device="cpu").id


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
    state = {"mert_model." + k: v for k, v in _mert_format(target).items()}
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
    _write_checkpoint(snap, TINY_CFG, ref.state_dict())
    emb = MERTEmbedder(layer=1, device="cpu")
    assert str(snap) in emb.checkpoints()["weights"]["path"]


def test_hydra_config_instantiates(ckpt):
    hydra_utils = pytest.importorskip("hydra.utils")
    from pathlib import Path

    from omegaconf import OmegaConf

    folder, _ = ckpt
    cfg = OmegaConf.merge(
        {"device": "cpu", "batch_size": 2}, OmegaConf.load(Path(__file__).parents[2] / "bench/configs/embedder/mert.yaml")
    )
    cfg.mert.checkpoint = str(folder)
    cfg.mert.layer = 1
    emb = hydra_utils.instantiate(cfg.mert)
    assert isinstance(emb, MERTEmbedder) and emb.batch_size == 2
    assert emb.audio.sample_rate == SR and emb.audio.max_duration_s == 360.0
