"""aiSFX sound-effects embeddings (Ma & Lerch, ISMIR 2022), re-implemented natively in torch.

The ``aisfx==0.1.2`` wheel ships ``aisfx/models/checkpoint.pth``: a ``(state_dict, ds_dict)`` pair
of the best "X-Sequential-CE" ``CrossNet`` (a 4-block VGG-like ``EmbeddingNet`` from the DCASE
cross-task baseline + one classification head per training library). The model card says
CC BY 4.0 (the wheel's LICENSE file; its classifier metadata says MIT). We load only the
``embedding_net.*`` weights; the heads have no class names in the package, so there is no ``probs``.

Loading: ``torch.load(weights_only=True)`` refuses the file because ``ds_dict`` holds numpy int64
scalars (pickled as ``numpy.core.multiarray.scalar`` + ``numpy.dtype``). We allow exactly those
two reconstructors for this load (torch's documented ``safe_globals`` mechanism); nothing else in
the pickle is executable. The package itself is never imported (``find_spec`` only locates it).

Preprocessing = the package's original (ISMIR) Essentia pipeline, reproduced in torch:

- audio at 44.1 kHz, mono mix (Essentia ``EasyLoader``, replayGain -6 dB -> gain 1.0; it resamples
  with libsamplerate, we default to a Kaiser-windowed sinc, ``torchaudio_kaiser_best``),
- ``FrameCutter(frameSize=2048, hopSize=1024)`` with Essentia's default ``startFromZero=False``:
  frames centred at ``k * 1024`` for ``k = 0 .. ceil(n / 1024)``, zero-padded at both ends,
- symmetric Hann window (``0.5 - 0.5 cos(2 pi i / (N - 1))``, not normalised), ``|FFT|^2``,
- ``MelBands``: 96 triangular bands on the HTK mel scale (``2595 log10(1 + f / 700)``) between
  0 and 22050 Hz, weights computed on the mel axis ("warping"), each band normalised to unit sum,
- ``log10(10000 * x + 1)``, then min-max normalisation with the paper's global constants
  (min 0, max 9.457798957824707),
- blocks of 100 frames (~2.3 s) with hop ``round(100 * emb_hop)`` (0.5 -> 50 frames, ~1.16 s);
  an incomplete last block is dropped (``drop_partial_block=True``) unless it is the only one.

``embed`` returns ``{"emb": (n_blocks, 512)}``: per block, max over time of the frequency-mean of
the last conv block.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.audio import AudioSpec
from bench.checkpoints import CheckpointSpec, CheckpointUnavailable, resolve, torch_load_weights
from bench.embedders.base import Embedder, EmbedderUnavailable
from bench.embedders.pann import ConvBlock
from bench.resources import installed_package_dirs

ENV_CKPT = "GENAUDIO_BENCH_AISFX_CHECKPOINT"
#: sha256 of aisfx/models/checkpoint.pth in aisfx==0.1.2
CHECKPOINT_SHA256 = "499ea75909c932a2f94c35fa722fa4fabc5bcb7e84917209cc5f7402627b7eb5"
CHECKPOINT_SPEC = CheckpointSpec(
    filename="aisfx_checkpoint.pth",
    url=None,  # ships only inside the aisfx wheel on PyPI
    sha256=CHECKPOINT_SHA256,
    source="sha256 of aisfx/models/checkpoint.pth in the aisfx==0.1.2 wheel",
    aliases=("checkpoint.pth",),
    env_var=ENV_CKPT,
    config_key="embedder.aisfx.checkpoint",
)

# aisfx/inference.py
SAMPLE_RATE = 44100
FRAME_SIZE, HOP_SIZE = 2048, 1024
N_MELS = 96
F_MIN, F_MAX = 0.0, 22050.0
EMB_BLOCK_LENGTH = 100
NORM_MIN, NORM_MAX = 0.0, 9.457798957824707  # spectrogram_normalize(spec_norm="original")


# -- preprocessing (pure functions) -------------------------------------------------------------


def hz_to_mel_htk(f: np.ndarray) -> np.ndarray:
    """Essentia ``hz2mel10``: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz_htk(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def essentia_mel_filterbank(
    sr: float = SAMPLE_RATE, n_fft: int = FRAME_SIZE, n_mels: int = N_MELS, fmin: float = F_MIN, fmax: float = F_MAX
) -> np.ndarray:
    """Essentia ``MelBands(warpingFormula="htkMel", weighting="warping", normalize="unit_sum")``.

    Returns ``(n_mels, n_fft // 2 + 1)`` float32 (TriangularBands.createFilters: bins
    ``ceil(f_lo / df) .. floor(f_hi / df)``, triangle evaluated on the mel axis, unit-sum rows).
    """
    n_bins = n_fft // 2 + 1
    edges = mel_to_hz_htk(np.linspace(hz_to_mel_htk(fmin), hz_to_mel_htk(fmax), n_mels + 2))
    df = (sr / 2.0) / (n_bins - 1)
    out = np.zeros((n_mels, n_bins), dtype=np.float64)
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        m_lo, m_mid, m_hi = hz_to_mel_htk([lo, mid, hi])
        j = np.arange(math.ceil(lo / df), min(math.floor(hi / df), n_bins - 1) + 1)
        m = hz_to_mel_htk(j * df)
        w = np.where(j * df < mid, (m - m_lo) / (m_mid - m_lo), (m_hi - m) / (m_hi - m_mid))
        total = w.sum()
        if total <= 0:
            raise ValueError(f"mel band {i} has no FFT bins; use a longer frame")
        out[i, j] = w / total
    return out.astype(np.float32)


def hann_symmetric(n: int) -> np.ndarray:
    """Essentia's Hann window: ``0.5 - 0.5 cos(2 pi i / (n - 1))`` (float32)."""
    i = np.arange(n, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * i / (n - 1.0))).astype(np.float32)


def n_essentia_frames(n_samples: int, hop: int = HOP_SIZE) -> int:
    """Frames of Essentia's streaming ``FrameCutter`` (``startFromZero=False``): ``ceil(n / hop) + 1``."""
    return 0 if n_samples <= 0 else -(-n_samples // hop) + 1


def log_mel(wav: torch.Tensor, filterbank: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """``(samples,)`` at 44.1 kHz -> normalised log-mel ``(frames, 96)`` as the aiSFX Essentia pipeline."""
    n = wav.shape[-1]
    n_frames = n_essentia_frames(n)
    left = (FRAME_SIZE + 1) // 2
    total = (n_frames - 1) * HOP_SIZE + FRAME_SIZE
    x = F.pad(wav.to(torch.float32), (left, total - left - n))
    frames = x.unfold(0, FRAME_SIZE, HOP_SIZE) * window  # (frames, 2048)
    spec = torch.fft.rfft(frames, dim=-1)
    power = spec.real.square() + spec.imag.square()  # |X|^2, (frames, 1025)
    mel = power @ filterbank.T
    logmel = torch.log10(10000.0 * mel + 1.0)
    return (logmel - NORM_MIN) / (NORM_MAX - NORM_MIN)


def block_starts(n_frames: int, block: int = EMB_BLOCK_LENGTH, hop: int = 50, drop_partial: bool = True) -> list[int]:
    """Start frames of ``aisfx.preprocessing.blocking`` (blocks past the end are zero-filled)."""
    num = math.ceil((n_frames - block) / hop + 1)
    if (n_frames - block) % hop != 0 and drop_partial:
        num -= 1
    return [i * hop for i in range(max(num, 1))]


def make_blocks(spec: torch.Tensor, block: int, hop: int, drop_partial: bool) -> torch.Tensor:
    """``(frames, mels)`` -> ``(n_blocks, block, mels)``, zero-padded past the end."""
    starts = block_starts(spec.shape[0], block, hop, drop_partial)
    padded = F.pad(spec, (0, 0, 0, block))  # aisfx appends `block` zero rows
    return torch.stack([padded[s : s + block] for s in starts])


# -- model -------------------------------------------------------------------------------------


class EmbeddingNet(nn.Module):
    """``EmbeddingNet('max', 3, 1, 64)`` (blocks: PANN's conv block with max pooling): input ``(B, frames, mels)`` -> ``(B, 512)``."""

    def __init__(self, width: int = 64):
        super().__init__()
        w = [1, width, 2 * width, 4 * width, 8 * width]
        self.conv_block1 = ConvBlock(w[0], w[1], "max")
        self.conv_block2 = ConvBlock(w[1], w[2], "max")
        self.conv_block3 = ConvBlock(w[2], w[3], "max")
        self.conv_block4 = ConvBlock(w[3], w[4], "max")
        self.dim = w[4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)
        x = self.conv_block1(x, (2, 2))
        x = self.conv_block2(x, (2, 2))
        x = self.conv_block3(x, (2, 2))
        x = self.conv_block4(x, (1, 1))
        return x.mean(dim=3).amax(dim=2)  # mean over frequency, max over time


def installed_checkpoint() -> Path | None:
    """``aisfx/models/checkpoint.pth`` of the installed wheel, found without importing aisfx."""
    dirs = installed_package_dirs("aisfx")
    path = dirs[0] / "models" / "checkpoint.pth" if dirs else None
    return path if path is not None and path.is_file() else None


def how_to() -> str:
    return (
        "aiSFX weights not found: install them with `pip install --no-deps aisfx==0.1.2` (data-only install), "
        f"or set embedder.aisfx.checkpoint=/path/to/checkpoint.pth, or export {ENV_CKPT}=/path/to/checkpoint.pth"
    )


def find_checkpoint(checkpoint: str | os.PathLike | None = None) -> tuple[Path, str]:
    """explicit path > ``$GENAUDIO_BENCH_AISFX_CHECKPOINT`` > bench cache dirs > installed wheel."""
    try:
        return resolve(CHECKPOINT_SPEC, checkpoint)
    except CheckpointUnavailable:
        if checkpoint or os.environ.get(ENV_CKPT):
            raise
    wheel = installed_checkpoint()
    if wheel is None:
        raise EmbedderUnavailable(how_to())
    return resolve(CHECKPOINT_SPEC, wheel)


def _numpy_scalar_globals() -> list:
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        from numpy._core.multiarray import scalar
    else:
        from numpy.core.multiarray import scalar
    return [(scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"), np.dtype] + [
        type(np.dtype(t)) for t in (np.int64, np.int32)
    ]


def load_embedding_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """``embedding_net.*`` weights (prefix stripped) and ``ds_dict`` from the aiSFX checkpoint."""
    obj = torch_load_weights(path, allowed=_numpy_scalar_globals())  # ds_dict holds numpy int scalars only
    if not (isinstance(obj, tuple | list) and len(obj) == 2 and isinstance(obj[0], dict)):
        raise EmbedderUnavailable(f"{path}: expected a (state_dict, ds_dict) pair, got {type(obj).__name__}")
    weights, ds_dict = obj
    prefix = "embedding_net."
    state = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    return state, {str(k): (int(v[0]), int(v[1])) for k, v in dict(ds_dict).items()}


class AISFXEmbedder(Embedder):
    """aiSFX 512-d sound-effects embeddings per ~2.3 s block.

    Args:
        checkpoint: path to ``checkpoint.pth``; None searches ``$GENAUDIO_BENCH_AISFX_CHECKPOINT``,
            ``<bench_home>/checkpoints/aisfx_checkpoint.pth`` and the installed aisfx wheel.
        emb_hop: block hop as a fraction of the 100-frame block (aisfx default 0.5).
        drop_partial_block: drop an incomplete last block (aisfx default True).
        batch_size: blocks per forward pass.
    """

    name = "aisfx"
    default_audio = AudioSpec(sample_rate=SAMPLE_RATE, mono="mean", resampler="torchaudio_kaiser_best")

    param_aliases = {"checkpoint": "checkpoint_sha256", "emb_hop": "block_hop_frames"}

    def __init__(
        self,
        checkpoint: str | None = None,
        emb_hop: float = 0.5,
        drop_partial_block: bool = True,
        device: str = "auto",
        batch_size: int = 8,
        audio: AudioSpec | dict | None = None,
    ):
        super().__init__(audio=audio, device=device, batch_size=batch_size)
        self.require_rate(SAMPLE_RATE, "aiSFX")
        self.block_hop = int(np.round(EMB_BLOCK_LENGTH * float(emb_hop)))
        if self.block_hop < 1:
            raise ValueError(f"emb_hop={emb_hop} gives a block hop < 1 frame")
        self.emb_hop = float(emb_hop)
        self.drop_partial_block = bool(drop_partial_block)
        self.checkpoint_path, self.sha256 = find_checkpoint(checkpoint)
        try:
            state, self.ds_dict = load_embedding_state(self.checkpoint_path)
        except (RuntimeError, OSError, ValueError) as exc:  # torch raises UnpicklingError (a RuntimeError)
            raise EmbedderUnavailable(f"cannot load aiSFX checkpoint {self.checkpoint_path}: {exc}") from exc
        net = EmbeddingNet()
        net.load_state_dict(state, strict=True)
        self.net = net.eval().to(self.device)
        self.filterbank = torch.from_numpy(essentia_mel_filterbank()).to(self.device)
        self.window = torch.from_numpy(hann_symmetric(FRAME_SIZE)).to(self.device)

    def derived_params(self) -> dict[str, Any]:
        return {
            "checkpoint_sha256": self.sha256,
            "features": {
                "sample_rate": SAMPLE_RATE,
                "frame": FRAME_SIZE,
                "hop": HOP_SIZE,
                "frame_cutter": "essentia_startFromZero_false",
                "window": "hann_symmetric",
                "n_mels": N_MELS,
                "mel": "essentia_htk_warping_unit_sum_0_22050",
                "log": "log10(10000*x+1)",
                "norm": [NORM_MIN, NORM_MAX],
            },
            "block_frames": EMB_BLOCK_LENGTH,
            "block_hop_frames": self.block_hop,
        }

    def checkpoints(self) -> dict[str, dict[str, str]]:
        return {"aisfx": {"path": str(self.checkpoint_path), "sha256": self.sha256}}

    def blocks(self, wav: np.ndarray) -> torch.Tensor:
        """``(samples,)`` float32 at 44.1 kHz -> model input blocks ``(n_blocks, 100, 96)`` on the device."""
        x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)).to(self.device)
        spec = log_mel(x, self.filterbank, self.window)
        return make_blocks(spec, EMB_BLOCK_LENGTH, self.block_hop, self.drop_partial_block)

    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        return self.embed_batch([wav])[0]

    @torch.inference_mode()
    def embed_batch(self, wavs: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        per = [self.blocks(w) for w in wavs]
        counts = [b.shape[0] for b in per]
        allb = torch.cat(per)
        bs = max(1, self.batch_size)
        emb = torch.cat([self.net(allb[i : i + bs]).float().cpu() for i in range(0, allb.shape[0], bs)])
        out, start = [], 0
        for n in counts:
            out.append({"emb": emb[start : start + n].numpy().astype(np.float32)})
            start += n
        return out
