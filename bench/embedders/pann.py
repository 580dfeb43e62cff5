"""PANN CNN14 (Kong et al. 2020) embeddings and AudioSet tags, implemented natively in torch.

The network and front end follow ``audioset_tagging_cnn``'s ``Cnn14`` / ``Cnn14_16k`` in eval mode
(as vendored by audioldm_eval and frechet-audio-distance): log-mel -> ``bn0`` over mel bands ->
six conv blocks -> mean over frequency -> max + mean over time -> ``relu(fc1)`` = the 2048-d
"embedding" -> ``sigmoid(fc_audioset)`` = 527 AudioSet probabilities.

Outputs per clip: ``emb`` ``(T, 2048)`` (``T = 1`` for whole clips, as audioldm_eval feeds them, or one
row per window with ``window_s``), ``probs`` ``(527,)`` and ``logits`` ``(527,)`` (mean over windows
when windowed; audioldm_eval's KL uses both the sigmoid and the softmax-of-logits forms).

Checkpoints are the Zenodo files (dicts with a ``"model"`` state dict). The checkpoint's own mel
filter bank (``logmel_extractor.melW``) replaces the computed one, as ``load_state_dict`` does in the
reference code; its STFT kernels are checked against the configured window size.

Preprocessing defaults follow audioldm_eval's ``WaveDataset``: first channel, DC removed (mean
subtracted), torchaudio's default sinc resampler, zero-padded to at least 32000 samples.

Parity (``tests/embedders/test_pann.py``, table in ``docs/parity.md``): random weights of the official models
(panns_inference 0.1.1 ``Cnn14`` at 32 kHz, frechet-audio-distance 0.3.4 ``Cnn14_16k``) saved in the released
``{"iteration", "model"}`` layout and loaded through our path; on fadtk's real music clips the embeddings and
probabilities agree to max relative 4e-7 (asserted < 1e-5), both on the same 32 kHz waveform and through
frechet-audio-distance's whole 16 kHz pipeline (soundfile + resampy) with ours configured like it. What
differs by default: our audioldm_eval-style preprocessing (first channel, DC removal, torchaudio sinc, padding to
2 s) is not frechet-audio-distance's (channel mean, resampy) nor panns_inference's README (librosa.load); set
``audio.resampler``/``mono``, ``remove_dc`` and ``min_samples`` to match one. Real weights not checked offline.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import logging
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.audio import AudioSpec
from bench.checkpoints import CheckpointSpec, CheckpointUnavailable, resolve, torch_load_weights
from bench.embedders.base import Embedder, host_to_device, window_batch
from bench.embedders.frontends import PANNLogMel
from bench.embedders.vggish import as_tensor

log = logging.getLogger(__name__)

EMBEDDING_DIM = 2048
N_CLASSES = 527
MIN_FRAMES = 32
LABELS_CSV = Path(__file__).with_name("data") / "audioset_labels.csv"


#: Zenodo record of the PANN checkpoints (Kong et al. 2020)
ZENODO_FILES = "https://zenodo.org/record/3987831/files/"


@dataclass(frozen=True)
class Variant:
    """A published CNN14 checkpoint and the front end it was trained with (every CNN14: 64 mel bins from 50 Hz)."""

    filename: str
    md5: str | None  # Zenodo's published md5 (checked when the file carries the published name)
    sample_rate: int
    window_size: int
    hop_size: int
    fmax: float
    mel_bins: int = 64
    fmin: float = 50.0

    @property
    def url(self) -> str:
        return ZENODO_FILES + urllib.parse.quote(self.filename)


VARIANTS: dict[str, Variant] = {
    # audioldm_eval (16 kHz) and frechet-audio-distance's "pann" at 16 kHz
    "cnn14_16k": Variant(
        "Cnn14_16k_mAP=0.438.pth", "362fc5ff18f1d6ad2f6d464b45893f2c",
        sample_rate=16000, window_size=512, hop_size=160, fmax=8000.0,
    ),
    # PANNs' main 32 kHz model; trained with fmax=14000 (audioldm_eval; frechet-audio-distance passes 16000
    # but then loads the checkpoint's own filter bank, so the effective value is the checkpoint's)
    "cnn14_32k": Variant(
        "Cnn14_mAP=0.431.pth", "541141fa2ee191a88f24a3219fff024e",
        sample_rate=32000, window_size=1024, hop_size=320, fmax=14000.0,
    ),
}

#: Where audioldm_eval and panns_inference keep the same files (searched after our cache dirs).
OTHER_TOOL_DIRS = (Path("~/.cache/audioldm_eval/ckpt"), Path("~/panns_data"))

# -- labels ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def audioset_labels() -> tuple[str, ...]:
    """The 527 AudioSet display names in model output order (``data/audioset_labels.csv``)."""
    try:
        with open(LABELS_CSV, newline="", encoding="utf-8") as fh:
            rows = sorted(csv.DictReader(fh), key=lambda r: int(r["index"]))
        names = tuple(r["display_name"] for r in rows)
    except OSError:
        names = ()
    if len(names) != N_CLASSES:
        log.warning("AudioSet label list unavailable; using class_000..class_526")
        return tuple(f"class_{i:03d}" for i in range(N_CLASSES))
    return names


# -- network ---------------------------------------------------------------------------------------------


class ConvBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU layers, then pooling: PANN's ``ConvBlock`` (``pool_type`` "avg", as CNN14
    uses it, or "max", as aiSFX's ``cnn2d.ConvBlock``); parameter names as in both checkpoints."""

    def __init__(self, c_in: int, c_out: int, pool_type: str = "avg") -> None:
        super().__init__()
        if pool_type not in ("avg", "max"):
            raise ValueError(f"pool_type must be 'avg' or 'max', got {pool_type!r}")
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.pool_type = pool_type

    def forward(self, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        if pool == (1, 1):
            return x
        return F.avg_pool2d(x, kernel_size=pool) if self.pool_type == "avg" else F.max_pool2d(x, kernel_size=pool)


class Cnn14(nn.Module):
    """Log-mel ``(B, 1, T, mel_bins)`` -> ``(embedding (B, 2048), logits (B, classes))``.

    Parameter names equal the checkpoint's (``bn0``, ``conv_block1..6``, ``fc1``, ``fc_audioset``);
    the front end lives in :class:`PANNLogMel`.
    """

    def __init__(self, mel_bins: int = 64, classes: int = N_CLASSES) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(mel_bins)
        widths = (1, 64, 128, 256, 512, 1024, 2048)
        for i in range(6):
            self.add_module(f"conv_block{i + 1}", ConvBlock(widths[i], widths[i + 1]))
        self.fc1 = nn.Linear(2048, EMBEDDING_DIM)
        self.fc_audioset = nn.Linear(EMBEDDING_DIM, classes)

    def forward(self, logmel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.bn0(logmel.transpose(1, 3)).transpose(1, 3)  # normalise each mel band
        for i in range(1, 7):
            x = getattr(self, f"conv_block{i}")(x, (2, 2) if i < 6 else (1, 1))
        x = x.mean(dim=3)  # over frequency -> (B, 2048, T')
        x = x.max(dim=2).values + x.mean(dim=2)
        emb = F.relu(self.fc1(x))
        return emb, self.fc_audioset(emb)


FRONTEND_KEYS = (
    "spectrogram_extractor.stft.conv_real.weight",
    "spectrogram_extractor.stft.conv_imag.weight",
    "logmel_extractor.melW",
)


def split_checkpoint(
    obj: Any, frontend: PANNLogMel, path: Path | str = "checkpoint"
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """A PANN checkpoint (``{"model": state_dict, ...}`` or a bare state dict) -> (CNN state dict, melW or None).

    The STFT kernels, when present, must equal the Hann-windowed DFT of the configured size
    (else the config does not fit the checkpoint, e.g. a 32 kHz file with a 16 kHz config).
    """
    sd = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(sd, dict):
        raise CheckpointUnavailable(f"{path} is not a PANN checkpoint (expected a dict with a 'model' state dict)")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    real, imag = sd.get(FRONTEND_KEYS[0]), sd.get(FRONTEND_KEYS[1])
    if real is not None and imag is not None:
        want_r, want_i = frontend.dft_kernels()
        if tuple(real.shape) != want_r.shape or tuple(imag.shape) != want_i.shape:
            raise CheckpointUnavailable(
                f"{path}: STFT kernels {tuple(real.shape)} do not fit window_size={frontend.n_fft}; "
                "is this checkpoint for another sample rate (variant cnn14_16k vs cnn14_32k)?"
            )
        err = max(
            float(np.abs(as_tensor(real).numpy() - want_r).max()), float(np.abs(as_tensor(imag).numpy() - want_i).max())
        )
        if err > 1e-4:
            raise CheckpointUnavailable(f"{path}: STFT kernels are not a Hann-windowed DFT (max abs diff {err:.2e})")
    mel = sd.get(FRONTEND_KEYS[2])
    cnn = {
        k: v if torch.is_tensor(v) else torch.as_tensor(np.asarray(v)) for k, v in sd.items() if k not in FRONTEND_KEYS
    }
    return cnn, (None if mel is None else as_tensor(mel))


# -- embedder --------------------------------------------------------------------------------------------


class PANNEmbedder(Embedder):
    """CNN14 embeddings (2048-d) plus AudioSet probabilities.

    Args:
        checkpoint: path to the variant's ``.pth`` (else env ``GENAUDIO_BENCH_PANN`` /
            ``GENAUDIO_BENCH_PANN_32K``, cache dirs, audioldm_eval's / panns_inference's dirs, download).
        variant: "cnn14_16k" (audioldm_eval FD, 16 kHz) or "cnn14_32k".
        fmin, fmax: mel range in Hz (default: the variant's; ignored when the checkpoint carries its mel bank).
        remove_dc: subtract the clip mean first (audioldm_eval does, before resampling).
        min_samples: zero-pad shorter clips at the end to this many samples (audioldm_eval: 32000); clips are
            always padded to at least 32 frames (0.32 s), which CNN14's pooling needs.
        window_s, hop_s: cut clips into windows (one ``emb`` row each) instead of one whole-clip row.
        config_key: the Hydra key of this embedder (named in "checkpoint missing" messages).
    """

    name = "pann"
    gives_probs = True  # classifier head: ``probs`` (bench.embedders.base.Embedder.gives_probs)
    default_audio = AudioSpec(sample_rate=16000, mono="first", resampler="torchaudio_sinc")

    #: fmin / fmax shape the mel bank, recorded by its digest (``frontend.melW_sha256``)
    param_aliases = {"checkpoint": "checkpoint_sha256", "fmin": "frontend", "fmax": "frontend"}

    def __init__(
        self,
        checkpoint: str | None = None,
        variant: str = "cnn14_16k",
        fmin: float | None = None,
        fmax: float | None = None,
        remove_dc: bool = True,
        min_samples: int = 32000,
        window_s: float | None = None,
        hop_s: float | None = None,
        audio: AudioSpec | dict | None = None,
        device: str = "auto",
        batch_size: int = 8,
        config_key: str = "embedder.pann",
    ):
        if variant not in VARIANTS:
            raise ValueError(f"unknown PANN variant {variant!r}; choose one of {sorted(VARIANTS)}")
        v = VARIANTS[variant]
        self.default_audio = AudioSpec(sample_rate=v.sample_rate, mono="first", resampler="torchaudio_sinc")
        super().__init__(audio=audio, device=device, batch_size=batch_size)
        self.require_rate(v.sample_rate, variant)
        self.variant, self._spec = variant, v
        self.remove_dc = bool(remove_dc)
        self.min_samples = int(min_samples)
        if window_s is None and hop_s is not None:
            raise ValueError("hop_s needs window_s")
        self.window_s = None if window_s is None else float(window_s)
        self.hop_s = None if window_s is None else float(hop_s if hop_s is not None else window_s)
        self.class_names = audioset_labels()
        #: CNN14 halves time five times: fewer than 32 frames cannot go through (the references crash)
        self.shortest = MIN_FRAMES * v.hop_size
        if self.window_s is not None and round(self.window_s * v.sample_rate) < self.shortest:
            raise ValueError(f"window_s must be >= {self.shortest / v.sample_rate} s for CNN14")

        self.frontend = PANNLogMel(
            v.sample_rate,
            v.window_size,
            v.hop_size,
            v.mel_bins,
            fmin=v.fmin if fmin is None else float(fmin),
            fmax=v.fmax if fmax is None else float(fmax),
        )
        self.mel_source = "computed"
        env = "GENAUDIO_BENCH_PANN" if variant == "cnn14_16k" else "GENAUDIO_BENCH_PANN_32K"
        spec = CheckpointSpec(
            filename=v.filename,
            url=v.url,
            env_var=env,
            config_key=f"{config_key}.checkpoint",
            md5=v.md5,
            source="md5 published by Zenodo record 3987831",
        )
        self.checkpoint_path, self.checkpoint_sha256 = resolve(spec, checkpoint, OTHER_TOOL_DIRS)
        with torch.device("meta"):  # parameters come from the checkpoint
            self.net = Cnn14(v.mel_bins)
        cnn_sd, mel = split_checkpoint(torch_load_weights(self.checkpoint_path), self.frontend, self.checkpoint_path)
        self._load_cnn(cnn_sd)
        if mel is not None:
            self._use_checkpoint_mel(mel)
        self.net.eval().to(self.device)
        self.frontend.to(self.device)

    def _load_cnn(self, sd: dict[str, torch.Tensor]) -> None:
        expected = set(self.net.state_dict())
        missing, extra = sorted(expected - set(sd)), sorted(set(sd) - expected)
        if missing or extra:
            raise CheckpointUnavailable(
                f"{self.checkpoint_path} does not have CNN14's layout: missing {missing[:4]}, unexpected {extra[:4]}"
            )
        self.net.load_state_dict(sd, strict=True, assign=True)

    def _use_checkpoint_mel(self, mel: torch.Tensor) -> None:
        if tuple(mel.shape) != tuple(self.frontend.melW.shape):
            raise CheckpointUnavailable(
                f"{self.checkpoint_path}: mel bank {tuple(mel.shape)} does not fit the configured "
                f"{tuple(self.frontend.melW.shape)} (window size / mel bins)"
            )
        diff = float((mel - self.frontend.melW).abs().max())
        if diff > 1e-6:
            log.warning(
                "%s: its mel filter bank differs from the configured fmin/fmax one (max abs diff %.3g); "
                "using the checkpoint's, as the reference implementations do",
                self.checkpoint_path.name,
                diff,
            )
        self.frontend.melW.copy_(mel)
        self.mel_source = "checkpoint"

    # -- identity --------------------------------------------------------------------------------------
    def derived_params(self) -> dict[str, Any]:
        v = self._spec  # the front end built (``variant`` itself is a value argument)
        return {
            "checkpoint_sha256": self.checkpoint_sha256,
            "frontend": {
                "kind": "torchlibrosa_logmel",
                "window_size": v.window_size,
                "hop_size": v.hop_size,
                "mel_bins": v.mel_bins,
                "melW_sha256": hashlib.sha256(self.frontend.melW.cpu().numpy().tobytes()).hexdigest()[:16],
                "mel_source": self.mel_source,
                "amin": 1e-10,
                "ref": 1.0,
                "top_db": None,
            },
            "output": "relu(fc1) embedding; sigmoid(fc_audioset) probs",
        }

    def checkpoints(self) -> dict[str, dict[str, str]]:
        return {self.variant: {"path": str(self.checkpoint_path), "sha256": self.checkpoint_sha256}}

    # -- compute ---------------------------------------------------------------------------------------
    def segments(self, wav: np.ndarray) -> np.ndarray:
        """One clip ``(samples,)`` -> network inputs ``(n_segments, samples')`` float32."""
        wav = np.asarray(wav, dtype=np.float32).reshape(-1)
        if self.remove_dc and wav.size:
            wav = (wav - wav.mean(dtype=np.float64)).astype(np.float32)
        need = max(self.min_samples, self.shortest)
        if wav.shape[0] < need:
            wav = np.pad(wav, (0, need - wav.shape[0]))
        if self.window_s is None:
            return wav[None]
        sr = self.audio.sample_rate
        win, hop = round(self.window_s * sr), round((self.hop_s or self.window_s) * sr)
        return window_batch(wav, win, hop)

    @torch.inference_mode()
    def forward_segments(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Equal-length segments ``(B, samples)`` -> (embeddings ``(B, 2048)``, logits ``(B, 527)``)."""
        t = host_to_device(np.asarray(x, dtype=np.float32), self.device)
        emb, logits = self.net(self.frontend(t))
        return emb.float().cpu().numpy(), logits.float().cpu().numpy()

    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        return self.embed_batch([wav])[0]

    def embed_batch(self, wavs: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Segments of equal length are batched (``batch_size`` per pass); lengths are never padded
        to each other because CNN14's time pooling would see the padding."""
        segs = [self.segments(w) for w in wavs]
        owners = [(i, j) for i, s in enumerate(segs) for j in range(s.shape[0])]
        by_len: dict[int, list[tuple[int, int]]] = {}
        for i, j in owners:
            by_len.setdefault(segs[i].shape[1], []).append((i, j))
        emb = [np.zeros((s.shape[0], EMBEDDING_DIM), np.float32) for s in segs]
        logit = [np.zeros((s.shape[0], N_CLASSES), np.float32) for s in segs]
        step = max(1, self.batch_size)
        for items in by_len.values():
            for k in range(0, len(items), step):
                chunk = items[k : k + step]
                e, lg = self.forward_segments(np.stack([segs[i][j] for i, j in chunk]))
                for (i, j), e_row, l_row in zip(chunk, e, lg):
                    emb[i][j], logit[i][j] = e_row, l_row
        out = []
        for e, lg in zip(emb, logit):
            probs = 1.0 / (1.0 + np.exp(-lg.astype(np.float64)))
            out.append({"emb": e, "probs": probs.mean(0).astype(np.float32), "logits": lg.mean(0)})
        return out


__all__ = ["VARIANTS", "Cnn14", "PANNEmbedder", "audioset_labels", "split_checkpoint"]
