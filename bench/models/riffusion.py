"""Riffusion (Forsgren & Martiros 2022): Stable Diffusion fine-tuned on spectrogram images.

The text-to-image part is ``diffusers.StableDiffusionPipeline`` ("riffusion/riffusion-model-v1",
safety checker off: it would blank spectrograms). The image -> audio part re-implements
riffusion's documented conversion (``riffusion/spectrogram_image_converter.py``,
``spectrogram_converter.py``, ``util/image_util.py`` and ``spectrogram_params.py`` of
github.com/riffusion/riffusion, MIT) with torchaudio:

1. image -> mel amplitudes: take the red channel (mono), flip vertically (low frequencies at the
   bottom), invert (``255 - x``), scale to [0, 1], undo the power curve (``x ** (1 / 0.25)``) and
   scale by ``max_value = 30e6``;
2. mel -> linear STFT magnitudes: ``torchaudio.transforms.InverseMelScale`` (512 HTK mels, 0-10 kHz,
   no norm; riffusion ran 200 SGD iterations, current torchaudio solves the least-squares
   problem directly);
3. magnitudes -> waveform: Griffin-Lim, 32 iterations, momentum 0.99, n_fft 17640 (400 ms),
   window 4410 (100 ms), hop 441 (10 ms) at 44.1 kHz. Its random phase init is seeded with the
   item seed (run on CPU so it is identical on every device);
4. riffusion's default output filter: peak-normalise to -0.1 dBFS.

A 512 x 512 image is 512 frames = 5.11 s; ``width`` sets the frames per clip ("auto": from
``duration_s``, rounded up to a multiple of 8; the model was trained on 512).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.models.hf import DiffusersModel


@dataclass(frozen=True)
class SpectrogramParams:
    """riffusion's ``SpectrogramParams`` defaults (mono)."""

    sample_rate: int = 44100
    step_size_ms: int = 10
    window_duration_ms: int = 100
    padded_duration_ms: int = 400
    min_frequency: float = 0.0
    max_frequency: float = 10000.0
    mel_scale_norm: str | None = None
    mel_scale_type: str = "htk"
    num_griffin_lim_iters: int = 32
    power_for_image: float = 0.25
    max_value: float = 30e6

    @property
    def n_fft(self) -> int:
        return int(self.padded_duration_ms / 1000.0 * self.sample_rate)

    @property
    def win_length(self) -> int:
        return int(self.window_duration_ms / 1000.0 * self.sample_rate)

    @property
    def hop_length(self) -> int:
        return int(self.step_size_ms / 1000.0 * self.sample_rate)


def spectrogram_from_image(image: np.ndarray, params: SpectrogramParams = SpectrogramParams()) -> np.ndarray:
    """uint8 image ``(height, width[, channels])`` -> mel amplitudes ``(height, width)`` float32
    (row 0 = lowest mel band)."""
    data = np.asarray(image)
    if data.ndim == 3:
        data = data[..., 0]
    data = (255.0 - data.astype(np.float32)) / 255.0
    data = np.power(data, 1.0 / params.power_for_image) * params.max_value
    return np.ascontiguousarray(data[::-1], dtype=np.float32)


def image_from_spectrogram(mel: np.ndarray, params: SpectrogramParams = SpectrogramParams()) -> np.ndarray:
    """Inverse of :func:`spectrogram_from_image` (riffusion's ``image_from_spectrogram``): mel amplitudes
    ``(n_mels, frames)`` -> uint8 RGB image ``(n_mels, frames, 3)``, scaled by the maximum (stored
    nowhere: the decoder assumes ``max_value``)."""
    data = np.asarray(mel, dtype=np.float64)
    peak = float(data.max()) or 1.0
    data = np.power(data / peak, params.power_for_image) * 255.0
    data = (255.0 - data).astype(np.uint8)[::-1]
    return np.ascontiguousarray(np.repeat(data[..., None], 3, axis=-1))


def waveform_from_spectrogram(
    mel: np.ndarray, params: SpectrogramParams = SpectrogramParams(), seed: int = 0
) -> np.ndarray:
    """Mel amplitudes ``(n_mels, frames)`` -> float32 waveform ``((frames - 1) * hop,)`` via
    InverseMelScale + Griffin-Lim (CPU; the random phase init is seeded)."""
    import torch
    import torchaudio.transforms as T

    n_mels = mel.shape[0]
    inv_mel = T.InverseMelScale(
        n_stft=params.n_fft // 2 + 1,
        n_mels=n_mels,
        sample_rate=params.sample_rate,
        f_min=params.min_frequency,
        f_max=params.max_frequency,
        norm=params.mel_scale_norm,
        mel_scale=params.mel_scale_type,
    )
    griffin_lim = T.GriffinLim(
        n_fft=params.n_fft,
        n_iter=params.num_griffin_lim_iters,
        win_length=params.win_length,
        hop_length=params.hop_length,
        power=1.0,
        momentum=0.99,
    )
    with torch.random.fork_rng(devices=[]), torch.inference_mode():
        torch.manual_seed(int(seed))
        linear = inv_mel(torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))[None])
        wav = griffin_lim(linear)[0]
    return wav.numpy().astype(np.float32)


def peak_normalize(x: np.ndarray, headroom_db: float = 0.1) -> np.ndarray:
    """Scale to a peak of ``-headroom_db`` dBFS (riffusion's default ``apply_filters``)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return x if peak == 0 else (x * (10 ** (-headroom_db / 20) / peak)).astype(np.float32)


class RiffusionModel(DiffusersModel):
    """Text -> spectrogram image (Stable Diffusion) -> audio (Griffin-Lim), 44.1 kHz mono.

    Args:
        height: mel bands = image height (512 for riffusion-model-v1).
        width: frames = image width, or "auto" (from ``duration_s``; 10 ms per pixel).
        normalize: peak-normalise to -0.1 dBFS as riffusion does.
        spectrogram: overrides of :class:`SpectrogramParams` (e.g. ``num_griffin_lim_iters``).
        Other args: see :class:`bench.models.hf.DiffusersModel` (riffusion's app: 50 steps, guidance 7).
    """

    name = "riffusion"
    pipeline_class = "StableDiffusionPipeline"
    default_model_id = "riffusion/riffusion-model-v1"
    env_var = "GENAUDIO_BENCH_RIFFUSION_PATH"
    default_sample_rate = 44100
    #: width in pixels as resolved from ``duration_s`` (a call argument); the full spectrogram settings
    param_aliases = {**DiffusersModel.param_aliases, "width": "width", "spectrogram": "spectrogram"}

    def __init__(
        self,
        num_inference_steps: int = 50,
        guidance_scale: float = 7.0,
        height: int = 512,
        width: int | str = 512,
        normalize: bool = True,
        spectrogram: dict | None = None,
        **kw,
    ):
        self.spec = SpectrogramParams(**(spectrogram or {}))
        self.height = int(height)
        self.width_cfg = width
        self.normalize = bool(normalize)
        super().__init__(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, **kw)
        self.sample_rate = self.spec.sample_rate

    @property
    def width(self) -> int:
        if str(self.width_cfg) == "auto":
            frames = self.duration_s * 1000.0 / self.spec.step_size_ms + 1
            return int(math.ceil(frames / 8) * 8)
        return int(self.width_cfg)

    def derived_params(self) -> dict[str, Any]:
        return {**super().derived_params(), "spectrogram": self.spec.__dict__}

    def load_kwargs(self) -> dict[str, Any]:
        return {"safety_checker": None, "requires_safety_checker": False, "feature_extractor": None}

    def call_kwargs(self) -> dict[str, Any]:
        return {"height": self.height, "width": self.width, "output_type": "np"}

    def to_waveforms(self, result: Any, seeds) -> list[np.ndarray]:
        """Spectrogram images ``(B, H, W, 3)`` in [0, 1] -> waveforms (one Griffin-Lim per item, seeded)."""
        out = []
        for img, s in zip(np.asarray(result.images), seeds):
            img8 = (img * 255).round().clip(0, 255).astype(np.uint8)  # what riffusion gets as a PIL image
            wav = waveform_from_spectrogram(spectrogram_from_image(img8, self.spec), self.spec, seed=int(s))
            out.append(peak_normalize(wav) if self.normalize else wav)
        return out
