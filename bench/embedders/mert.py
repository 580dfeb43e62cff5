"""MERT-v1 music embeddings (m-a-p/MERT-v1-95M, m-a-p/MERT-v1-330M), loaded without remote code.

MERT-v1 (Li et al. 2023, https://arxiv.org/abs/2306.00107) is a HuBERT-style model: a 7-layer
conv feature encoder on 24 kHz audio (320-sample stride -> 75 frames/s), a feature projection
(LayerNorm + Linear) and a post-LN transformer encoder with a grouped positional convolution.
The Hugging Face checkpoints ship ``modeling_MERT.py`` (``trust_remote_code``), which subclasses
``transformers``' ``HubertModel`` and changes only three things:

1. ``feature_extractor_cqt``: optionally concatenates nnAudio CQT features to the conv features
   before the projection. The released MERT-v1 configs set it to ``false`` (the CQT is a
   *training target*); a config with ``true`` is refused here.
2. ``deepnorm``: residual connections ``alpha * x + f(x)`` with ``alpha = (2 * n_layers) ** 0.25``
   in the post-LN encoder layers. Supported below (:class:`_DeepNormEncoderLayer`).
3. ``attention_relax``: ``softmax((s / r - max(s / r)) * r)`` instead of ``softmax(s)``. Softmax is
   shift-invariant, so this is the identity in exact arithmetic (a fp16 overflow guard); it is
   ignored here (float32 differences only).

With those handled, MERT's ``config.json`` maps one-to-one onto :class:`transformers.HubertConfig`
(same field names; ``feat_proj_layer_norm`` is a HubertConfig field since transformers 4.2x) and
the weights load into :class:`transformers.HubertModel` after two renames: the legacy
weight-norm names ``encoder.pos_conv_embed.conv.weight_g/_v`` become
``...conv.parametrizations.weight.original0/1`` (torch's parametrized weight norm), and a
``mert_model.``/``hubert.`` prefix, if present, is stripped. Training-only tensors
(``masked_spec_embed``, ``label_embs_concat``, ``final_proj``) are dropped if the model has no slot
for them; anything else unexpected or missing is an error (strict load).

Preprocessing follows MERT's ``preprocessor_config.json`` (``Wav2Vec2FeatureExtractor`` with
``do_normalize=True``): the waveform is normalised to zero mean / unit variance,
``(x - mean) / sqrt(var + 1e-7)``, over the whole clip.

Layer choice: ``hidden_states`` has ``num_hidden_layers + 1`` entries (index 0 = input to the first
transformer layer, after the positional conv and LayerNorm; index i = output of layer i). fadtk's
``MERTModel`` defaults to ``layer=12`` (its ``MERT-v1-95M`` FAD model is the last layer of the
95M model; ``MERT-v1-95M-<i>`` are layers 1..11) and feeds the whole clip (cut at 6 minutes) in one
forward pass. Those are the defaults here; ``window_s`` optionally cuts long clips into windows.

Output: ``{"emb": (T, D)}`` float32 frame embeddings at 75 Hz; pooling over time is the metric's job.

Parity with MERT's own code (``tests/embedders/test_mert.py``). MERT's ``modeling_MERT.py`` /
``configuration_MERT.py`` (m-a-p/MERT-v1-95M on Hugging Face; read from the copy in
github.com/cannam/mert-vamp-plugin commit 6ce100f, not vendored) were run offline by
``scripts/golden_mert.py`` under transformers 4.57: (a) two tiny random ``MERTModel``s, DeepNorm off
and on, on a real clip -- every ``hidden_states`` entry reproduced here through our loader with max
abs difference 0.0 (asserted 1e-5; the non-CQT MERT forward *is* transformers' Hubert modules);
(b) the parameter names/shapes of ``MERTModel(MERTConfig())`` = the released MERT-v1-95M
``pytorch_model.bin`` (cannam's ``dump-weights.py`` loads that file strictly into exactly this model;
94,371,712 parameters) load strictly, with legacy and parametrized weight-norm names. Found while
doing so: MERT's code lacks ``conv_pos_batch_norm`` for current transformers (fadtk sets it False,
as here); its DeepNorm layers build ``HubertAttention`` without a config, which current
transformers rejects (the golden script patches the config in); its ``attention_relax > 0`` branch
cannot run at all (``torch.max(..., dim=-1).unsqueeze`` on a named tuple), so no working MERT
config uses it. NOT checked here: the released ``config.json`` / ``preprocessor_config.json`` values
of either variant and anything about MERT-v1-330M beyond the model card's 24 layers x 1024 (no files
offline; config values are read at run time, never hard-coded); numbers with the real weights.
Layer indexing equals fadtk's ``MERTModel`` (``torch.stack(hidden_states)[layer]``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from bench.audio import AudioSpec
from bench.checkpoints import (
    CheckpointSpec,
    CheckpointUnavailable,
    hub_cache_dir,
    renamed_argument,
    resolve,
    search_dirs,
)
from bench.embedders.base import Embedder, EmbedderUnavailable, window_batch

log = logging.getLogger(__name__)

#: variant -> Hugging Face repository id
VARIANTS: dict[str, str] = {
    "MERT-v1-95M": "m-a-p/MERT-v1-95M",
    "MERT-v1-330M": "m-a-p/MERT-v1-330M",
}
#: variant -> Hugging Face LFS sha256 of the released ``pytorch_model.bin``
WEIGHTS_SHA256: dict[str, str] = {
    "MERT-v1-95M": "a2b8b747f72c06e0595aeae41ae5473f4364938c6b39b2c58be38c48e6bd3fcd",
    "MERT-v1-330M": "0c03774d821a6ad972cb48220b128a10ebea2c790116bd0fd35e5a013f8017f6",
}
HF_RESOLVE = "https://huggingface.co/{repo}/resolve/main/{file}"
#: Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm epsilon
NORM_EPS = 1e-7
#: keys of MERT's config.json that are metadata, not architecture
_META_KEYS = {"architectures", "auto_map", "model_type", "_name_or_path", "torch_dtype", "transformers_version"}
#: checkpoint tensors only used in pre-training (dropped when the HubertModel has no slot for them)
_TRAINING_ONLY_PREFIXES = ("masked_spec_embed", "label_embs_concat", "final_proj", "feature_extractor_cqt")
_WN_LEGACY = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}


# -- pure helpers ---------------------------------------------------------------------------------


def normalize_input(wav: np.ndarray) -> np.ndarray:
    """Wav2Vec2FeatureExtractor ``do_normalize``: ``(x - mean) / sqrt(var + 1e-7)`` in float32."""
    x = np.asarray(wav, dtype=np.float32)
    return ((x - x.mean()) / np.sqrt(x.var() + NORM_EPS)).astype(np.float32)


def hubert_config_from_mert(mert_cfg: dict[str, Any]):
    """MERT ``config.json`` dict -> (:class:`transformers.HubertConfig`, deepnorm flag).

    Raises :class:`ValueError` for MERT features HubertModel cannot express (CQT input features).
    """
    from transformers import HubertConfig

    cfg = {k: v for k, v in mert_cfg.items() if k not in _META_KEYS}
    if cfg.pop("feature_extractor_cqt", False):
        raise ValueError(
            "this MERT config enables feature_extractor_cqt (nnAudio CQT input features); only the released "
            "MERT-v1 configs (feature_extractor_cqt=false) are supported"
        )
    cfg.pop("feature_extractor_cqt_bins", None)
    deepnorm = bool(cfg.pop("deepnorm", False))
    cfg.pop("attention_relax", None)  # softmax shift-invariance: identity up to rounding
    if deepnorm and cfg.get("do_stable_layer_norm", False):
        raise ValueError("MERT config has deepnorm with do_stable_layer_norm (MERT itself rejects this)")
    cfg["conv_pos_batch_norm"] = False  # MERT predates this HubertConfig field; it uses weight norm
    return HubertConfig(**cfg), deepnorm


def convert_state_dict(state: dict[str, Any], model_state: dict[str, Any]) -> dict[str, Any]:
    """Rename a MERT checkpoint's keys to ``HubertModel`` keys (see module docstring).

    ``model_state`` is the target model's ``state_dict()``. Pre-training-only tensors are dropped
    when the model has no slot for them and taken from ``model_state`` when the checkpoint lacks
    them (they are unused in eval mode). Anything else missing or unexpected raises
    :class:`KeyError`, so a wrong checkpoint never loads silently.
    """
    model_keys = set(model_state)
    out = {_map_key(k, model_keys): v for k, v in state.items()}
    for k in [k for k in out if k not in model_keys and k.startswith(_TRAINING_ONLY_PREFIXES)]:
        del out[k]
    for k in [k for k in model_keys - set(out) if k.startswith(_TRAINING_ONLY_PREFIXES)]:
        out[k] = model_state[k]
    unexpected = sorted(k for k in out if k not in model_keys)
    missing = sorted(model_keys - set(out))
    if missing or unexpected:
        raise KeyError(
            f"MERT checkpoint does not match the HubertModel: missing={missing[:8]} unexpected={unexpected[:8]}"
        )
    return out


def _map_key(key: str, model_keys: set[str]) -> str:
    """Strip a wrapper prefix and translate weight-norm parameter names, whichever matches the model."""
    candidates = [key] + [key[len(p) :] for p in ("mert_model.", "hubert.", "model.") if key.startswith(p)]
    for cand in candidates:
        head, _, leaf = cand.rpartition(".")
        variants = [cand]
        if leaf in _WN_LEGACY:  # legacy checkpoint -> parametrized weight norm
            variants.append(f"{head}.{_WN_LEGACY[leaf]}")
        for legacy, new in _WN_LEGACY.items():  # parametrized checkpoint -> legacy weight norm
            if cand.endswith(new):
                variants.append(cand[: -len(new)] + legacy)
        for v in variants:
            if v in model_keys:
                return v
    return key


def receptive_field(conv_kernel: list[int], conv_stride: list[int]) -> int:
    """Samples needed for one output frame of the conv feature encoder."""
    rf, jump = 1, 1
    for k, s in zip(conv_kernel, conv_stride, strict=True):
        rf += (k - 1) * jump
        jump *= s
    return rf


def _deepnorm_layer_cls():
    import inspect

    from transformers.models.hubert.modeling_hubert import HubertEncoderLayer

    # transformers 4: layers take ``output_attentions`` and return tuples, the attention returns 3 values;
    # transformers 5: keyword arguments pass through, a layer returns the tensor (hooks record the states)
    tuple_api = "output_attentions" in inspect.signature(HubertEncoderLayer.forward).parameters

    class _DeepNormEncoderLayer(HubertEncoderLayer):
        """Post-LN HuBERT layer with MERT's DeepNorm residual ``alpha * x + f(x)``."""

        def __init__(self, config):
            super().__init__(config)
            self.residual_alpha = math.pow(2.0 * config.num_hidden_layers, 0.25)

        def forward(self, hidden_states, attention_mask=None, output_attentions=False, **kwargs):
            residual = hidden_states
            if tuple_api:
                kwargs["output_attentions"] = output_attentions
            attn = self.attention(hidden_states, attention_mask=attention_mask, **kwargs)
            hidden_states, attn_weights = attn[0], attn[1]
            hidden_states = residual * self.residual_alpha + self.dropout(hidden_states)
            hidden_states = self.layer_norm(hidden_states)
            hidden_states = hidden_states * self.residual_alpha + self.feed_forward(hidden_states)
            hidden_states = self.final_layer_norm(hidden_states)
            if not tuple_api:
                return hidden_states
            return (hidden_states, attn_weights) if output_attentions else (hidden_states,)

    return _DeepNormEncoderLayer


def build_model(mert_cfg: dict[str, Any]):
    """A randomly initialised ``HubertModel`` shaped like the MERT config (eval mode)."""
    import torch
    from transformers import HubertModel

    hcfg, deepnorm = hubert_config_from_mert(mert_cfg)
    model = HubertModel(hcfg)
    if deepnorm:
        layer_cls = _deepnorm_layer_cls()
        model.encoder.layers = torch.nn.ModuleList([layer_cls(hcfg) for _ in range(hcfg.num_hidden_layers)])
    return model.eval()


def load_state(path: Path) -> dict[str, Any]:
    """Tensors from a ``pytorch_model.bin`` (``torch.load(weights_only=True)``) or ``.safetensors`` file."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def hf_cached(repo: str, filename: str) -> Path | None:
    """A file from the Hugging Face hub cache (``$HF_HUB_CACHE`` or ``$HF_HOME/hub``), if present."""
    hub = hub_cache_dir() or str(Path.home() / ".cache" / "huggingface" / "hub")
    snaps = Path(hub).expanduser() / f"models--{repo.replace('/', '--')}" / "snapshots"
    if not snaps.is_dir():
        return None
    hits = sorted(snaps.glob(f"*/{filename}"), key=lambda p: p.stat().st_mtime, reverse=True)
    return hits[0] if hits else None


# -- embedder -------------------------------------------------------------------------------------


class MERTEmbedder(Embedder):
    """MERT-v1 hidden states of one layer, ``(T, D)`` at 75 frames/s.

    Args:
        variant: "MERT-v1-95M" (768-d, 12 layers) or "MERT-v1-330M" (1024-d, 24 layers).
        layer: index into ``hidden_states`` (0 = pre-transformer, 1..N = layer outputs; negative
            counts from the end). Default 12 as fadtk.
        checkpoint: ``pytorch_model.bin`` / ``model.safetensors``, or a directory (e.g. a Hugging Face
            snapshot) holding it next to ``config.json``.
        config_path: MERT ``config.json`` (defaults to the one next to the weights, else resolved).
        window_s: None feeds the whole clip at once (fadtk); a number cuts it into non-overlapping
            windows of that many seconds (last one zero-padded) and concatenates their frames.
    """

    name = "mert"
    default_audio = AudioSpec(sample_rate=24000, max_duration_s=360.0)

    param_aliases = {
        "checkpoint": "weights_sha256", "weights_path": "weights_sha256", "config_path": "config_sha256",
    }

    def __init__(
        self,
        variant: str = "MERT-v1-95M",
        layer: int = 12,
        checkpoint: str | None = None,
        config_path: str | None = None,
        window_s: float | None = None,
        audio: AudioSpec | dict | None = None,
        device: str = "auto",
        batch_size: int = 8,
        weights_path: str | None = None,  # deprecated alias of checkpoint
        config_key: str = "embedder.mert",
    ):
        self.config_key = config_key
        super().__init__(audio=audio, device=device, batch_size=batch_size)
        if variant not in VARIANTS:
            raise ValueError(f"unknown MERT variant {variant!r}; choose one of {sorted(VARIANTS)}")
        if window_s is not None and window_s <= 0:
            raise ValueError(f"window_s must be positive or None, got {window_s}")
        self.variant = variant
        self.window_s = None if window_s is None else float(window_s)
        checkpoint = renamed_argument(checkpoint, weights_path, "weights_path", self.config_key)
        self._files = self._resolve_files(checkpoint, config_path)
        mert_cfg = json.loads(self._files["config"][0].read_text())
        sr = int(mert_cfg.get("sample_rate", 24000))
        self.require_rate(sr, variant)
        try:
            self.model = build_model(mert_cfg)
        except ImportError as exc:
            raise EmbedderUnavailable(f"MERT needs transformers: {exc}") from exc
        state = convert_state_dict(load_state(self._files["weights"][0]), self.model.state_dict())
        self.model.load_state_dict(state, strict=True)
        self.model.to(self.device)
        n_states = self.model.config.num_hidden_layers + 1
        if not -n_states <= layer < n_states:
            raise ValueError(f"layer={layer} out of range for {variant} ({n_states} hidden states)")
        self.layer = layer % n_states
        self.dim = int(self.model.config.hidden_size)
        self.min_samples = receptive_field(self.model.config.conv_kernel, self.model.config.conv_stride)

    # -- checkpoints ----------------------------------------------------------------------------
    def _specs(self) -> dict[str, CheckpointSpec]:
        repo = VARIANTS[self.variant]
        env = "GENAUDIO_BENCH_" + self.variant.upper().replace("-", "_")
        return {
            "config": CheckpointSpec(
                filename=f"{self.variant}.config.json",
                url=HF_RESOLVE.format(repo=repo, file="config.json"),
                env_var=f"{env}_CONFIG",
                config_key=f"{self.config_key}.config_path",
            ),
            "weights": CheckpointSpec(
                filename=f"{self.variant}.pytorch_model.bin",
                url=HF_RESOLVE.format(repo=repo, file="pytorch_model.bin"),
                sha256=WEIGHTS_SHA256.get(self.variant),
                source=f"Hugging Face LFS sha256 of {repo} pytorch_model.bin",
                hub_aliases=("pytorch_model.bin",),
                env_var=f"{env}_WEIGHTS",
                config_key=f"{self.config_key}.checkpoint",
            ),
        }

    def _resolve_files(self, weights_path: str | None, config_path: str | None) -> dict[str, tuple[Path, str]]:
        specs = self._specs()
        repo = VARIANTS[self.variant]
        if weights_path and Path(weights_path).expanduser().is_dir():
            folder = Path(weights_path).expanduser()
            found = [folder / n for n in ("model.safetensors", "pytorch_model.bin") if (folder / n).is_file()]
            if not found:
                raise CheckpointUnavailable(
                    f"{self.config_key}.checkpoint={folder} has no model.safetensors or pytorch_model.bin. "
                    + specs["weights"].how_to_provide()
                )
            weights_path = str(found[0])
            if config_path is None and (folder / "config.json").is_file():
                config_path = str(folder / "config.json")
        if config_path is None and weights_path and (Path(weights_path).expanduser().parent / "config.json").is_file():
            config_path = str(Path(weights_path).expanduser().parent / "config.json")
        explicit = {"weights": weights_path, "config": config_path}
        hf_names = {"weights": ("model.safetensors", "pytorch_model.bin"), "config": ("config.json",)}
        files = {}
        for role, spec in specs.items():
            path = explicit[role]
            in_bench_cache = any((d / spec.filename).is_file() for d in search_dirs())
            if not path and not (spec.env_var and os.environ.get(spec.env_var)) and not in_bench_cache:
                path = next((p for n in hf_names[role] if (p := hf_cached(repo, n))), None)  # HF hub cache
            files[role] = resolve(spec, path)
        return files

    def checkpoints(self) -> dict[str, dict[str, str]]:
        return {role: {"path": str(p), "sha256": d} for role, (p, d) in self._files.items()}

    def derived_params(self) -> dict[str, Any]:
        return {
            "normalize": "zero_mean_unit_var",
            "weights_sha256": self._files["weights"][1],
            "config_sha256": self._files["config"][1],
        }

    # -- compute ----------------------------------------------------------------------------------
    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """``(B, samples)`` normalised audio -> ``(B, T, D)`` hidden states of ``self.layer``."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            out = self.model(x, output_hidden_states=True)
            return out.hidden_states[self.layer].float().cpu().numpy()

    def _segments(self, wav: np.ndarray) -> np.ndarray:
        """One clip -> normalised model inputs ``(n, samples)``."""
        x = np.asarray(wav, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"MERT takes mono audio (samples,), got shape {x.shape}")
        x = normalize_input(x)
        if len(x) < self.min_samples:
            x = np.pad(x, (0, self.min_samples - len(x)))
        if self.window_s is None:
            return x[None]
        win = max(int(round(self.window_s * self.audio.sample_rate)), self.min_samples)
        return window_batch(x, win, win)

    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        return self.embed_batch([wav])[0]

    def embed_batch(self, wavs) -> list[dict[str, np.ndarray]]:
        """Batches only equal-length inputs: the group-norm conv layer normalises over time,
        so zero padding would change the result."""
        segs = [self._segments(w) for w in wavs]
        rows = [(i, j) for i, s in enumerate(segs) for j in range(len(s))]
        by_len: dict[int, list[tuple[int, int]]] = {}
        for i, j in rows:
            by_len.setdefault(segs[i].shape[1], []).append((i, j))
        frames: dict[tuple[int, int], np.ndarray] = {}
        for group in by_len.values():
            for k in range(0, len(group), self.batch_size):
                chunk = group[k : k + self.batch_size]
                out = self._forward(np.stack([segs[i][j] for i, j in chunk]))
                for (i, j), h in zip(chunk, out, strict=True):
                    frames[(i, j)] = h
        return [
            {"emb": np.concatenate([frames[(i, j)] for j in range(len(segs[i]))], axis=0).astype(np.float32)}
            for i in range(len(segs))
        ]
