"""AudioLDM / AudioLDM2 adapters on tiny random components assembled into the real diffusers pipelines
(component configs from diffusers' own fast tests), saved to disk and loaded back through the adapter."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from bench.errors import ErrorLog  # noqa: E402
from bench.models.audioldm import AudioLDM2Model, AudioLDMModel  # noqa: E402
from bench.models.base import ModelUnavailable  # noqa: E402
from bench.prompts import Prompt  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")

P = [Prompt("a", "a dog barks in the rain"), Prompt("b/../c", "a hammer hits wood")]


def _unet_vae_scheduler_vocoder(unet_cls, **unet_kw):
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    torch.manual_seed(0)
    unet = unet_cls(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        **unet_kw,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=1,
        out_channels=1,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
    )
    vocoder = SpeechT5HifiGan(
        SpeechT5HifiGanConfig(
            model_in_dim=8,
            sampling_rate=16000,
            upsample_initial_channel=16,
            upsample_rates=[2, 2],
            upsample_kernel_sizes=[4, 4],
            resblock_kernel_sizes=[3, 7],
            resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
            normalize_before=False,
        )
    )
    return {"unet": unet, "scheduler": scheduler, "vae": vae, "vocoder": vocoder}


def _clap_text_config(**kw):
    from transformers import ClapTextConfig

    return ClapTextConfig(
        bos_token_id=0,
        eos_token_id=2,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        pad_token_id=1,
        vocab_size=1000,
        **kw,
    )


@pytest.fixture(scope="module")
def tiny_audioldm(tmp_path_factory, roberta_tokenizer):
    from diffusers import AudioLDMPipeline, UNet2DConditionModel
    from transformers import ClapTextModelWithProjection

    comps = _unet_vae_scheduler_vocoder(
        UNet2DConditionModel,
        cross_attention_dim=(32, 64),
        class_embed_type="simple_projection",
        projection_class_embeddings_input_dim=32,
        class_embeddings_concat=True,
    )
    torch.manual_seed(0)
    text_encoder = ClapTextModelWithProjection(
        _clap_text_config(hidden_size=32, num_attention_heads=4, num_hidden_layers=5, projection_dim=32)
    )
    pipe = AudioLDMPipeline(text_encoder=text_encoder, tokenizer=roberta_tokenizer, **comps)
    path = tmp_path_factory.mktemp("audioldm")
    pipe.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_audioldm2(tmp_path_factory, roberta_tokenizer, t5_tokenizer):
    from diffusers import AudioLDM2Pipeline, AudioLDM2ProjectionModel, AudioLDM2UNet2DConditionModel
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        GPT2Config,
        GPT2Model,
        T5Config,
        T5EncoderModel,
    )

    comps = _unet_vae_scheduler_vocoder(
        AudioLDM2UNet2DConditionModel, cross_attention_dim=([None, 16, 32], [None, 16, 32])
    )
    torch.manual_seed(0)
    audio_cfg = ClapAudioConfig(
        spec_size=64,
        window_size=4,
        num_mel_bins=64,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        depths=[2, 2],
        num_attention_heads=[2, 2],
        num_hidden_layers=2,
        hidden_size=192,
        projection_dim=16,
        patch_size=2,
        patch_stride=2,
        patch_embed_input_channels=4,
    )
    text_cfg = _clap_text_config(hidden_size=16, num_attention_heads=2, num_hidden_layers=2, projection_dim=16)
    text_encoder = ClapModel(
        ClapConfig(text_config=text_cfg.to_dict(), audio_config=audio_cfg.to_dict(), projection_dim=16)
    )
    torch.manual_seed(0)
    text_encoder_2 = T5EncoderModel(T5Config(vocab_size=64, d_model=32, d_ff=37, d_kv=8, num_heads=2, num_layers=2))
    torch.manual_seed(0)
    language_model = GPT2Model(GPT2Config(n_embd=16, n_head=2, n_layer=2, vocab_size=1000, n_ctx=99, n_positions=99))
    language_model.config.max_new_tokens = 8
    torch.manual_seed(0)
    projection = AudioLDM2ProjectionModel(text_encoder_dim=16, text_encoder_1_dim=32, langauge_model_dim=16)
    pipe = AudioLDM2Pipeline(
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=roberta_tokenizer,
        tokenizer_2=t5_tokenizer,
        feature_extractor=ClapFeatureExtractor(hop_length=7900),
        language_model=language_model,
        projection_model=projection,
        **comps,
    )
    path = tmp_path_factory.mktemp("audioldm2")
    pipe.save_pretrained(path)
    return path


@pytest.mark.parametrize("kind", ["audioldm", "audioldm2"])
def test_generate_gather_and_seeds(kind, request, tmp_path):
    path = request.getfixturevalue(f"tiny_{kind}")
    cls = AudioLDMModel if kind == "audioldm" else AudioLDM2Model
    steps = 2 if kind == "audioldm" else 1  # the AudioLDM2 UNet is slow on CPU even when tiny
    m = cls(local_path=str(path), device="cpu", duration_s=0.016, num_inference_steps=steps, batch_size=2, seed=1)
    assert m.sample_rate == 16000 and m.params()["pipeline"] == cls.pipeline_class
    a, b = m.generate(P, [5, 6])
    assert a.shape == b.shape == (256,) and a.dtype == np.float32 and np.all(np.isfinite(a))
    (b_alone,) = m.generate(P[1:], [6])  # per-item generators: batch composition does not matter
    np.testing.assert_allclose(b_alone, b, atol=1e-5)
    (a_other_seed,) = m.generate(P[:1], [7])
    assert np.abs(a_other_seed - a).max() > 1e-6

    errors = ErrorLog()
    out = m.gather(P, tmp_path / kind, errors, "set", progress=False)
    assert sorted(out) == ["a", "b/../c"] and not errors.rows
    assert out["b/../c"].parent == (tmp_path / kind).resolve()  # sanitised id stays inside the output folder
    wav, sr = sf.read(str(out["a"]))
    assert sr == 16000 and wav.shape == (256,)
    assert len(m.checkpoints()) >= 4  # unet, vae, text encoder(s), vocoder weights with sha256


def test_offline_without_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(ModelUnavailable, match=r"cvssp/audioldm2.*model\.audioldm2\.checkpoint"):
        AudioLDM2Model(device="cpu")
