"""AudioLDM (Liu et al. 2023) and AudioLDM 2 (Liu et al. 2024) through their ``diffusers`` pipelines.

Both return 16 kHz mono audio; ``duration_s`` is passed as ``audio_length_in_s`` (the pipelines
round the latent length up to the VAE's multiple and cut the waveform back). Weights: any
diffusers-format repo, e.g. "cvssp/audioldm-s-full-v2", "cvssp/audioldm-m-full", "cvssp/audioldm2",
"cvssp/audioldm2-music", "cvssp/audioldm2-large". Seeding: see :class:`bench.models.hf.DiffusersModel`.
"""

from __future__ import annotations

from typing import Any

from bench.models.base import ModelUnavailable
from bench.models.hf import DiffusersModel, release


def check_audioldm2_stack() -> None:
    """transformers 5 returns model outputs where ``ClapModel.get_text_features`` returned a tensor; the
    AudioLDM2 pipeline reads them only from diffusers 0.37 on (older ones fail mid-generation)."""
    if release("transformers") >= (5,) and release("diffusers") < (0, 37):
        raise ModelUnavailable(
            "AudioLDM2 with transformers 5 needs diffusers >= 0.37 (installed: diffusers "
            f"{'.'.join(map(str, release('diffusers')))}): pip install 'diffusers>=0.37'"
        )


class AudioLDMModel(DiffusersModel):
    """``diffusers.AudioLDMPipeline``. Defaults follow the paper's evaluation (200 DDIM steps, guidance 2.5;
    the pipeline's own default is 10 steps)."""

    name = "audioldm"
    pipeline_class = "AudioLDMPipeline"
    default_model_id = "cvssp/audioldm-s-full-v2"
    env_var = "GENAUDIO_BENCH_AUDIOLDM_PATH"
    sample_rate_key = ("vocoder/config.json", "sampling_rate")
    default_sample_rate = 16000

    def __init__(self, num_inference_steps: int = 200, guidance_scale: float = 2.5, **kw):
        super().__init__(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, **kw)

    def call_kwargs(self) -> dict[str, Any]:
        return {"audio_length_in_s": self.duration_s, "output_type": "np"}


class AudioLDM2Model(AudioLDMModel):
    """``diffusers.AudioLDM2Pipeline`` (GPT-2 "language of audio" conditioning; guidance 3.5, 200 steps
    on the model card). ``max_new_tokens``: length of the generated GPT-2 conditioning (None: the
    checkpoint's default)."""

    name = "audioldm2"
    #: a call argument (in :meth:`params` when set; unset it keeps the checkpoint's default)
    param_aliases = {**AudioLDMModel.param_aliases, "max_new_tokens": "max_new_tokens"}
    pipeline_class = "AudioLDM2Pipeline"
    default_model_id = "cvssp/audioldm2"
    env_var = "GENAUDIO_BENCH_AUDIOLDM2_PATH"

    def __init__(
        self, num_inference_steps: int = 200, guidance_scale: float = 3.5, max_new_tokens: int | None = None, **kw
    ):
        self.max_new_tokens = max_new_tokens
        super().__init__(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, **kw)

    def load_kwargs(self) -> dict[str, Any]:
        """Repos whose ``model_index.json`` names ``GPT2Model`` as language model (e.g. the cvssp ones) break
        with transformers >= 4.50 (no ``GenerationMixin``: diffusers issue #12630); load the same weights
        into ``GPT2LMHeadModel``, the class the pipeline expects."""
        from bench.models.hf import read_json_key

        check_audioldm2_stack()
        spec = read_json_key(self.weights.path / "model_index.json", "language_model", default=None)
        if spec == ["transformers", "GPT2Model"]:
            from transformers import GPT2LMHeadModel

            lm = GPT2LMHeadModel.from_pretrained(
                str(self.weights.path), subfolder="language_model", local_files_only=True
            )
            max_new = read_json_key(
                self.weights.path / "language_model" / "config.json", "max_new_tokens", default=None
            )
            if max_new is not None:
                lm.config.max_new_tokens = max_new
            return {"language_model": lm}
        return {}

    def call_kwargs(self) -> dict[str, Any]:
        kw = super().call_kwargs()
        if self.max_new_tokens:
            kw["max_new_tokens"] = int(self.max_new_tokens)
        return kw
