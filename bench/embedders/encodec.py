"""EnCodec encoder latents as embeddings (``encodec`` 0.1.1 model code, weights via :mod:`bench.checkpoints`).

The embedding is the continuous output of EnCodec's SEANet encoder *before* residual vector quantisation:
``(T, 128)`` frames at ``sample_rate / 320`` Hz (75 Hz for the 24 kHz model, 150 Hz for the 48 kHz one),
as fadtk's ``encodec-emb`` models use it.

* 24 kHz model (default, mono, causal): the whole clip goes through ``model.encoder`` in one pass (the
  model has no segmenting; ``EncodecModel.encode`` does the same), T = ceil(samples / 320).
* 48 kHz model (stereo, non-causal): cut into consecutive non-overlapping 1-s segments, each encoded
  separately and the frames concatenated -- fadtk's ``EncodecEmbModel`` scheme. ``EncodecModel.encode``
  instead overlaps segments by 1 % and divides each by its RMS before the encoder; ``normalize=True`` applies
  that RMS normalisation per segment (the overlap is not reproduced). Mono input is duplicated to both
  channels (encodec's ``convert_audio`` does the same); 2-D ``(samples, 2)`` input is used as is.

Weights: ``encodec_24khz-d7cc33bc.th`` / ``encodec_48khz-7e698e3e.th`` from dl.fbaipublicfiles.com; the
hex in the name is the sha256 prefix torch.hub checks, and we check it too for files under that name
(the torch hub cache ``$TORCH_HOME/hub/checkpoints`` is searched, so encodec's own downloads are reused).
Loading is ``torch.load(weights_only=True)`` into ``EncodecModel.encodec_model_*(pretrained=False)``.

Long clips: the 24 kHz encoder runs over the whole clip at once (its LSTM sees all of it), so memory grows
with duration; the default audio spec keeps the first 180 s, as fadtk does.

Parity (``tests/embedders/test_encodec.py``, table in ``docs/parity.md``): compared with fadtk 1.1.0's own
``EncodecEmbModel`` (``load_model``, ``load_wav`` with encodec's ``convert_audio``, ``_get_embedding`` with its
48 kHz 1-s segmenting) holding random weights that our embedder loads from a file, on fadtk's real clips (mono
and stereo): max relative difference 2.9e-6 at 24 kHz and 3.8e-7 at 48 kHz (asserted < 1e-5). What differs:
fadtk stores embeddings as float16 (relative 3.4e-4 against ours, float32); fadtk decodes with
``torchaudio.load`` (we use soundfile); both resample with torchaudio's default sinc. The released key layout
(weight-norm ``weight_g``/``weight_v``, quantizer buffers) is a golden list in ``tests/embedders/golden``.
Real weights not checked offline.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.audio import AudioSpec
from bench.checkpoints import CheckpointSpec, CheckpointUnavailable, resolve
from bench.embedders.base import Embedder, EmbedderUnavailable

ROOT_URL = "https://dl.fbaipublicfiles.com/encodec/v0/"
HOP = 320  # encoder stride in samples: prod(ratios) = 8 * 5 * 4 * 2
DIM = 128
#: samples per encoder pass on CPU (one 10 s clip at 24 kHz)
CPU_PASS_SAMPLES = 240_000


@dataclass(frozen=True)
class EncodecVariant:
    filename: str
    sample_rate: int
    channels: int
    factory: str  # EncodecModel static constructor
    config_key: str

    def spec(self) -> CheckpointSpec:
        return CheckpointSpec(
            filename=self.filename,
            url=ROOT_URL + self.filename,
            sha256=None,  # only the 8-hex prefix in the file name is published (checked by resolve)
            env_var="GENAUDIO_BENCH_" + self.config_key.upper() + "_CKPT",
            config_key=f"embedder.{self.config_key}.checkpoint",
        )


VARIANTS: dict[str, EncodecVariant] = {
    "24khz": EncodecVariant("encodec_24khz-d7cc33bc.th", 24000, 1, "encodec_model_24khz", "encodec"),
    "48khz": EncodecVariant("encodec_48khz-7e698e3e.th", 48000, 2, "encodec_model_48khz", "encodec_48k"),
}


def build_encodec_model(variant: str = "24khz"):
    """Randomly initialised EnCodec model of the published architecture (eval mode)."""
    try:
        from encodec import EncodecModel
    except ImportError as exc:
        raise EmbedderUnavailable("encodec is not installed: pip install encodec==0.1.1") from exc
    return getattr(EncodecModel, VARIANTS[variant].factory)(pretrained=False).eval()


def rms_normalize(x, eps: float = 1e-8):
    """EncodecModel's per-segment normalisation: divide ``(B, C, L)`` by ``eps + rms(mean over channels)``."""
    volume = x.mean(dim=1, keepdim=True).pow(2).mean(dim=2, keepdim=True).sqrt()
    return x / (eps + volume)


def to_channels(wav: np.ndarray, channels: int) -> np.ndarray:
    """``(samples,)`` or ``(samples, ch)`` -> ``(channels, samples)``: mean for 2->1, duplicate for 1->2."""
    x = np.asarray(wav, dtype=np.float32)
    x = x[None] if x.ndim == 1 else x.T
    if x.shape[0] == channels:
        return np.ascontiguousarray(x)
    if channels == 1:
        return x.mean(axis=0, keepdims=True)
    if x.shape[0] == 1:
        return np.repeat(x, channels, axis=0)
    raise ValueError(f"cannot turn {x.shape[0]} channels into {channels}")


class EncodecEmbedder(Embedder):
    """EnCodec pre-quantisation encoder frames ``{"emb": (T, 128)}``.

    Args:
        variant: "24khz" (default) or "48khz".
        checkpoint: explicit path to the weights (else env var / cache dirs / download).
        segment_s: segment length in seconds encoded independently; None = the model's own (24 kHz: whole
            clip, 48 kHz: 1 s).
        normalize: divide each segment by its RMS first (what ``EncodecModel.encode`` does for 48 kHz).
    """

    name = "encodec"
    default_audio = AudioSpec(sample_rate=24000, mono="mean", resampler="torchaudio_sinc", max_duration_s=180.0)

    param_aliases = {"checkpoint": "checkpoint_sha256", "segment_s": "segment"}

    def __init__(
        self,
        variant: str = "24khz",
        checkpoint: str | os.PathLike | None = None,
        segment_s: float | None = None,
        normalize: bool = False,
        audio: AudioSpec | dict | None = None,
        device: str = "auto",
        batch_size: int = 8,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"unknown EnCodec variant {variant!r}; choose one of {sorted(VARIANTS)}")
        self.variant = variant
        self.spec = VARIANTS[variant]
        self.default_audio = AudioSpec(
            sample_rate=self.spec.sample_rate, mono="mean", resampler="torchaudio_sinc", max_duration_s=180.0
        )
        super().__init__(audio=audio, device=device, batch_size=batch_size)
        self.require_rate(self.spec.sample_rate, f"EnCodec {variant}")
        self.name = self.spec.config_key
        self.normalize = bool(normalize)

        self.ckpt_path, self.ckpt_sha256 = resolve(self.spec.spec(), checkpoint)
        import torch

        self.model = build_encodec_model(variant)
        state = torch.load(self.ckpt_path, map_location="cpu", weights_only=True)
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointUnavailable(f"{self.ckpt_path} is not an EnCodec {variant} state dict: {exc}") from exc
        self.model.to(torch.device(self.device)).eval()
        if segment_s is None:
            self.segment = self.model.segment_length  # None (whole clip) for 24 kHz, 48000 for 48 kHz
        else:
            self.segment = int(round(segment_s * self.spec.sample_rate))
            if self.segment <= 0:
                raise ValueError(f"segment_s must be > 0, got {segment_s}")

    def derived_params(self) -> dict[str, Any]:
        return {
            "checkpoint_sha256": self.ckpt_sha256,
            "segment": self.segment,
            "layer": "encoder_output_prequantization",
        }

    def checkpoints(self) -> dict[str, dict[str, str]]:
        return {"encodec": {"path": str(self.ckpt_path), "sha256": self.ckpt_sha256}}

    def segments(self, wav: np.ndarray) -> list[np.ndarray]:
        """One clip -> its encoder inputs ``(channels, seg_len)`` in time order."""
        x = to_channels(wav, self.spec.channels)
        n = x.shape[1]
        if self.segment is None or n <= self.segment:
            return [x]
        return [x[:, s : s + self.segment] for s in range(0, n, self.segment)]

    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        return self.embed_batch([wav])[0]

    def embed_batch(self, wavs: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Segments of equal length (from any clips) share forward passes; results are per clip, in order."""
        import torch

        segs = [self.segments(w) for w in wavs]
        by_len: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for i, clip in enumerate(segs):
            for j, s in enumerate(clip):
                by_len[s.shape[1]].append((i, j))
        frames: dict[tuple[int, int], np.ndarray] = {}
        dev = torch.device(self.device)
        with torch.inference_mode():
            for seg_len, keys in by_len.items():
                # on CPU the full-rate convolutions slow down with batch size: cap a pass at ~10 s of audio
                # (measured 1.8x slower per clip for 4 x 10 s in one pass); GPUs keep the configured batch
                step = self.batch_size if dev.type != "cpu" else max(1, min(self.batch_size, CPU_PASS_SAMPLES // seg_len))
                for k in range(0, len(keys), step):
                    chunk = keys[k : k + step]
                    x = torch.from_numpy(np.stack([segs[i][j] for i, j in chunk])).to(dev)
                    if self.normalize:
                        x = rms_normalize(x)
                    emb = self.model.encoder(x).transpose(1, 2).float().cpu().numpy()  # (B, T, 128)
                    for (i, j), e in zip(chunk, emb, strict=True):
                        frames[(i, j)] = e
        return [
            {"emb": np.ascontiguousarray(np.concatenate([frames[(i, j)] for j in range(len(clip))]), np.float32)}
            for i, clip in enumerate(segs)
        ]
