"""MusicGen (Copet et al. 2023) through ``transformers`` (default) or ``audiocraft`` (when installed).

Seeding: sample ``k`` of prompt ``p`` always uses :func:`bench.models.base.item_seed`, and with the
transformers backend every item of a batch draws its tokens from its *own* ``torch.Generator``
(:class:`SeededSampler`), so an output does not depend on which other prompts share its batch
or on the batch size. (Float differences from padding texts of different lengths can, very
rarely, flip one draw.) The audiocraft backend generates one item at a time under
``torch.manual_seed(seed)`` for the same guarantee.

Clip length: ``duration_s`` -> ``ceil(duration_s * frame_rate) + num_codebooks - 1`` new tokens
(50 Hz frames for the released models; the delay pattern costs ``num_codebooks - 1`` steps),
and the waveform is cut to ``round(duration_s * sample_rate)`` samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.models.base import ModelUnavailable
from bench.models.hf import HFModel, channels_last, dtype_kwarg, fit_length, read_json_key, resolve_weights, torch_dtype
from bench.prompts import Prompt

_NEG = -1.0e4  # "impossible" logit (finite so that a later CFG step stays finite)


def filter_logits(logits, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None):
    """Temperature, then top-k, then nucleus (top-p) filtering of ``(rows, vocab)`` logits, in the order and
    with the semantics of transformers' ``Temperature``/``TopK``/``TopPLogitsWarper`` (removed tokens get -inf)."""
    import torch

    logits = logits / max(float(temperature), 1e-5)
    if top_k:
        kth = torch.topk(logits, min(int(top_k), logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        srt, idx = torch.sort(logits, descending=True, dim=-1)
        p = srt.softmax(-1)
        drop = (p.cumsum(-1) - p) >= top_p  # mass strictly above the token already reaches top_p
        drop[..., 0] = False
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, idx, drop), float("-inf"))
    return logits


def make_seeded_sampler(
    seeds: Sequence[int],
    num_codebooks: int,
    guidance_scale: float | None,
    do_sample: bool = True,
    temperature: float = 1.0,
    top_k: int | None = 250,
    top_p: float | None = None,
):
    """A ``transformers`` logits processor that applies classifier-free guidance, temperature,
    top-k / top-p and then *samples* each item's next tokens with that item's own generator.

    It returns a one-hot score matrix (0 for the drawn token, ``-1e4`` elsewhere) so that the
    greedy step of ``generate(do_sample=False)`` picks exactly the drawn token. Scores arrive as
    ``(2 * B * K, V)`` when MusicGen's own CFG processor runs after this one (it does in
    transformers 4.4x-4.5x) and as ``(B * K, V)`` otherwise; both are handled. Row ``b * K + k`` is
    codebook ``k`` of item ``b``.
    """
    import torch
    from transformers import LogitsProcessor

    class SeededSampler(LogitsProcessor):
        def __init__(self) -> None:
            self.seeds = [int(s) for s in seeds]
            self.generators: list[torch.Generator] | None = None

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            b, k = len(self.seeds), num_codebooks
            rows = b * k
            if scores.shape[0] == 2 * rows:
                cond, uncond = scores.float().split(rows, dim=0)
                logits = uncond + (cond - uncond) * float(guidance_scale or 1.0)
            elif scores.shape[0] == rows:
                logits = scores.float()
            else:
                raise RuntimeError(f"SeededSampler: got {scores.shape[0]} score rows for {b} items x {k} codebooks")
            if not do_sample:
                tokens = logits.argmax(dim=-1)
            else:
                if self.generators is None:
                    self.generators = [torch.Generator(device=logits.device).manual_seed(s) for s in self.seeds]
                logits = filter_logits(logits, temperature, top_k, top_p)
                probs = logits.softmax(dim=-1)
                tokens = torch.cat(
                    [
                        torch.multinomial(probs[i * k : (i + 1) * k], 1, generator=g)[:, 0]
                        for i, g in enumerate(self.generators)
                    ]
                )
            if scores.shape[0] == 2 * rows:
                tokens = torch.cat([tokens, tokens])
            out = torch.full_like(scores, _NEG)
            out.scatter_(1, tokens[:, None], 0.0)
            return out

    return SeededSampler()


class MusicGenModel(HFModel):
    """Text-to-music with MusicGen (small / medium / large / stereo / melody checkpoints).

    Args:
        model_id: e.g. "facebook/musicgen-small", "facebook/musicgen-medium", "facebook/musicgen-stereo-small".
        backend: "transformers" or "audiocraft" (needs ``pip install audiocraft``; weights from its own cache).
        guidance_scale: classifier-free guidance (3.0 in the paper; <= 1 disables it).
        do_sample, top_k, top_p, temperature: token sampling (paper: top_k=250, temperature 1).
        Other args: see :class:`bench.models.hf.HFModel`.
    """

    name = "musicgen"
    default_model_id = "facebook/musicgen-small"
    env_var = "GENAUDIO_BENCH_MUSICGEN_PATH"

    def __init__(
        self,
        backend: str = "transformers",
        guidance_scale: float = 3.0,
        do_sample: bool = True,
        top_k: int | None = 250,
        top_p: float | None = None,
        temperature: float = 1.0,
        **kw,
    ):
        if backend not in ("transformers", "audiocraft"):
            raise ValueError(f"musicgen backend must be transformers or audiocraft, got {backend!r}")
        self.backend = backend
        self.guidance_scale = float(guidance_scale)
        self.do_sample = bool(do_sample)
        self.top_k = int(top_k) if top_k else None
        self.top_p = float(top_p) if top_p else None
        self.temperature = float(temperature)
        super().__init__(**kw)
        if backend == "transformers":
            cfg = self.weights.path / "config.json"
            self.sample_rate = int(read_json_key(cfg, "audio_encoder", "sampling_rate", default=32000))
            self.frame_rate = float(read_json_key(cfg, "audio_encoder", "frame_rate", default=0) or 0) or None
            self.num_codebooks = int(read_json_key(cfg, "decoder", "num_codebooks", default=4))
        else:
            self.sample_rate, self.frame_rate, self.num_codebooks = 32000, 50.0, 4

    def _resolve(self, local_path):
        if self.backend == "audiocraft":
            from bench.models.hf import HFWeights

            try:
                import audiocraft  # noqa: F401
            except ImportError as exc:
                raise ModelUnavailable("backend=audiocraft needs `pip install audiocraft`") from exc
            from pathlib import Path

            # audiocraft resolves and caches its own weights (model_id or a local folder/checkpoint)
            return HFWeights(Path(local_path or self.model_id), self.model_id, self.revision, "audiocraft")
        return resolve_weights(
            self.model_id,
            self.revision,
            local_path,
            self.config_key,
            self.env_var,
            allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"],
        )

    def checkpoints(self) -> dict[str, dict[str, str]]:
        return {} if self.backend == "audiocraft" else super().checkpoints()

    # -- loading ------------------------------------------------------------------
    def _load(self) -> Any:
        if self.backend == "audiocraft":
            from audiocraft.models import MusicGen

            model = MusicGen.get_pretrained(str(self.weights.path), device=self.torch_device)
            model.set_generation_params(
                use_sampling=self.do_sample,
                top_k=self.top_k or 0,
                top_p=self.top_p or 0.0,
                temperature=self.temperature,
                duration=self.duration_s,
                cfg_coef=self.guidance_scale,
            )
            self.sample_rate = int(model.sample_rate)
            return model
        import transformers
        from transformers import AutoProcessor

        path = str(self.weights.path)
        model_type = read_json_key(self.weights.path / "config.json", "model_type", default="musicgen")
        cls = {
            "musicgen": transformers.MusicgenForConditionalGeneration,
            "musicgen_melody": transformers.MusicgenMelodyForConditionalGeneration,
        }.get(model_type)
        if cls is None:
            raise ValueError(f"{path}: model_type {model_type!r} is not a MusicGen model")
        dev = self.torch_device
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        model = cls.from_pretrained(path, local_files_only=True, **dtype_kwarg(torch_dtype(self.dtype, dev)))
        model.to(dev).eval()
        self.frame_rate = float(model.config.audio_encoder.frame_rate)
        self.num_codebooks = int(model.decoder.num_codebooks)
        return processor, model

    # -- generation ----------------------------------------------------------------
    def n_samples(self) -> int:
        return int(round(self.duration_s * self.sample_rate))

    def max_new_tokens(self) -> int:
        return int(math.ceil(self.duration_s * (self.frame_rate or 50.0))) + self.num_codebooks - 1

    def generate(self, prompts: Sequence[Prompt], seeds: Sequence[int]) -> list[np.ndarray]:
        loaded = self.load()
        if self.backend == "audiocraft":
            return self._generate_audiocraft(loaded, prompts, seeds)
        import copy

        import torch

        processor, model = loaded
        inputs = processor(text=[p.text for p in prompts], padding=True, return_tensors="pt").to(model.device)
        gen_cfg = copy.deepcopy(model.generation_config)
        gen_cfg.do_sample = False  # sampling happens in SeededSampler (per-item generators)
        gen_cfg.top_k = gen_cfg.top_p = gen_cfg.temperature = None
        gen_cfg.guidance_scale = self.guidance_scale if self.guidance_scale > 1 else None
        gen_cfg.max_new_tokens = self.max_new_tokens()
        gen_cfg.max_length = None
        sampler = make_seeded_sampler(
            seeds, self.num_codebooks, self.guidance_scale, self.do_sample, self.temperature, self.top_k, self.top_p
        )
        from transformers import LogitsProcessorList

        with torch.inference_mode():
            audio = model.generate(**inputs, generation_config=gen_cfg, logits_processor=LogitsProcessorList([sampler]))
        audio = audio.float().cpu().numpy()  # (B, channels, samples)
        return [fit_length(channels_last(a), self.n_samples()) for a in audio]

    def _generate_audiocraft(self, model, prompts: Sequence[Prompt], seeds: Sequence[int]) -> list[np.ndarray]:
        import torch

        out = []
        for p, s in zip(prompts, seeds):  # one at a time: audiocraft samples from the global RNG
            torch.manual_seed(int(s))
            wav = model.generate([p.text], progress=False)[0]  # (channels, samples)
            out.append(fit_length(channels_last(wav.float().cpu().numpy()), self.n_samples()))
        return out
