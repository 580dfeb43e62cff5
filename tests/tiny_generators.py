"""Tiny random checkpoints of the official generator architectures, saved to disk as the adapters load them.

Each builder assembles the real ``transformers`` / ``diffusers`` classes with tiny configs (the ones of
those libraries' own fast tests), with randomly initialised weights, and ``save_pretrained``s them into a
folder: the adapters then load them through their ordinary ``checkpoint`` path, as they would a released
checkpoint. Tokenizers are real tokenizer classes over tiny vocabularies written on the spot (no download,
no sentencepiece): T5 as a ``tokenizers`` Unigram model in ``T5TokenizerFast``, RoBERTa and CLIP byte-level
BPE from ``vocab.json`` + an empty ``merges.txt``.

Used through the ``tiny_checkpoint`` fixture of ``tests/conftest.py`` (one build per key and session) by
the model contract tests and the per-backend adapter tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

WORDS = (
    "a an the of and with in on at slow fast sad happy calm loud soft piano guitar drums bass synth strings "
    "song music beat melody dog bark rain car engine bird water man woman speaks hammer wood techno jazz"
).split()

#: sample rates of the tiny checkpoints (Hz)
MUSICGEN_SR = 8000  # tiny EnCodec: hop 32 -> 250 Hz frames, 2 codebooks
STABLE_AUDIO_SR = 400  # tiny Oobleck VAE: 2x downsampling, 4 latent frames -> 8 samples = 0.02 s


# -- tokenizers -------------------------------------------------------------------------------
def t5_tokenizer():
    """A ``T5TokenizerFast`` with 40 word pieces (ids 0 pad, 1 eos, 2 unk)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [("▁" + w, -1.0) for w in WORDS]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return T5TokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0, model_max_length=32
    )


def _byte_vocab(prefix: list[str], with_word_end: bool) -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # transformers 4 and 5

    chars = list(bytes_to_unicode().values())
    vocab = {t: i for i, t in enumerate(prefix)}
    for c in chars + ([c + "</w>" for c in chars] if with_word_end else []):
        vocab.setdefault(c, len(vocab))
    return vocab


def _bpe_files(folder: Path, vocab: dict[str, int]) -> tuple[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return str(folder / "vocab.json"), str(folder / "merges.txt")


def roberta_tokenizer(folder: Path):
    """A byte-level ``RobertaTokenizer`` (~260 ids; bos 0, pad 1, eos 2)."""
    from transformers import RobertaTokenizer

    files = _bpe_files(folder, _byte_vocab(["<s>", "<pad>", "</s>", "<unk>", "<mask>"], with_word_end=False))
    return RobertaTokenizer(*files, model_max_length=77)


def clip_tokenizer(folder: Path):
    """A byte-level ``CLIPTokenizer`` (~515 ids)."""
    from transformers import CLIPTokenizer

    files = _bpe_files(folder, _byte_vocab(["<|startoftext|>", "<|endoftext|>"], with_word_end=True))
    return CLIPTokenizer(*files, model_max_length=77, pad_token="<|endoftext|>")


# -- MusicGen ---------------------------------------------------------------------------------
def musicgen(path: Path) -> Path:
    """``MusicgenForConditionalGeneration`` (T5 1 layer, EnCodec at 8 kHz, 2 codebooks) + processor."""
    import torch
    from transformers import (
        EncodecConfig,
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
        T5Config,
    )

    text = T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=4)
    audio = EncodecConfig(
        sampling_rate=MUSICGEN_SR,
        target_bandwidths=[3.0],
        num_filters=4,
        num_residual_layers=1,
        upsampling_ratios=[8, 4],
        codebook_size=64,
        hidden_size=16,
        num_lstm_layers=1,
        codebook_dim=16,
    )
    dec = MusicgenDecoderConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=1,
        ffn_dim=32,
        num_attention_heads=4,
        num_codebooks=2,
        pad_token_id=64,
        bos_token_id=64,
        max_position_embeddings=256,
    )
    torch.manual_seed(0)
    config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=audio.to_dict(), decoder=dec.to_dict())
    model = MusicgenForConditionalGeneration(config)  # (dict sub-configs: transformers 4 and 5)
    with torch.no_grad():
        for layer in model.audio_encoder.quantizer.layers:  # EnCodec codebooks start at zero: make codes audible
            layer.codebook.embed.normal_()
    model.generation_config.pad_token_id = model.generation_config.decoder_start_token_id = 64
    model.generation_config.do_sample, model.generation_config.top_k = True, 250  # as the released configs
    model.save_pretrained(path)
    feature_extractor = EncodecFeatureExtractor(feature_size=1, sampling_rate=MUSICGEN_SR)
    MusicgenProcessor(feature_extractor, t5_tokenizer()).save_pretrained(path)
    return path


# -- AudioLDM / AudioLDM 2 --------------------------------------------------------------------
def _unet_vae_scheduler_vocoder(unet_cls, **unet_kw) -> dict[str, Any]:
    import torch
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
        bos_token_id=0, eos_token_id=2, intermediate_size=37, layer_norm_eps=1e-05, pad_token_id=1, vocab_size=1000, **kw
    )


def audioldm(path: Path) -> Path:
    """``AudioLDMPipeline``: tiny UNet, VAE, CLAP text tower and HiFi-GAN vocoder (16 kHz)."""
    import torch
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
    tokenizer = roberta_tokenizer(path.with_name(path.name + "_tok"))
    AudioLDMPipeline(text_encoder=text_encoder, tokenizer=tokenizer, **comps).save_pretrained(path)
    return path


def audioldm2(path: Path) -> Path:
    """``AudioLDM2Pipeline``: tiny CLAP + T5 encoders, GPT-2 (8 new tokens), projection, UNet, VAE, vocoder."""
    import torch
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
    AudioLDM2Pipeline(
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=roberta_tokenizer(path.with_name(path.name + "_tok")),
        tokenizer_2=t5_tokenizer(),
        feature_extractor=ClapFeatureExtractor(hop_length=7900),
        language_model=language_model,
        projection_model=projection,
        **comps,
    ).save_pretrained(path)
    return path


# -- Riffusion --------------------------------------------------------------------------------
def riffusion(path: Path) -> Path:
    """``StableDiffusionPipeline`` (tiny UNet, VAE, CLIP text encoder; no safety checker)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
    )
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=2,
            hidden_size=32,
            intermediate_size=64,
            layer_norm_eps=1e-05,
            num_attention_heads=8,
            num_hidden_layers=3,
            pad_token_id=1,
            vocab_size=1000,
        )
    )
    StableDiffusionPipeline(
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer(path.with_name(path.name + "_tok")),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    ).save_pretrained(path)
    return path


# -- Stable Audio Open ------------------------------------------------------------------------
def stable_audio(path: Path) -> Path:
    """``StableAudioPipeline`` (tiny DiT, Oobleck VAE at 400 Hz stereo, T5, projection).

    The released ``CosineDPMSolverMultistepScheduler`` needs torchsde; its EDM sibling has the same interface.
    """
    import torch
    from diffusers import (
        AutoencoderOobleck,
        EDMDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    transformer = StableAudioDiTModel(
        sample_size=4,
        in_channels=3,
        num_layers=2,
        attention_head_dim=4,
        num_key_value_attention_heads=2,
        out_channels=3,
        cross_attention_dim=4,
        time_proj_dim=8,
        global_states_input_dim=8,
        cross_attention_input_dim=4,
    )
    scheduler = EDMDPMSolverMultistepScheduler(
        solver_order=2, prediction_type="v_prediction", sigma_data=1.0, sigma_schedule="exponential"
    )
    torch.manual_seed(0)
    vae = AutoencoderOobleck(
        encoder_hidden_size=6,
        downsampling_ratios=[1, 2],
        decoder_channels=3,
        decoder_input_channels=3,
        audio_channels=2,
        channel_multiples=[2, 4],
        sampling_rate=STABLE_AUDIO_SR,
    )
    torch.manual_seed(0)
    text_encoder = T5EncoderModel(T5Config(vocab_size=64, d_model=32, d_ff=37, d_kv=8, num_heads=2, num_layers=2))
    torch.manual_seed(0)
    projection = StableAudioProjectionModel(text_encoder_dim=32, conditioning_dim=4, min_value=0, max_value=32)
    StableAudioPipeline(
        transformer=transformer,
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=t5_tokenizer(),
        projection_model=projection,
    ).save_pretrained(path)
    return path


#: builder of each checkpoint kind
BUILDERS: dict[str, Callable[[Path], Path]] = {
    "musicgen": musicgen,
    "audioldm": audioldm,
    "audioldm2": audioldm2,
    "riffusion": riffusion,
    "stable_audio": stable_audio,
}

#: model config key -> (checkpoint kind, constructor arguments that make one generation fast on CPU)
FAST: dict[str, tuple[str, dict[str, Any]]] = {
    "musicgen": ("musicgen", {"duration_s": 0.1}),
    "musicgen_medium": ("musicgen", {"duration_s": 0.1}),
    "audioldm": ("audioldm", {"duration_s": 0.016, "num_inference_steps": 2}),
    "audioldm2": ("audioldm2", {"duration_s": 0.016, "num_inference_steps": 1}),
    "riffusion": (
        "riffusion",
        {"duration_s": 0.5, "num_inference_steps": 2, "height": 64, "width": "auto",
         "spectrogram": {"num_griffin_lim_iters": 4}},
    ),
    "stable_audio_open": ("stable_audio", {"duration_s": 0.015, "num_inference_steps": 2}),
}
