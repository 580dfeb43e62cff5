"""Meta's Audiobox Aesthetics predictor (Tjandra et al. 2025, arXiv 2502.05139) as a per-clip scorer.

The model code is the ``audiobox-aesthetics`` package's own (``audiobox_aesthetics.model.aes
.AesMultiOutput``: a WavLM-base encoder, per-axis softmax-weighted layer sums, masked mean pooling,
L2 normalisation and one linear head per axis); install it with
``pip install --no-deps audiobox-aesthetics==0.0.4``. Inference follows the package's
``AesPredictor.forward``: mono 16 kHz audio cut into 10 s windows with a 10 s hop (the last one
zero-padded and masked), predictions de-normalised per axis (``pred * std + mean`` from the
checkpoint's ``target_transform``), and the clip score per axis = the mean of its windows' scores
weighted by each window's unpadded fraction.

Axes (the package's order): CE content enjoyment, CU content usefulness, PC production complexity,
PQ production quality, each on the released model's 1-10 scale.

Weights: the released ``checkpoint.pt`` (CC BY 4.0; https://dl.fbaipublicfiles.com/audiobox-aesthetics/
checkpoint.pt, also ``facebook/audiobox-aesthetics`` on the Hugging Face hub), resolved as every
checkpoint (:mod:`bench.checkpoints`): ``embedder.audiobox_aesthetics.checkpoint`` >
``$GENAUDIO_BENCH_AUDIOBOX_AESTHETICS_CHECKPOINT`` > ``<bench_home>/checkpoints`` > the HF hub cache >
download when online. It is loaded with ``torch.load(weights_only=True)`` (tensors and plain config
values only).

Output of :meth:`embed`: ``{"emb": (n_windows, 4) per-window scores, "aes": (4,) clip scores}``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.audio import AudioSpec
from bench.checkpoints import CheckpointSpec, resolve, search_dirs, torch_load_weights
from bench.embedders.base import Embedder, EmbedderUnavailable

AXES = ("CE", "CU", "PC", "PQ")
SAMPLE_RATE = 16000
WINDOW_S = 10
HF_REPO = "facebook/audiobox-aesthetics"
ENV_CKPT = "GENAUDIO_BENCH_AUDIOBOX_AESTHETICS_CHECKPOINT"
CHECKPOINT_SPEC = CheckpointSpec(
    filename="audiobox_aesthetics_checkpoint.pt",
    url="https://dl.fbaipublicfiles.com/audiobox-aesthetics/checkpoint.pt",
    env_var=ENV_CKPT,
    config_key="embedder.audiobox_aesthetics.checkpoint",
)
#: model_cfg keys the package passes to AesMultiOutput (infer.AesPredictor.setup_model)
MODEL_CFG_KEYS = (
    "proj_num_layer", "proj_ln", "proj_act_fn", "proj_dropout", "nth_layer", "use_weighted_layer_sum", "precision",
    "normalize_embed", "output_dim",
)


def find_checkpoint(path: str | os.PathLike | None = None) -> tuple[Path, str]:
    """explicit path > env var > bench cache dirs > Hugging Face hub cache > download (online)."""
    if not path and not os.environ.get(ENV_CKPT) and not any((d / CHECKPOINT_SPEC.filename).is_file() for d in search_dirs()):
        from bench.embedders.mert import hf_cached

        path = hf_cached(HF_REPO, "checkpoint.pt")
    return resolve(CHECKPOINT_SPEC, path)


def window_batch(wav: np.ndarray, sr: int = SAMPLE_RATE, window_s: int = WINDOW_S):
    """The package's ``make_inference_batch`` for one clip: ``(wins (n, L), masks (n, L) bool, weights (n,))``."""
    win = window_s * sr
    starts = range(0, max(len(wav), 1), win)
    wins = np.zeros((len(starts), win), dtype=np.float32)
    masks = np.zeros((len(starts), win), dtype=bool)
    weights = np.zeros(len(starts))
    for j, s in enumerate(starts):
        seg = wav[s : s + win]
        wins[j, : len(seg)] = seg
        masks[j, : len(seg)] = True
        weights[j] = len(seg) / win
    return wins, masks, weights


def build_model(ckpt: dict[str, Any], precision: str | None = None):
    """``AesMultiOutput`` from a checkpoint dict (``state_dict``, ``model_cfg``, ``target_transform``)."""
    try:
        from audiobox_aesthetics.model.aes import AesMultiOutput
    except ImportError as exc:
        raise EmbedderUnavailable(
            f"audiobox-aesthetics model code not importable ({exc}): pip install --no-deps audiobox-aesthetics==0.0.4"
        ) from exc
    cfg = {k: ckpt["model_cfg"][k] for k in MODEL_CFG_KEYS}
    if precision is not None:
        cfg["precision"] = precision
    model = AesMultiOutput(**cfg, target_transform=ckpt["target_transform"])
    state = {re.sub("^model.", "", k): v for k, v in ckpt["state_dict"].items()}
    model.load_state_dict(state)
    return model.eval()


class AudioboxAesthetics(Embedder):
    """Audiobox Aesthetics scores (CE, CU, PC, PQ) per clip.

    Args:
        checkpoint: path to ``checkpoint.pt`` (None: env var, cache dirs, HF cache, download).
        precision: None = the checkpoint's ``model_cfg.precision`` (what the package uses), or
            "32" / "bf16" / "16" to override (autocast for the half types).
        batch_size: 10 s windows per forward pass.
    """

    name = "audiobox_aesthetics"
    feature = "aesthetics"
    param_aliases = {"checkpoint": "checkpoint_sha256"}
    axes = AXES
    default_audio = AudioSpec(sample_rate=SAMPLE_RATE, mono="mean", resampler="torchaudio_sinc")

    def __init__(
        self,
        checkpoint: str | None = None,
        precision: str | None = None,
        device: str = "auto",
        batch_size: int = 4,
        audio: AudioSpec | dict | None = None,
    ):
        super().__init__(audio=audio, device=device, batch_size=batch_size)
        self.require_rate(SAMPLE_RATE, "Audiobox Aesthetics")
        self.checkpoint_path, self.sha256 = find_checkpoint(checkpoint)
        ckpt = torch_load_weights(self.checkpoint_path)
        if not (isinstance(ckpt, dict) and {"state_dict", "model_cfg", "target_transform"} <= set(ckpt)):
            raise EmbedderUnavailable(
                f"{self.checkpoint_path}: expected the released checkpoint.pt (state_dict, model_cfg, target_transform)"
            )
        self.model = build_model(ckpt, precision).to(self.device)
        self.precision = str(precision if precision is not None else ckpt["model_cfg"]["precision"])
        self.target = {a: (float(ckpt["target_transform"][a]["mean"]), float(ckpt["target_transform"][a]["std"])) for a in AXES}

    def derived_params(self) -> dict[str, Any]:
        return {
            "checkpoint_sha256": self.sha256,
            "window_s": WINDOW_S,
            "hop_s": WINDOW_S,
            "aggregate": "window_fraction_weighted_mean",
            "axes": list(AXES),
        }

    def checkpoints(self) -> dict[str, dict[str, str]]:
        return {"audiobox_aesthetics": {"path": str(self.checkpoint_path), "sha256": self.sha256}}

    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        return self.embed_batch([wav])[0]

    def embed_batch(self, wavs: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        import torch

        per = [window_batch(np.asarray(w, dtype=np.float32)) for w in wavs]
        wins = np.concatenate([p[0] for p in per])
        masks = np.concatenate([p[1] for p in per])
        preds = []
        bs = max(1, self.batch_size)
        with torch.inference_mode():
            for i in range(0, len(wins), bs):
                batch = {
                    "wav": torch.from_numpy(wins[i : i + bs])[:, None].to(self.device),
                    "mask": torch.from_numpy(masks[i : i + bs])[:, None].to(self.device),
                }
                out = self.model(batch)
                preds.append(
                    np.stack([out[a].float().cpu().numpy() * self.target[a][1] + self.target[a][0] for a in AXES], 1)
                )
        scores = np.concatenate(preds).astype(np.float64)
        result, start = [], 0
        for _, _, w in per:
            s = scores[start : start + len(w)]
            start += len(w)
            result.append({"emb": s.astype(np.float32), "aes": ((s * w[:, None]).sum(0) / w.sum()).astype(np.float32)})
        return result
