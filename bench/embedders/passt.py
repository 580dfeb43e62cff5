"""PaSST-S AudioSet tagger (Koutini et al. 2022, https://arxiv.org/abs/2110.05069), native torch.

Re-implements ``hear21passt.base.get_basic_model()`` -- the model AudioCraft's
``PasstKLDivergenceMetric`` and stable-audio-metrics' ``passt_kld`` use -- without timm or
hear21passt:

- front end ``AugmentMelSTFT`` in eval mode (no augmentation): 32 kHz mono, pre-emphasis
  ``y[n] = x[n+1] - 0.97 x[n]``, ``torch.stft`` (n_fft 1024, hop 320, win 800, symmetric Hann,
  ``center=True`` reflect padding), power spectrum, Kaldi mel banks (128 bins, 0..15 kHz, i.e.
  ``fmax = sr/2 - fmax_aug_range/2`` with ``fmax_aug_range=2000``; last FFT bin zero-weighted),
  ``log(mel + 1e-5)``, then ``(x + 4.5) / 5``;
- network ``passt_s_swa_p16_128_ap476``: DeiT-B-style ViT (768-d, 12 blocks, 12 heads, pre-LN,
  LayerNorm eps 1e-6, exact GELU) on 16x16 patches with stride 10x10 over the (128, <=998) mel
  image -> 12 x 99 patch grid, separable frequency/time positional embeddings, a class and a
  distillation token; ``features = (tok_cls + tok_dist) / 2`` after the final LayerNorm,
  ``logits = head(features)`` with ``head = LayerNorm(768) -> Linear(768, 527)``
  (``head_dist`` exists in the checkpoint but is unused in inference, as in PaSST).

Weights: ``passt-s-f128-p16-s10-ap.476-swa.pt`` (a plain state dict whose keys equal this module's),
loaded with ``torch.load(weights_only=True)``.

Clip protocols (``protocol``):

- ``"audiocraft"`` (default; AudioCraft ``kld.py``): non-overlapping 10-s segments, not padded,
  segments of <= 0.15 s dropped; ``probs = activation(logits)`` per segment. AudioCraft keeps one
  row per segment; here ``probs`` is their mean (identical for clips <= 10 s).
- ``"stable_audio"`` (stable-audio-metrics ``passt_kld.py``): 10-s windows with 5-s hop, partial
  windows longer than 1.5 s zero-padded to 10 s; logits are averaged over windows, then
  ``probs = activation(mean logits)``.

``activation`` is "softmax" in both references (KL needs a distribution); PaSST itself was trained
with sigmoid (multi-label) outputs, available as ``activation="sigmoid"``.

Output: ``{"emb": (n_windows, 768), "logits": (n_windows, 527), "probs": (527,)}``.

Parity with the official code (``tests/embedders/test_passt.py``, hear21passt 0.0.26, the package
AudioCraft and stable-audio-metrics import): hear21passt's own ``passt_s_swa_p16_128_ap476`` network,
``AugmentMelSTFT`` and ``PasstBasicWrapper`` are built with random weights, the network's
``state_dict()`` (the released checkpoint's layout) is saved to a file and loaded here through
:func:`load_passt_state` (strict), and both run on real audio (fadtk's sample clips at 32 kHz):
front end identical (max abs difference 0.0); ``get_scene_embeddings`` (<= 10 s, one forward pass)
vs our logits/features: max abs difference 4.2e-6 (values up to 5.6; ``benchmarks/
parity_passt_openl3_mert.py``), asserted at 1e-4; AudioCraft's
protocol (``torch.split`` segments through the official model, softmax, mean) likewise.
What differs from hear21passt: its ``get_scene_embeddings`` for clips > 10 s averages
``[logits, features]`` over 10-s windows every 2.5 s of the reflect-padded clip; that is neither
AudioCraft's nor stable-audio-metrics' protocol and is not offered here; nor are its HEAR
``get_timestamp_embeddings`` (160-ms windows every 50 ms). Resampling to 32 kHz is the
project's (AudioCraft uses julius). NOT checked: numbers with the released 330 MB weights (no
download here).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.audio import AudioError, AudioSpec
from bench.checkpoints import CheckpointSpec, renamed_argument, resolve
from bench.embedders.base import Embedder
from bench.embedders.frontends import power_spectrogram

PASST_URL = "https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt"
SAMPLE_RATE = 32000

#: ``passt_s_swa_p16_128_ap476`` as built by hear21passt ``get_model`` (fstride = tstride = 10)
PASST_S_ARCH: dict[str, Any] = {
    "img_size": (128, 998),
    "patch_size": 16,
    "stride": 10,
    "embed_dim": 768,
    "depth": 12,
    "num_heads": 12,
    "mlp_ratio": 4.0,
    "num_classes": 527,
}


# -- front end ------------------------------------------------------------------------------------


def kaldi_mel_banks(n_mels: int, n_fft: int, sr: float, fmin: float, fmax: float) -> np.ndarray:
    """Kaldi triangular mel filters ``(n_mels, n_fft // 2 + 1)`` (no VTLN warp), last FFT bin zero.

    Same float32 arithmetic as ``torchaudio.compliance.kaldi.get_mel_banks(n_mels, n_fft, sr, fmin,
    fmax, 100, -500, 1.0)`` padded with one zero column, which is what ``AugmentMelSTFT`` does.
    """
    nyquist = 0.5 * sr
    if fmax <= 0.0:
        fmax += nyquist

    def mel_scalar(f: float) -> float:
        return 1127.0 * math.log(1.0 + f / 700.0)

    mel_lo, mel_hi = mel_scalar(fmin), mel_scalar(fmax)
    delta = (mel_hi - mel_lo) / (n_mels + 1)
    b = torch.arange(n_mels).unsqueeze(1)
    left, center, right = mel_lo + b * delta, mel_lo + (b + 1.0) * delta, mel_lo + (b + 2.0) * delta
    m = (1127.0 * (1.0 + (sr / n_fft) * torch.arange(n_fft // 2) / 700.0).log()).unsqueeze(0)
    up = (m - left) / (center - left)
    down = (right - m) / (right - center)
    banks = torch.max(torch.zeros(1), torch.min(up, down))
    return F.pad(banks, (0, 1)).numpy().astype(np.float32)


class PasstMel(nn.Module):
    """``AugmentMelSTFT`` (hear21passt) in eval mode: ``(B, samples)`` -> ``(B, n_mels, frames)``."""

    def __init__(
        self,
        n_mels=128,
        sr=SAMPLE_RATE,
        win_length=800,
        hopsize=320,
        n_fft=1024,
        fmin=0.0,
        fmax=None,
        fmax_aug_range=2000,
    ):
        super().__init__()
        if fmax is None:  # as AugmentMelSTFT; get_basic_model passes fmax_aug_range=2000 -> 15 kHz
            fmax = sr // 2 - fmax_aug_range // 2
        self.n_fft, self.hop, self.win_length = n_fft, hopsize, win_length
        self.register_buffer("window", torch.hann_window(win_length, periodic=False), persistent=False)
        self.register_buffer("preemphasis", torch.tensor([[[-0.97, 1.0]]]), persistent=False)
        mel = kaldi_mel_banks(n_mels, n_fft, sr, fmin, fmax)
        self.register_buffer("mel_basis", torch.from_numpy(mel), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv1d(x.unsqueeze(1), self.preemphasis).squeeze(1)
        power = power_spectrogram(x, self.n_fft, self.hop, self.window)
        mel = torch.matmul(self.mel_basis, power)
        return ((mel + 1e-5).log() + 4.5) / 5.0


def mel_frames(n_samples: int, hop: int = 320) -> int:
    """Mel frames for ``n_samples`` input samples (pre-emphasis drops one, centred STFT)."""
    return 1 + (n_samples - 1) // hop


def n_patches(n_samples: int, patch: int = 16, stride: int = 10) -> int:
    """Patch-grid time columns for an input of ``n_samples`` samples at 32 kHz."""
    return max(0, (mel_frames(n_samples) - patch) // stride + 1)


# -- network --------------------------------------------------------------------------------------


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """timm ViT block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, stride: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(1, embed_dim, kernel_size=patch_size, stride=stride)


class PaSSTNet(nn.Module):
    """PaSST with distillation token; parameter names equal hear21passt's ``PaSST`` (timm layout).

    Input ``(B, 1, n_mels, frames)`` -> ``(logits (B, num_classes), features (B, embed_dim))``.
    """

    def __init__(
        self,
        img_size=(128, 998),
        patch_size=16,
        stride=10,
        embed_dim=768,
        depth=12,
        num_heads=12,
        mlp_ratio=4.0,
        num_classes=527,
        init: bool = True,
    ):
        super().__init__()
        self.patch_embed = PatchEmbed(patch_size, stride, embed_dim)
        self.grid = (img_size[0] // stride, img_size[1] // stride)  # as hear21passt PatchEmbed.grid_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, embed_dim))
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, self.grid[0], 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, 1, self.grid[1]))
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, num_classes))
        self.head_dist = nn.Linear(embed_dim, num_classes)
        if init:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """Random init as timm's ViT (trunc-normal std 0.02); only tests use it."""
        for p in (
            self.cls_token,
            self.dist_token,
            self.new_pos_embed,
            self.freq_new_pos_embed,
            self.time_new_pos_embed,
        ):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.patch_embed.proj(x)  # (B, E, F, T)
        b, _, f, t = x.shape
        if t > self.time_new_pos_embed.shape[-1] or f != self.freq_new_pos_embed.shape[2]:
            raise ValueError(
                f"input gives a {f}x{t} patch grid; the model supports {self.grid[0]}x<={self.grid[1]} (<= 10 s)"
            )
        x = x + self.time_new_pos_embed[..., :t] + self.freq_new_pos_embed
        x = x.flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(b, -1, -1) + self.new_pos_embed[:, :1]
        dist = self.dist_token.expand(b, -1, -1) + self.new_pos_embed[:, 1:]
        x = self.norm(self.blocks(torch.cat((cls, dist, x), dim=1)))
        features = (x[:, 0] + x[:, 1]) / 2
        return self.head(features), features


def load_passt_state(path: Path) -> dict[str, torch.Tensor]:
    """The released checkpoint is a plain state dict with the keys of hear21passt's ``PaSST``; also
    accept ``{"state_dict"|"model": ...}`` wrappers, a ``net.``/``module.`` prefix (PaSST training
    checkpoints) and the pre-conv 2-D patch-embedding weight, as hear21passt's ``checkpoint_filter_fn``."""
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    out = {}
    for k, v in state.items():
        for prefix in ("module.", "net."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        if k == "patch_embed.proj.weight" and v.ndim < 4:  # pre-conv patchify (hear21passt checkpoint_filter_fn)
            side = math.isqrt(v[0].numel())  # one input channel: (768, 256) -> (768, 1, 16, 16)
            v = v.reshape(v.shape[0], 1, side, side)
        out[k] = v
    return out


# -- windowing ------------------------------------------------------------------------------------


def audiocraft_segments(wav: np.ndarray, win: int, min_len: int) -> list[np.ndarray]:
    """AudioCraft ``_process_audio``: ``torch.split`` into ``win``-sample chunks, keep those ``> min_len``."""
    return [wav[s : s + win] for s in range(0, len(wav), win) if len(wav[s : s + win]) > min_len]


def stable_audio_windows(wav: np.ndarray, win: int, hop: int) -> list[np.ndarray]:
    """stable-audio-metrics ``return_probabilities``: windows at ``range(0, max(hop, n - hop), hop)``;
    partial windows longer than ``0.15 * win`` are zero-padded to ``win``."""
    out = []
    for s in range(0, max(hop, len(wav) - hop), hop):
        w = wav[s : s + win]
        if len(w) < win and len(w) > int(win * 0.15):
            w = np.pad(w, (0, win - len(w)))
        out.append(w)
    return out


# -- embedder -------------------------------------------------------------------------------------


class PaSSTEmbedder(Embedder):
    """PaSST-S window embeddings ``(T, 768)``, window logits ``(T, 527)`` and clip probabilities ``(527,)``.

    Args:
        checkpoint: local ``passt-s-f128-p16-s10-ap.476-swa.pt`` (else env var / cache / download).
        protocol: "audiocraft" or "stable_audio" (see module docstring).
        activation: "softmax" (AudioCraft / stable-audio-metrics KL) or "sigmoid" (multi-label tagging).
        window_s: analysis window in seconds (<= 10, the model's positional-embedding span).
        hop_s: window hop for ``protocol="stable_audio"`` (5 s there).
        min_segment_s: segments this short or shorter are dropped (``protocol="audiocraft"``).
        arch: overrides of :data:`PASST_S_ARCH` (tests, other PaSST checkpoints).
    """

    name = "passt"
    gives_probs = True  # classifier head: ``probs`` (bench.embedders.base.Embedder.gives_probs)
    default_audio = AudioSpec(sample_rate=SAMPLE_RATE, min_duration_s=0.15)

    param_aliases = {
        "checkpoint": "weights_sha256", "weights_path": "weights_sha256", "window_s": "window", "hop_s": "hop",
        "min_segment_s": "min_segment",
    }

    def __init__(
        self,
        checkpoint: str | None = None,
        protocol: str = "audiocraft",
        activation: str = "softmax",
        window_s: float = 10.0,
        hop_s: float = 5.0,
        min_segment_s: float = 0.15,
        arch: dict | None = None,
        audio: AudioSpec | dict | None = None,
        device: str = "auto",
        batch_size: int = 8,
        weights_path: str | None = None,  # deprecated alias of checkpoint
    ):
        super().__init__(audio=audio, device=device, batch_size=batch_size)
        if protocol not in ("audiocraft", "stable_audio"):
            raise ValueError(f"protocol must be 'audiocraft' or 'stable_audio', got {protocol!r}")
        if activation not in ("softmax", "sigmoid"):
            raise ValueError(f"activation must be 'softmax' or 'sigmoid', got {activation!r}")
        self.require_rate(SAMPLE_RATE, "PaSST")
        self.protocol, self.activation = protocol, activation
        self.arch = {**PASST_S_ARCH, **(arch or {})}
        if self.arch["num_classes"] == 527:  # AudioSet head: probs feed KL / Inception Score
            from bench.embedders.pann import audioset_labels

            self.class_names = list(audioset_labels())
        self.arch["img_size"] = tuple(self.arch["img_size"])
        self.win = int(round(window_s * SAMPLE_RATE))
        self.hop = int(round(hop_s * SAMPLE_RATE))
        self.min_len = int(min_segment_s * SAMPLE_RATE)
        patch, stride = self.arch["patch_size"], self.arch["stride"]
        grid_t = self.arch["img_size"][1] // stride
        if n_patches(self.win, patch, stride) > grid_t:
            raise ValueError(f"window_s={window_s} exceeds the model's {grid_t}-patch time span (10 s for PaSST-S)")
        self.min_samples = (patch - 1) * 320 + 1  # shortest input giving one patch column
        self.spec = CheckpointSpec.published(
            PASST_URL, env_var="GENAUDIO_BENCH_PASST_WEIGHTS", config_key="embedder.passt.checkpoint"
        )
        checkpoint = renamed_argument(checkpoint, weights_path, "weights_path", "embedder.passt")
        self.weights, self.weights_sha256 = resolve(self.spec, checkpoint)
        self.net = PaSSTNet(**self.arch, init=False)  # every tensor comes from the checkpoint
        self.net.load_state_dict(load_passt_state(self.weights), strict=True)
        self.mel = PasstMel(n_mels=self.arch["img_size"][0])
        self.net.eval().to(self.device)
        self.mel.eval().to(self.device)

    def derived_params(self) -> dict[str, Any]:
        return {
            "window": self.win,
            "hop": self.hop if self.protocol == "stable_audio" else None,
            "min_segment": self.min_len if self.protocol == "audiocraft" else None,
            "weights_sha256": self.weights_sha256,
        }

    def checkpoints(self) -> dict[str, dict[str, str]]:
        return {"passt": {"path": str(self.weights), "sha256": self.weights_sha256}}

    # -- compute ----------------------------------------------------------------------------------
    def forward(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(B, samples)`` -> (logits ``(B, C)``, features ``(B, D)``)."""
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            logits, feats = self.net(self.mel(x).unsqueeze(1))
            return logits.float().cpu().numpy(), feats.float().cpu().numpy()

    def _windows(self, wav: np.ndarray) -> list[np.ndarray]:
        x = np.asarray(wav, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"PaSST takes mono audio (samples,), got shape {x.shape}")
        if self.protocol == "audiocraft":
            wins = audiocraft_segments(x, self.win, self.min_len)
        else:
            wins = stable_audio_windows(x, self.win, self.hop)
        if not wins:
            raise AudioError(f"too short for PaSST: {len(x) / SAMPLE_RATE:.3f} s <= {self.min_len / SAMPLE_RATE} s")
        return [w if len(w) >= self.min_samples else np.pad(w, (0, self.min_samples - len(w))) for w in wins]

    def _activate(self, logits: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(logits)
        return (torch.softmax(t, dim=-1) if self.activation == "softmax" else torch.sigmoid(t)).numpy()

    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        return self.embed_batch([wav])[0]

    def embed_batch(self, wavs) -> list[dict[str, np.ndarray]]:
        """Windows of equal length from all clips share forward passes (no padding across windows)."""
        wins = [self._windows(w) for w in wavs]
        by_len: dict[int, list[tuple[int, int]]] = {}
        for i, ws in enumerate(wins):
            for j, w in enumerate(ws):
                by_len.setdefault(len(w), []).append((i, j))
        res: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for group in by_len.values():
            for k in range(0, len(group), self.batch_size):
                chunk = group[k : k + self.batch_size]
                logits, feats = self.forward(np.stack([wins[i][j] for i, j in chunk]))
                for n, key in enumerate(chunk):
                    res[key] = (logits[n], feats[n])
        out = []
        for i, ws in enumerate(wins):
            logits = np.stack([res[(i, j)][0] for j in range(len(ws))]).astype(np.float32)
            feats = np.stack([res[(i, j)][1] for j in range(len(ws))]).astype(np.float32)
            if self.protocol == "audiocraft":
                probs = self._activate(logits).mean(axis=0)
            else:
                probs = self._activate(logits.mean(axis=0))
            out.append({"emb": feats, "logits": logits, "probs": probs.astype(np.float32)})
        return out
