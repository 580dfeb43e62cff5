"""Stable Audio Open (Evans et al. 2024) through ``diffusers.StableAudioPipeline``.

44.1 kHz stereo, up to 47.55 s (``duration_s`` -> ``audio_end_in_s``). The repo
"stabilityai/stable-audio-open-1.0" is gated: accept its license on the Hub and log in
(``huggingface-cli login`` / ``HF_TOKEN``) before the first, online, run. Its scheduler
(``CosineDPMSolverMultistepScheduler``) needs the ``torchsde`` package; without it the adapter
reports itself unavailable unless ``scheduler`` names another diffusers scheduler (results then
differ from the reference setup). Seeding: see :class:`bench.models.hf.DiffusersModel` (the
Brownian-tree SDE noise is seeded per item from the same generators).
"""

from __future__ import annotations

from typing import Any

from bench.models.hf import DiffusersModel


class StableAudioOpenModel(DiffusersModel):
    """Text-to-audio with Stable Audio Open 1.0 (model card: 200 steps, guidance 7, negative prompt "Low quality.").

    Args:
        audio_start_in_s: start of the generated window (0 = from the beginning).
        Other args: see :class:`bench.models.hf.DiffusersModel`.
    """

    name = "stable_audio_open"
    pipeline_class = "StableAudioPipeline"
    default_model_id = "stabilityai/stable-audio-open-1.0"
    env_var = "GENAUDIO_BENCH_STABLE_AUDIO_PATH"
    sample_rate_key = ("vae/config.json", "sampling_rate")
    default_sample_rate = 44100

    def __init__(
        self,
        num_inference_steps: int = 100,
        guidance_scale: float = 7.0,
        audio_start_in_s: float = 0.0,
        **kw,
    ):
        self.audio_start_in_s = float(audio_start_in_s)
        super().__init__(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, **kw)

    def call_kwargs(self) -> dict[str, Any]:
        return {
            "audio_start_in_s": self.audio_start_in_s,
            "audio_end_in_s": self.audio_start_in_s + self.duration_s,
            "output_type": "np",
        }
