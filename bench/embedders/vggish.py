"""VGGish (Hershey et al. 2017), the standard FAD embedding, implemented natively in torch.

Loads the published torchvggish weights (the state dict torch.hub gives frechet-audio-distance
and fadtk) with ``torch.load(weights_only=True)``; no hub code runs. Outputs one 128-d row per
0.96 s example:

- ``relu=False, postprocess="none"`` (default): the pre-activation embedding, i.e. torchvggish
  with its final ReLU dropped, which is what frechet-audio-distance 0.3.4 (``use_activation=False,
  use_pca=False``) and fadtk use; also what Google's current ``vggish_slim`` outputs
  (``fc2`` has ``activation_fn=None``).
- ``relu=True``: torchvggish's ``VGG.forward`` output (final ReLU kept).
- ``postprocess="pca"``: PCA + whitening with the published AudioSet parameters (float).
- ``postprocess="quantized"``: PCA, clip to [-2, 2], scale to [0, 255] and round, as torchvggish's
  ``Postprocessor`` (its default ``postprocess=True`` pairs this with ``relu=True``).

Framing:

- ``framing="vggish"``: torchvggish / ``vggish_input.waveform_to_examples``: log-mel of the whole
  clip cut into non-overlapping 96-frame (0.96 s) examples; the partial tail is dropped.
- ``framing="tf_fad"``: Google's TF FAD (``create_embeddings_main.py``, ``model_step_size=8000``):
  1 s windows every 0.5 s, each giving the first 96 frames of its own log-mel. With
  ``peak_normalize=True`` the clip is first divided by ``max(0.1, max(x))`` as its
  ``AudioSetModel(normalize=True)`` does (note: the signed max, not the absolute peak).

Clips too short for one example are zero-padded to one example (``pad_short=True``); the
reference implementations return no embedding for them.

Parity (``tests/embedders/test_vggish.py``, table in ``docs/parity.md``): compared with torchvggish 0.2's own
code (``_vgg``, ``vggish_input.waveform_to_examples``, ``Postprocessor``), random weights saved in the released
key layout and loaded through our path, on fadtk's real 48 kHz music clips. Network on the same examples:
identical; whole pipeline (our decode + resampy + torch log-mel vs torchvggish's resampy + numpy float64
log-mel): max abs 2e-5, relative 2e-6 (asserted < 2e-5 relative); quantised PCA output equal except
rounding ties (asserted > 99 % equal, never off by more than 1). What differs: our log-mel runs in torch
(float64) from float32 audio; frechet-audio-distance / fadtk decode and resample with their own loaders
(librosa / soundfile) before this front end. Not checked with the real released weights (no offline copy).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.audio import AudioSpec
from bench.checkpoints import (
    CheckpointSpec,
    CheckpointUnavailable,
    resolve,
    torch_load_weights,
)
from bench.embedders.base import Embedder, host_to_device
from bench.embedders.frontends import VGGishLogMel, frame_examples

log = logging.getLogger(__name__)

VGGISH_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
PCA_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish_pca_params-970ea276.pth"
EMBEDDING_DIM = 128
EXAMPLE_FRAMES = 96  # 0.96 s of 10 ms frames
QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0
#: Key names inside the published PCA file (Google's vggish_params names).
PCA_MATRIX_KEY, PCA_MEANS_KEY = "pca_eigen_vectors", "pca_means"
#: Google TF-FAD: 1 s windows (16000 samples) every 8000 samples.
TF_WINDOW_SAMPLES, TF_STEP_SAMPLES = 16000, 8000

FRAMINGS = ("vggish", "tf_fad")
POSTPROCESS = ("none", "pca", "quantized")

def as_tensor(x: Any) -> torch.Tensor:
    return (
        x.detach().to("cpu", torch.float32)
        if torch.is_tensor(x)
        else torch.as_tensor(np.asarray(x), dtype=torch.float32)
    )


# -- network ---------------------------------------------------------------------------------------------


def make_features() -> nn.Sequential:
    """VGG-like conv stack; module indices match torchvggish (``features.0/3/6/8/11/13``)."""
    layers: list[nn.Module] = []
    c_in = 1
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c_in, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c_in = int(v)
    return nn.Sequential(*layers)


class VGGishNet(nn.Module):
    """Examples ``(N, 1, 96, 64)`` -> embeddings ``(N, 128)``; state-dict keys as torchvggish
    (``features.*``, ``embeddings.0/2/4.*``). The final ReLU is optional (``relu``)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = make_features()
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, EMBEDDING_DIM),
        )

    def forward(self, x: torch.Tensor, relu: bool = False) -> torch.Tensor:
        x = self.features(x)  # (N, 512, 6, 4)
        x = x.permute(0, 2, 3, 1).flatten(1)  # TF's channels-last flatten order, as torchvggish
        x = self.embeddings(x)
        return torch.relu(x) if relu else x


def pca_postprocess(emb: torch.Tensor, matrix: torch.Tensor, means: torch.Tensor, quantize: bool) -> torch.Tensor:
    """AudioSet PCA (+ whitening) of ``(N, 128)`` embeddings; with ``quantize`` clip to [-2, 2] and map
    to rounded values in [0, 255] (torchvggish ``Postprocessor``; Google's numpy version truncates)."""
    out = (emb - means.reshape(1, -1)) @ matrix.T
    if quantize:
        out = torch.round(
            (out.clamp(QUANTIZE_MIN, QUANTIZE_MAX) - QUANTIZE_MIN) * (255.0 / (QUANTIZE_MAX - QUANTIZE_MIN))
        )
    return out


# -- framing ---------------------------------------------------------------------------------------------


def min_samples(framing: str) -> int:
    """Shortest clip (samples at 16 kHz) that yields one example."""
    if framing == "tf_fad":
        return TF_WINDOW_SAMPLES
    return VGGishLogMel.win_length + (EXAMPLE_FRAMES - 1) * VGGishLogMel.hop_length  # 15600


def tf_fad_normalize(wav: np.ndarray, min_ratio: float = 0.1) -> np.ndarray:
    """Google TF-FAD loudness step: ``x / max(min_ratio, max(x))`` (signed max, caps the gain at +20 dB)."""
    if wav.size == 0:
        return wav
    return (wav / max(min_ratio, float(np.max(wav)))).astype(np.float32)


def log_mel_examples(wav: torch.Tensor, frontend: VGGishLogMel, framing: str) -> torch.Tensor:
    """One clip ``(samples,)`` at 16 kHz -> examples ``(N, 96, 64)`` float64 on ``wav``'s device."""
    logmel = frontend(wav[None])[0]  # (T, 64)
    if framing == "vggish":
        return frame_examples(logmel, EXAMPLE_FRAMES, EXAMPLE_FRAMES)
    if framing == "tf_fad":
        n = len(range(0, wav.shape[0] - TF_WINDOW_SAMPLES + 1, TF_STEP_SAMPLES))
        hop_frames = TF_STEP_SAMPLES // VGGishLogMel.hop_length  # 50
        return frame_examples(logmel, EXAMPLE_FRAMES, hop_frames, n)
    raise ValueError(f"unknown framing {framing!r}; choose one of {FRAMINGS}")


# -- embedder --------------------------------------------------------------------------------------------


class VGGishEmbedder(Embedder):
    """VGGish embeddings, one 128-d row per 0.96 s example (see module docstring for the options).

    Args:
        checkpoint: path to ``vggish-10086976.pth`` (else env ``GENAUDIO_BENCH_VGGISH``, cache dirs, download).
        pca_checkpoint: path to ``vggish_pca_params-970ea276.pth`` (only read when ``postprocess != "none"``;
            else env ``GENAUDIO_BENCH_VGGISH_PCA``, cache dirs, download).
        relu: keep the final ReLU of the embedding layer.
        postprocess: "none", "pca" or "quantized".
        framing: "vggish" (0.96 s hop) or "tf_fad" (0.5 s hop between 1 s windows).
        peak_normalize: Google TF-FAD's ``x / max(0.1, max(x))`` before framing.
        pad_short: zero-pad clips shorter than one example instead of returning no rows.
        config_key: the Hydra key of this embedder (named in "checkpoint missing" messages).
        max_examples_per_pass: cap on examples per forward pass (memory), not part of the output identity.
    """

    name = "vggish"
    default_audio = AudioSpec(sample_rate=16000, mono="mean", resampler="kaiser_best_polyphase")

    non_value_params = (*Embedder.non_value_params, "max_examples_per_pass")
    #: the PCA file matters only with postprocessing on; then its digest is ``pca_sha256``
    param_aliases = {"checkpoint": "checkpoint_sha256", "pca_checkpoint": "pca_sha256"}

    def __init__(
        self,
        checkpoint: str | None = None,
        pca_checkpoint: str | None = None,
        relu: bool = False,
        postprocess: str = "none",
        framing: str = "vggish",
        peak_normalize: bool = False,
        pad_short: bool = True,
        audio: AudioSpec | dict | None = None,
        device: str = "auto",
        batch_size: int = 8,
        config_key: str = "embedder.vggish",
        max_examples_per_pass: int = 128,
    ):
        super().__init__(audio=audio, device=device, batch_size=batch_size)
        if framing not in FRAMINGS:
            raise ValueError(f"unknown framing {framing!r}; choose one of {FRAMINGS}")
        if postprocess not in POSTPROCESS:
            raise ValueError(f"unknown postprocess {postprocess!r}; choose one of {POSTPROCESS}")
        self.require_rate(VGGishLogMel.sample_rate, "VGGish")
        self.relu = bool(relu)
        self.postprocess = postprocess
        self.framing = framing
        self.peak_normalize = bool(peak_normalize)
        self.pad_short = bool(pad_short)
        self.max_examples_per_pass = max(1, int(max_examples_per_pass))

        spec = CheckpointSpec.published(VGGISH_URL, env_var="GENAUDIO_BENCH_VGGISH", config_key=f"{config_key}.checkpoint")
        self.checkpoint_path, self.checkpoint_sha256 = resolve(spec, checkpoint)
        with torch.device("meta"):  # no random init of 72M parameters that are overwritten anyway
            self.net = VGGishNet()
        self.net.load_state_dict(self._vggish_state(torch_load_weights(self.checkpoint_path)), strict=True, assign=True)
        self.net.eval().to(self.device)

        self.pca_path: Path | None = None
        self.pca_sha256: str | None = None
        if postprocess != "none":
            pspec = CheckpointSpec.published(
                PCA_URL, env_var="GENAUDIO_BENCH_VGGISH_PCA", config_key=f"{config_key}.pca_checkpoint"
            )
            self.pca_path, self.pca_sha256 = resolve(pspec, pca_checkpoint)
            matrix, means = self._pca_params(torch_load_weights(self.pca_path), self.pca_path)
            self.pca_matrix, self.pca_means = matrix.to(self.device), means.to(self.device)
        self.frontend = VGGishLogMel().to(self.device)

    # -- loading ---------------------------------------------------------------------------------------
    def _vggish_state(self, obj: Any) -> dict[str, torch.Tensor]:
        if not isinstance(obj, dict):
            raise CheckpointUnavailable(f"{self.checkpoint_path} is not a state dict (got {type(obj).__name__})")
        sd = obj.get("state_dict", obj) if "features.0.weight" not in obj else obj
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
        sd = {k: as_tensor(v) for k, v in sd.items() if not k.startswith("pproc.")}
        expected = set(self.net.state_dict())
        if set(sd) != expected:
            missing, extra = sorted(expected - set(sd)), sorted(set(sd) - expected)
            raise CheckpointUnavailable(
                f"{self.checkpoint_path} does not have torchvggish's layout: missing {missing[:4]}, unexpected {extra[:4]}"
            )
        return sd

    @staticmethod
    def _pca_params(obj: Any, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(obj, dict):
            raise CheckpointUnavailable(f"{path} is not a dict of PCA parameters")
        # Google's key names; torchvggish's Postprocessor parameter names as fallbacks.
        mat = obj.get(PCA_MATRIX_KEY, obj.get("pproc.pca_eigen_vectors", obj.get("_pca_matrix")))
        mean = obj.get(PCA_MEANS_KEY, obj.get("pproc.pca_means", obj.get("_pca_means")))
        if mat is None or mean is None:
            raise CheckpointUnavailable(f"{path} lacks {PCA_MATRIX_KEY!r}/{PCA_MEANS_KEY!r} (keys: {sorted(obj)[:6]})")
        matrix, means = as_tensor(mat), as_tensor(mean).reshape(-1)
        if tuple(matrix.shape) != (EMBEDDING_DIM, EMBEDDING_DIM) or means.numel() != EMBEDDING_DIM:
            raise CheckpointUnavailable(f"{path}: bad PCA shapes {tuple(matrix.shape)}, {tuple(means.shape)}")
        return matrix, means

    # -- identity --------------------------------------------------------------------------------------
    def derived_params(self) -> dict[str, Any]:
        p = {
            "checkpoint_sha256": self.checkpoint_sha256,
            "frontend": VGGishLogMel.params(),
            "example_frames": EXAMPLE_FRAMES,
            "framing": self.framing,
            "hop_s": 0.5 if self.framing == "tf_fad" else 0.96,
        }
        if self.postprocess != "none":
            p["pca_sha256"] = self.pca_sha256
        return p

    def checkpoints(self) -> dict[str, dict[str, str]]:
        out = {"vggish": {"path": str(self.checkpoint_path), "sha256": self.checkpoint_sha256}}
        if self.pca_path is not None and self.pca_sha256 is not None:
            out["pca"] = {"path": str(self.pca_path), "sha256": self.pca_sha256}
        return out

    # -- compute ---------------------------------------------------------------------------------------
    def examples(self, wav: np.ndarray) -> torch.Tensor:
        """One clip ``(samples,)`` float32 at 16 kHz -> log-mel examples ``(N, 96, 64)`` float64 on the device."""
        wav = np.asarray(wav, dtype=np.float32).reshape(-1)
        if self.peak_normalize:
            wav = tf_fad_normalize(wav)
        need = min_samples(self.framing)
        if self.pad_short and wav.shape[0] < need:
            wav = np.pad(wav, (0, need - wav.shape[0]))
        x = host_to_device(wav, self.device)
        if x.shape[0] < VGGishLogMel.win_length:
            return torch.zeros((0, EXAMPLE_FRAMES, VGGishLogMel.n_mels), dtype=torch.float64, device=self.device)
        return log_mel_examples(x, self.frontend, self.framing)

    @torch.inference_mode()
    def forward_examples(self, ex: torch.Tensor) -> torch.Tensor:
        """Examples ``(N, 96, 64)`` -> output rows ``(N, 128)`` float32 (chunked forward passes)."""
        outs = []
        for i in range(0, ex.shape[0], self.max_examples_per_pass):
            chunk = ex[i : i + self.max_examples_per_pass].to(self.device, torch.float32)[:, None]
            emb = self.net(chunk, relu=self.relu)
            if self.postprocess != "none":
                emb = pca_postprocess(emb, self.pca_matrix, self.pca_means, quantize=self.postprocess == "quantized")
            outs.append(emb.float())
        if not outs:
            return torch.zeros((0, EMBEDDING_DIM))
        return torch.cat(outs).cpu()

    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        return self.embed_batch([wav])[0]

    def embed_batch(self, wavs: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Examples of up to ``batch_size`` clips go through the network together."""
        results: list[dict[str, np.ndarray]] = []
        for start in range(0, len(wavs), max(1, self.batch_size)):
            group = [self.examples(w) for w in wavs[start : start + max(1, self.batch_size)]]
            counts = [g.shape[0] for g in group]
            rows = self.forward_examples(torch.cat(group)) if sum(counts) else torch.zeros((0, EMBEDDING_DIM))
            for part in torch.split(rows, counts):
                results.append({"emb": part.numpy().astype(np.float32, copy=False)})
        return results

    def n_examples(self, n_samples: int) -> int:
        """How many rows a clip of ``n_samples`` (16 kHz) gives."""
        if self.pad_short:
            n_samples = max(n_samples, min_samples(self.framing))
        if self.framing == "tf_fad":
            return len(range(0, n_samples - TF_WINDOW_SAMPLES + 1, TF_STEP_SAMPLES))
        t = VGGishLogMel.n_frames(n_samples)
        return 0 if t < EXAMPLE_FRAMES else 1 + (t - EXAMPLE_FRAMES) // EXAMPLE_FRAMES


__all__ = [
    "EMBEDDING_DIM",
    "PCA_URL",
    "VGGISH_URL",
    "VGGishEmbedder",
    "VGGishNet",
    "pca_postprocess",
]
