"""musicnn music taggers (Pons & Serra 2019) re-implemented in torch, loading the original TF weights.

The ``musicnn==0.1.0`` wheel (ISC license) ships four trained taggers as TF1 checkpoints:
``MSD_musicnn`` / ``MTT_musicnn`` (musically motivated CNN: vertical timbral + horizontal
temporal filters, dense residual mid-end, mean+max temporal pooling back end) and
``MSD_vgg`` / ``MTT_vgg`` (5-layer VGG-like CNN). Each predicts 50 tags from 3 s log-mel patches.
We read those checkpoints with :mod:`bench.formats.tf_checkpoint` (no TensorFlow) and never
import the ``musicnn`` package (it imports TensorFlow at import time): the files are found via
``importlib.util.find_spec("musicnn")``, which does not execute the package.

Preprocessing (``musicnn/extractor.py`` + ``configuration.py``):

- audio at 16 kHz, mono. ``librosa.load(sr=16000)`` resampled with resampy ``kaiser_best`` in the
  librosa 0.6/0.7 era in which the models were trained and released, so the default
  :class:`AudioSpec` uses resampy kaiser_best (``resampler="kaiser_best_polyphase"``, the same taps in polyphase
  form; librosa >= 0.10 would use soxr_hq).
- ``librosa.feature.melspectrogram``: n_fft 512, hop 256, periodic Hann, ``center=True``; padding
  is ``reflect`` (librosa < 0.10 default, what training used), power 2, 96 Slaney mel bands 0-8 kHz
  with Slaney area normalisation.
- ``log10(10000 * S + 1)``, computed in float32. The extractor casts ``S`` to float16 first. With
  the numpy 1.x of its era, ``10000 * S`` was promoted to float32, so that cast only rounded ``S``
  (measured effect on tag probabilities < 1e-4). With numpy >= 2 (NEP 50) the product stays
  float16 and overflows to inf for ``S > 6.55`` (0.01-0.4 % of bins on real music). We skip the
  float16 cast.
- patches of ``n_frames = time_to_frames(input_length) + 1`` = 187 frames (3 s), hop
  ``n_frames`` (``input_overlap=None``, the extractor default: non-overlapping) or
  ``time_to_frames(input_overlap)`` frames. Trailing frames that do not fill a patch are dropped,
  as in the extractor; clips shorter than one patch are repeat-padded (the training config's
  ``pad_short: repeat-pad``) or zero-padded.

Outputs of :meth:`MusicnnEmbedder.embed`: ``"emb"`` = one row per patch from ``layer``
(``penultimate``: 200-d batch-normalised dense layer, the default; ``pool``: 1506-d
``[mean_pool, max_pool]``; ``mean_pool`` / ``max_pool``: 753-d; ``taggram``: 50 sigmoid tag
probabilities; vgg models: ``pool5`` 256-d flattened, default) and ``"probs"`` = clip-level tag
probabilities (mean over patches of the sigmoid outputs, as ``musicnn.tagger.top_tags``).
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
from bench.cache import sha256_file
from bench.checkpoints import bench_home, renamed_argument
from bench.embedders.base import Embedder, EmbedderUnavailable, host_to_device
from bench.embedders.frontends import power_spectrogram, slaney_mel_matrix
from bench.formats.tf_checkpoint import CheckpointFormatError, TFCheckpoint
from bench.resources import installed_package_dirs

#: environment variable naming a musicnn checkpoint root (holding MSD_musicnn/...) or one model folder
ENV_DIR = "GENAUDIO_BENCH_MUSICNN_DIR"

# musicnn/configuration.py
SR = 16000
FFT_HOP = 256
FFT_SIZE = 512
N_MELS = 96

MTT_LABELS = [
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
    "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing",
    "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop",
    "soft", "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice",
    "female vocal", "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral",
]  # fmt: skip

MSD_LABELS = [
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
    "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
    "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock",
    "ambient", "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb",
    "indie pop", "sad", "House", "happy",
]  # fmt: skip

#: model -> (architecture, labels, sha256 of the .data-00000-of-00001 file in musicnn==0.1.0, bench name)
MODELS: dict[str, tuple[str, list[str], str, str]] = {
    "MSD_musicnn": ("musicnn", MSD_LABELS, "8579734ee6388f799ed0def4bbd0d1fdcbeaf213ef2a9dc860917bd76a303de6", "musicnn"),
    "MTT_musicnn": ("musicnn", MTT_LABELS, "041f3935e981a65cea739842d30c188d3a7d2adf4410955c8668eb3de4a5acab", "musicnn_mtt"),
    "MSD_vgg": ("vgg", MSD_LABELS, "9683d756b8311146534f333502ebf4a2a78a3e320c54ab0411dff6186d8375fc", "musicnn_vgg"),
    "MTT_vgg": ("vgg", MTT_LABELS, "458f5c8bcecc086a3bba3dce83809df6da6e0a3560a59ddd84711bf3d5fd8303", "musicnn_mtt_vgg"),
}  # fmt: skip

LAYERS = {"musicnn": ("penultimate", "pool", "mean_pool", "max_pool", "taggram"), "vgg": ("pool5", "taggram")}
DATA_FILE = ".data-00000-of-00001"
INDEX_FILE = ".index"
BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization default epsilon


# -- preprocessing (pure functions) -------------------------------------------------------------


def mel_filterbank_slaney(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Slaney-normalised triangular mel filters ``(n_mels, n_fft // 2 + 1)`` float32.

    Same construction as ``librosa.filters.mel(sr, n_fft, n_mels, htk=False, norm="slaney")``:
    :func:`bench.embedders.frontends.slaney_mel_matrix`, transposed.
    """
    mel = slaney_mel_matrix(sr, n_fft, n_mels, fmin, sr / 2.0 if fmax is None else fmax)
    return np.ascontiguousarray(mel.T, dtype=np.float32)


def time_to_frames(seconds: float, sr: int = SR, hop: int = FFT_HOP, n_fft: int = FFT_SIZE) -> int:
    """``librosa.time_to_frames`` (frame whose centre is at/before ``seconds``, centred STFT)."""
    return int((int(seconds * sr) - n_fft // 2) // hop)


def log_mel(wav: torch.Tensor, mel_basis: torch.Tensor, pad_mode: str = "reflect") -> torch.Tensor:
    """musicnn input representation: ``(samples,)`` float32 at 16 kHz -> ``(frames, 96)``.

    ``frames = 1 + samples // 256`` (centred STFT). ``mel_basis`` is ``(96, 257)``.
    """
    wav = wav.to(torch.float32)
    if pad_mode == "reflect" and wav.shape[-1] <= FFT_SIZE // 2:  # reflect needs > n_fft/2 samples
        wav = F.pad(wav, (0, FFT_SIZE // 2 + 1 - wav.shape[-1]))
    window = torch.hann_window(FFT_SIZE, periodic=True, dtype=torch.float32, device=wav.device)
    power = power_spectrogram(wav, FFT_SIZE, FFT_HOP, window, pad_mode)  # (257, frames)
    mel = mel_basis @ power
    return torch.log10(10000.0 * mel + 1.0).T.contiguous()


def patch_starts(n_frames_total: int, n_frames: int, hop: int) -> list[int]:
    """Patch start frames as in ``musicnn.extractor.batch_data`` (partial tail dropped)."""
    return list(range(0, n_frames_total - n_frames + 1, hop))


def make_patches(rep: torch.Tensor, n_frames: int, hop: int, pad_short: str = "repeat") -> torch.Tensor:
    """``(frames, mels)`` -> ``(n_patches, n_frames, mels)``; clips shorter than one patch are padded."""
    if rep.shape[0] < n_frames:
        if pad_short == "repeat":
            reps = math.ceil(n_frames / rep.shape[0])
            rep = rep.repeat(reps, 1)[:n_frames]
        elif pad_short == "zero":
            rep = F.pad(rep, (0, 0, 0, n_frames - rep.shape[0]))
        else:
            raise ValueError(f"pad_short must be 'repeat' or 'zero', got {pad_short!r}")
    starts = patch_starts(rep.shape[0], n_frames, hop)
    return rep.unfold(0, n_frames, hop)[: len(starts)].transpose(1, 2)


# -- models ------------------------------------------------------------------------------------


def _bn2d(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


def _bn1d(c: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(c, eps=BN_EPS)


def _relu_bn_freq_max(h: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """``bn(relu(h)).amax(dim=3)`` for ``h`` (B, C, T, F), without materialising relu/bn on the full map.

    Inference-mode BN is the per-channel affine map ``a * x + b``; it commutes with the max over
    frequency when ``a >= 0`` and turns it into a min when ``a < 0``, and relu commutes with both.
    """
    if bn.training:
        return bn(F.relu(h)).amax(dim=3)
    lo, hi = torch.aminmax(h, dim=3)  # (B, C, T)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    picked = torch.where((scale >= 0)[None, :, None], hi, lo).clamp_min(0)
    return picked * scale[None, :, None] + shift[None, :, None]


class MusicnnNet(nn.Module):
    """``musicnn.models.build_musicnn`` in NCHW layout (time = H, frequency = W).

    Input ``(batch, frames, n_mels)`` log-mel patches. Output dict of ``penultimate`` (B, 200),
    ``mean_pool`` / ``max_pool`` (B, 753), ``logits`` (B, n_classes).
    """

    def __init__(self, num_classes: int = 50, n_mels: int = N_MELS, num_filt_midend: int = 64, num_units: int = 200):
        super().__init__()
        n_timbral, n_temporal = int(1.6 * 128), int(1.6 * 32)
        self.bn_input = _bn2d(1)
        self.timbral = nn.ModuleList([nn.Conv2d(1, n_timbral, (7, int(r * n_mels))) for r in (0.4, 0.7)])
        self.timbral_bn = nn.ModuleList([_bn2d(n_timbral) for _ in range(2)])
        self.temporal_kernels = (128, 64, 32)
        self.temporal = nn.ModuleList([nn.Conv2d(1, n_temporal, (k, 1)) for k in self.temporal_kernels])
        self.temporal_bn = nn.ModuleList([_bn2d(n_temporal) for _ in self.temporal_kernels])
        front = 2 * n_timbral + 3 * n_temporal
        self.mid = nn.ModuleList([nn.Conv1d(c, num_filt_midend, 7) for c in (front, num_filt_midend, num_filt_midend)])
        self.mid_bn = nn.ModuleList([_bn1d(num_filt_midend) for _ in range(3)])
        self.pooled_dim = front + 3 * num_filt_midend
        self.bn_pool = _bn1d(2 * self.pooled_dim)
        self.dense = nn.Linear(2 * self.pooled_dim, num_units)
        self.bn_dense = _bn1d(num_units)
        self.out = nn.Linear(num_units, num_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.bn_input(x.unsqueeze(1))  # (B, 1, T, F)
        feats = []
        xp = F.pad(x, (0, 0, 3, 3))  # 'same' in time only; frequency is max-pooled away
        for conv, bn in zip(self.timbral, self.timbral_bn):
            feats.append(_relu_bn_freq_max(conv(xp), bn))  # (B, 204, T)
        for k, conv, bn in zip(self.temporal_kernels, self.temporal, self.temporal_bn):
            before = (k - 1) // 2  # TF 'same': the extra pad row goes after
            feats.append(_relu_bn_freq_max(conv(F.pad(x, (0, 0, before, k - 1 - before))), bn))  # (B, 51, T)
        front = torch.cat(feats, dim=1)  # (B, 561, T)
        h1 = self.mid_bn[0](F.relu(self.mid[0](F.pad(front, (3, 3)))))
        h2 = self.mid_bn[1](F.relu(self.mid[1](F.pad(h1, (3, 3))))) + h1
        h3 = self.mid_bn[2](F.relu(self.mid[2](F.pad(h2, (3, 3))))) + h2
        mid = torch.cat([front, h1, h2, h3], dim=1)  # (B, 753, T)
        max_pool, mean_pool = mid.amax(dim=2), mid.mean(dim=2)
        flat = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # TF flatten of (753, 2): interleaved
        pen = self.bn_dense(F.relu(self.dense(self.bn_pool(flat))))
        return {"penultimate": pen, "mean_pool": mean_pool, "max_pool": max_pool, "logits": self.out(pen)}


class MusicnnVGG(nn.Module):
    """``musicnn.models.vgg``: 5 x (3x3 conv, ReLU, BN, max-pool), dense logits on flattened pool5."""

    POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))

    def __init__(self, num_classes: int = 50, num_filters: int = 128, n_frames: int = 187, n_mels: int = N_MELS):
        super().__init__()
        self.bn_input = _bn2d(1)
        self.convs = nn.ModuleList(
            [nn.Conv2d(1 if i == 0 else num_filters, num_filters, 3, padding=1) for i in range(5)]
        )
        self.bns = nn.ModuleList([_bn2d(num_filters) for _ in range(5)])
        h, w = n_frames, n_mels
        for (kh, kw), (sh, sw) in self.POOLS:
            h, w = (h - kh) // sh + 1, (w - kw) // sw + 1
        self.flat_dim = h * w * num_filters
        self.out = nn.Linear(self.flat_dim, num_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.bn_input(x.unsqueeze(1))
        for conv, bn, (k, s) in zip(self.convs, self.bns, self.POOLS):
            x = F.max_pool2d(bn(F.relu(conv(x))), kernel_size=k, stride=s)
        pool5 = x.permute(0, 2, 3, 1).flatten(1)  # TF flattens NHWC
        return {"pool5": pool5, "logits": self.out(pool5)}


def _bn_state(prefix: str, tf: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    return {
        f"{prefix}.weight": tf[f"{name}/gamma"],
        f"{prefix}.bias": tf[f"{name}/beta"],
        f"{prefix}.running_mean": tf[f"{name}/moving_mean"],
        f"{prefix}.running_var": tf[f"{name}/moving_variance"],
        f"{prefix}.num_batches_tracked": np.zeros((), dtype=np.int64),
    }


def _conv2d_state(prefix: str, tf: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    return {f"{prefix}.weight": tf[f"{name}/kernel"].transpose(3, 2, 0, 1), f"{prefix}.bias": tf[f"{name}/bias"]}


def _conv_as_1d_state(prefix: str, tf: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    k = tf[f"{name}/kernel"]  # (7, C_in, 1, C_out): a conv spanning the full feature axis == Conv1d over time
    return {f"{prefix}.weight": k[:, :, 0, :].transpose(2, 1, 0), f"{prefix}.bias": tf[f"{name}/bias"]}


def _dense_state(prefix: str, tf: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    return {f"{prefix}.weight": tf[f"{name}/kernel"].T, f"{prefix}.bias": tf[f"{name}/bias"]}


def model_variables(names: Sequence[str]) -> list[str]:
    """Trainable/batch-norm variables of a checkpoint (drops Adam slots, beta powers, global_step)."""
    skip = ("/Adam", "beta1_power", "beta2_power", "global_step")
    return sorted(n for n in names if not any(s in n for s in skip))


def tf_to_state_dict(arch: str, tf: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map TF variable names (creation order of ``musicnn/models.py``) to our module's state dict."""
    sd: dict[str, np.ndarray] = {}
    if arch == "musicnn":
        sd |= _bn_state("bn_input", tf, "batch_normalization")
        for i in range(2):  # f74 -> conv2d / bn_1, f77 -> conv2d_1 / bn_2
            sd |= _conv2d_state(f"timbral.{i}", tf, "conv2d" if i == 0 else f"conv2d_{i}")
            sd |= _bn_state(f"timbral_bn.{i}", tf, f"batch_normalization_{i + 1}")
        for i in range(3):  # s1, s2, s3 -> conv2d_2..4 / bn_3..5
            sd |= _conv2d_state(f"temporal.{i}", tf, f"conv2d_{i + 2}")
            sd |= _bn_state(f"temporal_bn.{i}", tf, f"batch_normalization_{i + 3}")
        for i in range(3):  # mid-end -> conv2d_5..7 / bn_6..8
            sd |= _conv_as_1d_state(f"mid.{i}", tf, f"conv2d_{i + 5}")
            sd |= _bn_state(f"mid_bn.{i}", tf, f"batch_normalization_{i + 6}")
        sd |= _bn_state("bn_pool", tf, "batch_normalization_9")
        sd |= _dense_state("dense", tf, "dense")
        sd |= _bn_state("bn_dense", tf, "batch_normalization_10")
        sd |= _dense_state("out", tf, "dense_1")
    elif arch == "vgg":
        sd |= _bn_state("bn_input", tf, "batch_normalization")
        for i in range(5):
            sd |= _conv2d_state(f"convs.{i}", tf, f"{i + 1}CNN")
            sd |= _bn_state(f"bns.{i}", tf, f"batch_normalization_{i + 1}")
        sd |= _dense_state("out", tf, "dense")
    else:
        raise ValueError(f"unknown musicnn architecture {arch!r}")
    return {k: torch.from_numpy(np.array(v, order="C")) for k, v in sd.items()}  # np.array keeps 0-d shapes


class _Tracking(dict):
    """A dict that records which keys were read (to detect checkpoint/model mismatches)."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        self.used.add(key)
        return value


# -- checkpoint discovery -----------------------------------------------------------------------


def installed_package_dir() -> Path | None:
    """Folder of the installed ``musicnn`` package, found without importing it (or None)."""
    return next(iter(installed_package_dirs("musicnn")), None)


def _model_dir_in(root: Path, model: str) -> Path | None:
    for cand in (root / model, root):
        if (cand / INDEX_FILE).is_file() and (cand / DATA_FILE).is_file():
            return cand
    return None


def how_to(model: str) -> str:
    return (
        f"musicnn checkpoint {model} not found. Install the weights with "
        "`pip install --no-deps musicnn==0.1.0` (a data-only install: TensorFlow is not needed), or point "
        f"embedder.<key>.checkpoint (or ${ENV_DIR}) at a folder holding {model}/{INDEX_FILE} and "
        f"{model}/{DATA_FILE}, or place them under {bench_home() / 'checkpoints' / 'musicnn' / model}"
    )


def find_checkpoint(model: str, checkpoint_dir: str | os.PathLike | None = None) -> Path:
    """explicit ``checkpoint_dir`` > ``$GENAUDIO_BENCH_MUSICNN_DIR`` > bench cache > installed wheel."""
    for label, given in (("checkpoint", checkpoint_dir), (ENV_DIR, os.environ.get(ENV_DIR))):
        if given:
            found = _model_dir_in(Path(given).expanduser(), model)
            if found is None:
                raise EmbedderUnavailable(f"{label}={given} holds no {model} checkpoint. " + how_to(model))
            return found
    roots = [bench_home() / "checkpoints" / "musicnn"]
    pkg = installed_package_dir()
    if pkg is not None:
        roots.append(pkg)
    for root in roots:
        found = _model_dir_in(root, model)
        if found is not None:
            return found
    raise EmbedderUnavailable(how_to(model))


# -- embedder -----------------------------------------------------------------------------------


class MusicnnEmbedder(Embedder):
    """musicnn / vgg music tagger embeddings and tag probabilities.

    Args:
        model: ``MSD_musicnn`` (default), ``MTT_musicnn``, ``MSD_vgg`` or ``MTT_vgg``.
        checkpoint: folder with ``<model>/.index`` (or the model folder itself); None searches
            ``$GENAUDIO_BENCH_MUSICNN_DIR``, ``<bench_home>/checkpoints/musicnn`` and the installed wheel.
        layer: which activation is ``"emb"`` (see module doc); None = ``penultimate`` / ``pool5``.
        input_length: patch length in seconds (3 = training length; vgg models need 3).
        input_overlap: seconds between patch starts as in the extractor (its "overlap" is a hop);
            None = non-overlapping patches (extractor default).
        pad_short: ``"repeat"`` or ``"zero"`` padding of clips shorter than one patch.
        verify_sha256: refuse weights whose .data digest differs from musicnn==0.1.0's.
        batch_size: patches per forward pass.
    """

    name = "musicnn"
    gives_probs = True  # classifier head: ``probs`` (bench.embedders.base.Embedder.gives_probs)
    default_audio = AudioSpec(sample_rate=SR, mono="mean", resampler="kaiser_best_polyphase")

    #: verify_sha256: a check of the files only (their digest is in the id either way)
    non_value_params = (*Embedder.non_value_params, "verify_sha256")
    param_aliases = {
        "model": "model", "checkpoint": "checkpoint_sha256", "checkpoint_dir": "checkpoint_sha256",
        "input_length": "patch_frames", "input_overlap": "patch_hop_frames",
    }

    def __init__(
        self,
        model: str = "MSD_musicnn",
        checkpoint: str | None = None,
        layer: str | None = None,
        input_length: float = 3.0,
        input_overlap: float | None = None,
        pad_short: str = "repeat",
        verify_sha256: bool = True,
        device: str = "auto",
        batch_size: int = 8,
        audio: AudioSpec | dict | None = None,
        checkpoint_dir: str | None = None,  # deprecated alias of checkpoint
    ):
        super().__init__(audio=audio, device=device, batch_size=batch_size)
        if model not in MODELS:
            raise ValueError(f"unknown musicnn model {model!r}; choose one of {sorted(MODELS)}")
        self.model_name = model
        self.arch, labels, expected_sha, self.name = MODELS[model]
        self.class_names = list(labels)
        self.layer = layer or LAYERS[self.arch][0]
        if self.layer not in LAYERS[self.arch]:
            raise ValueError(f"layer {self.layer!r} not available for {model}; choose one of {LAYERS[self.arch]}")
        if pad_short not in ("repeat", "zero"):
            raise ValueError(f"pad_short must be 'repeat' or 'zero', got {pad_short!r}")
        self.require_rate(SR, "musicnn")
        self.input_length = float(input_length)
        self.input_overlap = None if not input_overlap else float(input_overlap)
        self.n_frames = time_to_frames(self.input_length) + 1
        self.patch_hop = self.n_frames if self.input_overlap is None else time_to_frames(self.input_overlap)
        if self.arch == "vgg" and self.n_frames != 187:
            raise ValueError("the vgg models only accept input_length=3 (187 frames)")
        if self.n_frames < 1 or self.patch_hop < 1:
            raise ValueError(f"input_length/input_overlap too small: {self.n_frames} frames, hop {self.patch_hop}")
        self.pad_short = pad_short

        checkpoint = renamed_argument(checkpoint, checkpoint_dir, "checkpoint_dir", "embedder.musicnn")
        self.checkpoint_dir = find_checkpoint(model, checkpoint)
        data_path = self.checkpoint_dir / DATA_FILE
        self.sha256 = sha256_file(data_path)
        self.check = (
            "sha256 pinned (the file in the musicnn==0.1.0 wheel)"
            if verify_sha256
            else "sha256 recorded, not verified (verify_sha256=false)"
        )
        if verify_sha256 and self.sha256 != expected_sha:
            raise EmbedderUnavailable(
                f"{data_path} has sha256 {self.sha256}, expected {expected_sha} (musicnn==0.1.0 {model}); "
                "reinstall with `pip install --force-reinstall --no-deps musicnn==0.1.0` or pass verify_sha256=false"
            )
        try:
            ckpt = TFCheckpoint(self.checkpoint_dir)
            tf_vars = ckpt.read_all(model_variables(ckpt.names()))
        except (CheckpointFormatError, FileNotFoundError) as exc:
            raise EmbedderUnavailable(f"cannot read musicnn checkpoint {self.checkpoint_dir}: {exc}") from exc
        n_classes = len(labels)
        net: nn.Module = MusicnnNet(n_classes) if self.arch == "musicnn" else MusicnnVGG(n_classes, n_frames=187)
        tracked = _Tracking(tf_vars)
        try:
            state = tf_to_state_dict(self.arch, tracked)
        except KeyError as exc:
            raise EmbedderUnavailable(f"{model} checkpoint {self.checkpoint_dir} lacks variable {exc}") from exc
        unused = set(tf_vars) - tracked.used
        if unused:
            raise EmbedderUnavailable(f"{model} checkpoint has variables the model does not use: {sorted(unused)}")
        net.load_state_dict(state, strict=True)
        self.net = net.eval().to(self.device)
        self.mel_basis = torch.from_numpy(mel_filterbank_slaney(SR, FFT_SIZE, N_MELS)).to(self.device)

    def derived_params(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "checkpoint_sha256": self.sha256,
            "features": {
                "sample_rate": SR,
                "n_fft": FFT_SIZE,
                "hop": FFT_HOP,
                "window": "hann_periodic",
                "center": True,
                "pad_mode": "reflect",
                "n_mels": N_MELS,
                "mel": "slaney_norm_slaney_0_8000",
                "log": "log10(10000*S+1)",
                "dtype": "float32",
            },
            "patch_frames": self.n_frames,
            "patch_hop_frames": self.patch_hop,
        }

    def checkpoints(self) -> dict[str, dict[str, str]]:
        return {"musicnn": {"path": str(self.checkpoint_dir / DATA_FILE), "sha256": self.sha256, "check": self.check}}

    def patches(self, wav: np.ndarray) -> torch.Tensor:
        """``(samples,)`` float32 at 16 kHz -> log-mel patches ``(n_patches, n_frames, 96)`` on the device."""
        x = host_to_device(np.asarray(wav, dtype=np.float32), self.device)
        return make_patches(log_mel(x, self.mel_basis), self.n_frames, self.patch_hop, self.pad_short)

    @torch.inference_mode()
    def forward_patches(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patches ``(N, n_frames, 96)`` -> (``emb`` rows ``(N, D)``, tag probabilities ``(N, n_classes)``)."""
        embs, probs = [], []
        for i in range(0, patches.shape[0], max(1, self.batch_size)):
            out = self.net(patches[i : i + self.batch_size])
            p = torch.sigmoid(out["logits"])
            if self.layer == "taggram":
                e = p
            elif self.layer == "pool":
                e = torch.cat([out["mean_pool"], out["max_pool"]], dim=1)
            else:
                e = out[self.layer]
            embs.append(e.float())
            probs.append(p.float())
        return torch.cat(embs).cpu(), torch.cat(probs).cpu()  # one device -> host sync per call

    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        return self.embed_batch([wav])[0]

    def embed_batch(self, wavs: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        with torch.inference_mode():
            per = [self.patches(w) for w in wavs]
        counts = [p.shape[0] for p in per]
        emb, probs = self.forward_patches(torch.cat(per))
        out, start = [], 0
        for n in counts:
            out.append(
                {
                    "emb": emb[start : start + n].numpy().astype(np.float32),
                    "probs": probs[start : start + n].mean(dim=0).numpy().astype(np.float32),
                }
            )
            start += n
        return out
