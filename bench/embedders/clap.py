"""LAION-CLAP audio and text embeddings (model code from ``laion_clap`` 1.1.7, our loading and windowing).

What runs is laion_clap's own ``CLAP`` module (HTSAT audio tower, RoBERTa text tower, projection MLPs) and,
for non-fusion models, HTSAT's own log-mel front end (torchlibrosa STFT + mel filterbank inside the model).
What is ours:

* **Import and construction offline.** ``import laion_clap`` downloads three HF tokenizers at import time and
  ``CLAP.__init__`` calls ``RobertaModel.from_pretrained("roberta-base")``. We import the ``clap_module``
  package directly (the same ``sys.path`` trick laion_clap's ``__init__`` uses) and, while the model is built,
  let ``RobertaModel.from_pretrained`` return a randomly initialised ``RobertaModel`` of the roberta-base
  architecture (:data:`ROBERTA_BASE`); every text-tower weight is then overwritten by the CLAP checkpoint
  (loaded strictly), exactly as ``CLAP_Module.load_ckpt`` does after the pretrained init.
* **Weights.** Resolved by :mod:`bench.checkpoints` (explicit path > env var > cache dirs > download) and
  loaded with ``torch.load(weights_only=True)`` (numpy scalar/array types allow-listed, nothing else) or
  safetensors; ``module.`` prefixes and the stale ``text_branch.embeddings.position_ids`` are dropped, as
  laion_clap's ``load_state_dict`` does.
* **Windowing.** ``CLAP_Module.get_audio_embedding_from_data`` (non-fusion) int16-quantises the clip, then
  repeat-pads clips < 10 s (tile ``floor(480000/n)`` times, zero-pad the rest) and takes ONE RANDOM 10-s crop
  of longer clips. We quantise the same way, treat clips <= 10 s identically (so they match it to float
  precision), but cut longer clips into deterministic 10-s windows (hop ``hop_s``, default 10 s), one
  embedding per window. The tail left after the last full window is, by ``tail``: ``"fill"`` (default: treated
  like a short clip, i.e. repeat-padded with ``filling``), ``"end"`` (a full window ending at the last sample,
  as ``CLAP.audio_infer`` does) or ``"drop"``; tails shorter than ``min_tail_s`` are dropped.
* **Fusion models** (``long_audio="fusion"``, default for fusion variants): clips <= 10 s are repeat-padded
  and their torchaudio log-mel is stacked 4x (as laion_clap); longer clips give the global mel shrunk to 10 s
  plus three 10-s mel chunks, one from each third of the clip. laion_clap draws each chunk uniformly at random
  inside its third; we take the centre of each third, so the result is deterministic (one embedding per clip).
  ``long_audio="windows"`` instead feeds fusion models the same deterministic 10-s windows as above.
* **Text.** RoBERTa tokenizer, padded/truncated to 77 tokens (laion_clap's ``tokenizer``); how many texts were
  cut is counted (:attr:`ClapEmbedder.last_text_truncated`) and logged.

Outputs are L2-normalised 512-d joint-space embeddings (``get_audio_embedding`` / ``get_text_embedding``).

Resampling: laion_clap's file-list path uses ``librosa.load(sr=48000)`` (soxr_hq in librosa >= 0.10); the
data path takes whatever the caller resampled. Our default is ``torchaudio_kaiser_best`` (librosa's former
``kaiser_best`` default, a high-quality band-limited resampler); set ``audio.resampler`` to change it.

Parity (``tests/embedders/test_clap.py``, table in ``docs/parity.md``): random weights of laion_clap's own
``CLAP_Module`` (HTSAT-tiny, fusion, HTSAT-base) saved as its training checkpoints are and loaded through our
path give the same embeddings as ``get_audio_embedding_from_data`` / ``get_text_embedding`` -- on fadtk's real
48 kHz clips the difference is 0 (asserted < 1e-5 relative; the model code is theirs). The full-size released
key layout (RoBERTa-base text tower, ``module.`` prefix, position_ids, also fadtk's rewritten copy) is a golden
list in ``tests/embedders/golden``. What differs: windows of clips > 10 s (deterministic instead of a random
crop / random fusion chunks), and the resampler when the input is not 48 kHz. Real weights not checked offline.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.audio import AudioSpec
from bench.checkpoints import (
    CheckpointSpec,
    CheckpointUnavailable,
    bench_home,
    is_offline,
    resolve,
    torch_load_weights,
)
from bench.embedders.base import Embedder, EmbedderUnavailable

log = logging.getLogger(__name__)

SAMPLE_RATE = 48000
#: samples per CLAP window (10 s at 48 kHz): laion_clap's ``max_len`` / ``clip_samples``
CLIP_SAMPLES = 480000
#: RoBERTa context CLAP was trained with (laion_clap ``tokenizer(max_length=77)``)
TEXT_MAX_TOKENS = 77
EMBED_DIM = 512

HF_BASE = "https://huggingface.co/lukewys/laion_clap/resolve/main/"

#: roberta-base's published config.json (the architecture the CLAP text tower was trained from).
ROBERTA_BASE: dict[str, Any] = {
    "vocab_size": 50265,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-05,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}

ROBERTA_TOKENIZER_ENV = "GENAUDIO_BENCH_ROBERTA_TOKENIZER"
ROBERTA_FILES = {
    "vocab_file": CheckpointSpec(
        filename="roberta-base-vocab.json",
        url="https://huggingface.co/FacebookAI/roberta-base/resolve/main/vocab.json",
    ),
    "merges_file": CheckpointSpec(
        filename="roberta-base-merges.txt",
        url="https://huggingface.co/FacebookAI/roberta-base/resolve/main/merges.txt",
    ),
}


@dataclass(frozen=True)
class ClapVariant:
    """One published laion_clap checkpoint and the architecture it needs (see laion_clap's README)."""

    filename: str
    amodel: str  # laion_clap model config: HTSAT-tiny (630k) or HTSAT-base (music)
    fusion: bool
    config_key: str  # our Hydra config (bench/configs/embedder/<config_key>.yaml)
    sha256: str | None = None  # Hugging Face LFS sha256 of the file (None: not found published)

    def spec(self) -> CheckpointSpec:
        env = "GENAUDIO_BENCH_" + self.config_key.upper() + "_CKPT"
        return CheckpointSpec(
            filename=self.filename,
            url=HF_BASE + self.filename,
            sha256=self.sha256,
            source="Hugging Face LFS sha256 of lukewys/laion_clap" if self.sha256 else None,
            env_var=env,
            config_key=f"embedder.{self.config_key}.checkpoint",
        )


VARIANTS: dict[str, ClapVariant] = {
    "630k-audioset": ClapVariant(
        "630k-audioset-best.pt", "HTSAT-tiny", False, "clap",
        sha256="8053c9775516af2f4902e1e8281e356cc1bf7a85e8b761908170767b77c3f037",
    ),
    "630k-audioset-fusion": ClapVariant("630k-audioset-fusion-best.pt", "HTSAT-tiny", True, "clap_fusion"),
    "630k": ClapVariant("630k-best.pt", "HTSAT-tiny", False, "clap_630k"),
    "630k-fusion": ClapVariant("630k-fusion-best.pt", "HTSAT-tiny", True, "clap_630k_fusion"),
    "music": ClapVariant(
        "music_audioset_epoch_15_esc_90.14.pt", "HTSAT-base", False, "clap_music",
        sha256="fae3e9c087f2909c28a09dc31c8dfcdacbc42ba44c70e972b58c1bd1caf6dedd",
    ),
    "music_speech": ClapVariant(
        "music_speech_audioset_epoch_15_esc_89.98.pt", "HTSAT-base", False, "clap_music_speech",
        sha256="51c68f12f9d7ea25fdaaccf741ec7f81e93ee594455410f3bca4f47f88d8e006",
    ),
}


# -- pure front-end maths -------------------------------------------------------------------------------------
def int16_roundtrip(x: np.ndarray) -> np.ndarray:
    """laion_clap's ``int16_to_float32(float32_to_int16(x))``: clip to [-1, 1], ``*32767``, truncate, ``/32767``."""
    x = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0)
    return ((x * 32767.0).astype(np.int16) / 32767.0).astype(np.float32)


def fill(x: np.ndarray, n: int, method: str = "repeatpad") -> np.ndarray:
    """Bring a clip ``(samples,)`` shorter than ``n`` to ``n`` samples as laion_clap's ``data_filling``.

    "repeatpad": tile ``floor(n / len)`` times, zero-pad the rest; "pad": zero-pad; "repeat": tile and cut.
    """
    x = np.asarray(x, dtype=np.float32)
    if len(x) >= n:
        return x[:n]
    if method == "repeatpad":
        x = np.tile(x, n // len(x))
        return np.pad(x, (0, n - len(x)))
    if method == "pad":
        return np.pad(x, (0, n - len(x)))
    if method == "repeat":
        return np.tile(x, n // len(x) + 1)[:n]
    raise ValueError(f"unknown filling {method!r}; choose repeatpad, pad or repeat")


def clap_windows(
    wav: np.ndarray,
    win: int = CLIP_SAMPLES,
    hop: int = CLIP_SAMPLES,
    tail: str = "fill",
    min_tail: int = 1,
    filling: str = "repeatpad",
) -> np.ndarray:
    """Deterministic windows ``(n_windows, win)`` of a clip ``(samples,)``.

    A clip of at most ``win`` samples is one window, filled with ``filling`` (laion_clap's short-clip rule).
    Longer clips give the full windows starting at ``0, hop, 2*hop, ...``; if at least ``min_tail`` samples
    remain uncovered, ``tail`` adds "fill" (the segment from the next hop to the end, filled), "end" (the last
    ``win`` samples) or nothing ("drop"). ``tail="all"`` instead starts a window at every hop before the end of
    the clip, short ones filled (fadtk's ``clap-laion-*`` models: 1-s hop, ``filling="pad"``).
    """
    if not 0 < hop <= win:
        raise ValueError(f"hop must be in (0, {win}] samples, got {hop}")
    if tail not in ("fill", "end", "drop", "all"):
        raise ValueError(f"unknown tail {tail!r}; choose fill, end, drop or all")
    wav = np.asarray(wav, dtype=np.float32)
    n = len(wav)
    if tail == "all":
        return np.stack([fill(wav[s : s + win], win, filling) for s in range(0, max(n, 1), hop)])
    if n <= win:
        return fill(wav, win, filling)[None]
    starts = list(range(0, n - win + 1, hop))
    out = [wav[s : s + win] for s in starts]
    uncovered = n - (starts[-1] + win)
    if uncovered > 0 and uncovered >= min_tail:
        if tail == "fill":
            out.append(fill(wav[starts[-1] + hop :], win, filling))
        elif tail == "end":
            out.append(wav[n - win :])
    return np.stack(out)


def log_mel(x, audio_cfg: dict):
    """laion_clap's ``get_mel``: torchaudio power mel (htk scale, no filter norm) in dB. ``(samples,)`` -> ``(T, mels)``.

    (laion_clap also passes ``onesided=True``, which torchaudio ignores and deprecates.)
    """
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=audio_cfg["sample_rate"],
        n_fft=audio_cfg["window_size"],
        win_length=audio_cfg["window_size"],
        hop_length=audio_cfg["hop_size"],
        center=True,
        pad_mode="reflect",
        power=2.0,
        norm=None,
        n_mels=audio_cfg["mel_bins"],
        f_min=audio_cfg["fmin"],
        f_max=audio_cfg["fmax"],
    ).to(x.device)(x)
    return torchaudio.transforms.AmplitudeToDB(top_db=None)(mel).T


def fusion_input(wav: np.ndarray, audio_cfg: dict, max_len: int = CLIP_SAMPLES, filling: str = "repeatpad"):
    """Fusion-model input of one clip: ``(mel_fusion (4, T, mels) tensor, longer: bool)``.

    Clips <= ``max_len``: filled, mel stacked 4x, ``longer=False`` (as laion_clap). Longer clips: the whole
    mel resized to ``max_len // hop + 1`` frames plus three chunks of that length, each starting at the centre
    of one third of the possible start frames (laion_clap picks each start at random in its third).
    """
    import torch

    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    if len(x) <= max_len:
        mel = log_mel(torch.from_numpy(fill(wav, max_len, filling)), audio_cfg)
        return torch.stack([mel, mel, mel, mel], dim=0), False
    mel = log_mel(x, audio_cfg)
    chunk = max_len // audio_cfg["hop_size"] + 1
    total = mel.shape[0]
    if chunk == total:  # only up to one hop longer than max_len: laion_clap uses the whole mel
        return torch.stack([mel, mel, mel, mel], dim=0), False
    import torchvision

    ranges = np.array_split(np.arange(0, total - chunk + 1), 3)
    starts = [int(r[len(r) // 2]) if len(r) else 0 for r in ranges]
    chunks = [mel[s : s + chunk, :] for s in starts]
    shrink = torchvision.transforms.Resize(size=[chunk, audio_cfg["mel_bins"]])(mel[None])[0]
    return torch.stack([shrink, *chunks], dim=0), True


# -- laion_clap model code, imported and built offline --------------------------------------------------------
def clap_module():
    """laion_clap's ``clap_module`` package, imported without running ``laion_clap/__init__``.

    ``laion_clap/__init__`` appends its own folder to ``sys.path`` and imports ``clap_module`` from there; we
    do the same, skipping ``laion_clap.training.data`` which downloads three HF tokenizers at import time.
    """
    spec = importlib.util.find_spec("laion_clap")
    if spec is None or spec.origin is None:
        raise EmbedderUnavailable("laion_clap is not installed: pip install laion-clap==1.1.7")
    folder = str(Path(spec.origin).parent)
    if folder not in sys.path:
        sys.path.append(folder)
    import clap_module as cm

    return cm


_BUILD_LOCK = threading.Lock()


@contextmanager
def _roberta_from_config(model_module, config: dict[str, Any]) -> Iterator[None]:
    """While active, ``RobertaModel.from_pretrained(...)`` inside laion_clap's model.py builds ``config`` instead."""
    import transformers

    class _RobertaFromConfig:
        @staticmethod
        def from_pretrained(*_args, **_kwargs):
            return transformers.RobertaModel(transformers.RobertaConfig(**config))

    with _BUILD_LOCK:
        original = model_module.RobertaModel
        model_module.RobertaModel = _RobertaFromConfig
        try:
            yield
        finally:
            model_module.RobertaModel = original


def build_clap_model(amodel: str, fusion: bool, text_config: dict[str, Any] | None = None):
    """Randomly initialised laion_clap ``CLAP`` (fp32, eval mode) and its model config dict.

    ``text_config`` overrides fields of :data:`ROBERTA_BASE` (e.g. a tiny text tower for tests).
    """
    cm = clap_module()
    config = {**ROBERTA_BASE, **(text_config or {})}
    with _roberta_from_config(cm.model, config):
        model, model_cfg = cm.create_model(
            amodel,
            "roberta",
            precision="fp32",
            device="cpu",
            enable_fusion=fusion,
            fusion_type="aff_2d" if fusion else "None",
        )
    return model.eval(), model_cfg


def load_clap_state_dict(path: str | os.PathLike) -> dict[str, Any]:
    """State dict of a laion_clap checkpoint (``.pt`` training checkpoint, plain state dict or ``.safetensors``)."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        sd = load_file(str(path))
    else:
        sd = torch_load_weights(path)
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise CheckpointUnavailable(f"{path} holds a {type(sd).__name__}, not a CLAP state dict")
    sd = {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}
    sd.pop("text_branch.embeddings.position_ids", None)  # a buffer that transformers >= 4.31 no longer saves
    return sd


def is_roberta_vocabulary(tok) -> bool:
    """Whether ``tok`` holds a byte-level BPE vocabulary that spells words (not a placeholder).

    transformers 5 does not raise when the vocabulary is missing: ``from_pretrained`` of an absent or empty
    source and ``RobertaTokenizer(vocab_file=..., merges_file=...)`` (transformers 4's keyword names, ignored)
    return a 5-token tokenizer that maps every text to ``<s></s>``, i.e. one text embedding for all prompts.
    """
    ids = tok("music", add_special_tokens=False)["input_ids"]
    return len(tok.get_vocab()) > 256 and bool(ids) and tok.unk_token_id not in ids


def hf_cache_roberta():
    """The roberta-base tokenizer from the Hugging Face cache, or None."""
    from transformers import RobertaTokenizer

    try:
        tok = RobertaTokenizer.from_pretrained("roberta-base", local_files_only=True)
    except Exception:  # not in the HF cache (transformers 4)
        return None
    return tok if is_roberta_vocabulary(tok) else None  # transformers 5: a placeholder


def resolve_roberta_tokenizer(path: str | os.PathLike | None = None):
    """roberta-base BPE tokenizer: ``path`` (folder or hub id) > $GENAUDIO_BENCH_ROBERTA_TOKENIZER > HF cache >
    bench checkpoint dir (vocab/merges, downloaded when online). Returns ``(tokenizer, source)``; every
    source is checked with :func:`is_roberta_vocabulary`."""
    from transformers import RobertaTokenizer

    def checked(tok, source: str):
        if not is_roberta_vocabulary(tok):
            raise EmbedderUnavailable(
                f"the CLAP text tokenizer from {source} has {len(tok.get_vocab())} tokens and cannot spell a word: "
                "that is not the roberta-base vocabulary (a folder needs vocab.json + merges.txt)"
            )
        return tok, source

    explicit = path or os.environ.get(ROBERTA_TOKENIZER_ENV)
    if explicit:
        try:
            tok = RobertaTokenizer.from_pretrained(str(explicit), local_files_only=is_offline())
        except Exception as exc:  # OSError / ValueError from transformers
            raise EmbedderUnavailable(f"cannot load the CLAP text tokenizer from {explicit!r}: {exc}") from exc
        return checked(tok, str(explicit))
    cached = hf_cache_roberta()
    if cached is not None:
        return cached, "hf-cache:roberta-base"
    try:
        files = {k: resolve(spec)[0] for k, spec in ROBERTA_FILES.items()}
    except CheckpointUnavailable as exc:
        raise EmbedderUnavailable(
            "CLAP text tower needs the roberta-base tokenizer (vocab.json + merges.txt): set "
            f"embedder.<clap>.tokenizer=/dir/with/them, or export {ROBERTA_TOKENIZER_ENV}=/dir, or put them in "
            f"the HF cache (huggingface-cli download roberta-base vocab.json merges.txt), or save them as "
            f"{bench_home() / 'checkpoints' / 'roberta-base-vocab.json'} and ...-merges.txt. ({exc})"
        ) from exc
    # positional: transformers 4 names these vocab_file/merges_file, transformers 5 vocab/merges
    tok = RobertaTokenizer(str(files["vocab_file"]), str(files["merges_file"]))
    return checked(tok, str(files["vocab_file"].parent))


# -- the embedder ---------------------------------------------------------------------------------------------
class ClapEmbedder(Embedder):
    """LAION-CLAP joint audio/text embeddings: ``{"emb": (T, 512)}`` per clip, T = number of 10-s windows.

    Args:
        variant: key of :data:`VARIANTS` ("630k-audioset", "630k-audioset-fusion", "music", "music_speech", ...).
        checkpoint: explicit path to the weights (else env var / cache dirs / download).
        tokenizer: folder (or hub id) of the roberta-base tokenizer for :meth:`embed_text`.
        hop_s: window hop in seconds (window is always 10 s).
        tail: what to do with audio after the last full window: "fill", "end" or "drop" (see module doc); "all":
            a window at every hop up to the end of the clip (fadtk's windowing).
        filling: laion_clap ``data_filling`` for windows shorter than 10 s: "repeatpad", "pad" or "repeat".
        min_tail_s: tails shorter than this are dropped (a clip always keeps at least one window).
        long_audio: "windows" or, for fusion variants, "fusion" (default for them; one embedding per clip).
        quantize_int16: apply laion_clap's int16 round trip to the waveform first (as ``get_audio_embedding_from_data``).
        text_config: overrides of the RoBERTa architecture (:data:`ROBERTA_BASE`), for non-standard checkpoints.
        text_batch_size: texts per forward pass in :meth:`embed_text`.
    """

    name = "clap"
    default_audio = AudioSpec(sample_rate=SAMPLE_RATE, mono="mean", resampler="torchaudio_kaiser_best")

    #: tokenizer: where the standard roberta-base vocabulary is; text_config: fixed by the checkpoint
    #: (loaded strictly), whose digest is in the id; text_batch_size: speed only
    non_value_params = (*Embedder.non_value_params, "tokenizer", "text_config", "text_batch_size")
    param_aliases = {"checkpoint": "checkpoint_sha256"}

    def __init__(
        self,
        variant: str = "630k-audioset",
        checkpoint: str | os.PathLike | None = None,
        tokenizer: str | os.PathLike | None = None,
        hop_s: float = 10.0,
        tail: str = "fill",
        filling: str = "repeatpad",
        min_tail_s: float = 1.0,
        long_audio: str | None = None,
        quantize_int16: bool = True,
        text_config: dict[str, Any] | None = None,
        text_batch_size: int = 64,
        audio: AudioSpec | dict | None = None,
        device: str = "auto",
        batch_size: int = 8,
    ):
        super().__init__(audio=audio, device=device, batch_size=batch_size)
        if variant not in VARIANTS:
            raise ValueError(f"unknown CLAP variant {variant!r}; choose one of {sorted(VARIANTS)}")
        self.require_rate(SAMPLE_RATE, "CLAP")
        self.variant = variant
        self.spec = VARIANTS[variant]
        self.name = self.spec.config_key
        self.long_audio = long_audio or ("fusion" if self.spec.fusion else "windows")
        if self.long_audio not in ("windows", "fusion") or (self.long_audio == "fusion" and not self.spec.fusion):
            raise ValueError(f"long_audio={self.long_audio!r} is not possible for CLAP variant {variant!r}")
        self.hop = int(round(hop_s * SAMPLE_RATE))
        self.hop_s = float(hop_s)
        self.tail, self.filling, self.min_tail_s = tail, filling, float(min_tail_s)
        clap_windows(np.zeros(1, np.float32), CLIP_SAMPLES, self.hop, tail, 1, filling)  # validate the options
        self.quantize_int16 = bool(quantize_int16)
        self.text_batch_size = int(text_batch_size)
        self.tokenizer = tokenizer  # where the vocabulary is (the constructor argument, as every argument)
        self._tokenizer = None
        self._tokenizer_source: str | None = None
        #: texts cut at 77 tokens by the last :meth:`embed_text` call (count and indices), and over all calls
        self.last_text_truncated = 0
        self.last_text_truncated_idx: list[int] = []
        self.text_truncated_total = 0

        self.ckpt_path, self.ckpt_sha256 = resolve(self.spec.spec(), checkpoint)
        import torch

        self.model, self.model_cfg = build_clap_model(self.spec.amodel, self.spec.fusion, text_config)
        state = load_clap_state_dict(self.ckpt_path)
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointUnavailable(
                f"{self.ckpt_path} does not fit CLAP variant {variant!r} ({self.spec.amodel}, "
                f"fusion={self.spec.fusion}): {str(exc)[:500]}"
            ) from exc
        self.model.to(torch.device(self.device)).eval()
        self.audio_cfg = dict(self.model_cfg["audio_cfg"])

    # -- identity ---------------------------------------------------------------------------------------------
    def derived_params(self) -> dict[str, Any]:
        return {"amodel": self.spec.amodel, "fusion": self.spec.fusion, "checkpoint_sha256": self.ckpt_sha256}

    def checkpoints(self) -> dict[str, dict[str, str]]:
        out = {"clap": {"path": str(self.ckpt_path), "sha256": self.ckpt_sha256}}
        if self._tokenizer_source:
            out["roberta_tokenizer"] = {"path": self._tokenizer_source, "sha256": ""}
        return out

    # -- audio ------------------------------------------------------------------------------------------------
    def model_inputs(self, wav: np.ndarray) -> list[dict[str, Any]]:
        """The per-window input dicts laion_clap's ``CLAP.get_audio_embedding`` takes, for one clip."""
        import torch

        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim != 1:
            raise ValueError(f"CLAP takes mono audio (samples,), got shape {wav.shape}")
        if self.quantize_int16:
            wav = int16_roundtrip(wav)
        if self.long_audio == "fusion":
            mel, longer = fusion_input(wav, self.audio_cfg, CLIP_SAMPLES, self.filling)
            return [{"mel_fusion": mel, "longer": torch.tensor([longer])}]
        min_tail = max(1, int(round(self.min_tail_s * SAMPLE_RATE)))
        windows = clap_windows(wav, CLIP_SAMPLES, self.hop, self.tail, min_tail, self.filling)
        inputs = []
        for w in windows:
            if self.spec.fusion:  # fusion model fed 10-s windows: mel of the window, 4x
                mel, _ = fusion_input(w, self.audio_cfg, CLIP_SAMPLES, self.filling)
                inputs.append({"mel_fusion": mel, "longer": torch.tensor([False])})
            else:
                inputs.append({"waveform": torch.from_numpy(np.ascontiguousarray(w)), "longer": torch.tensor([False])})
        return inputs

    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        return self.embed_batch([wav])[0]

    def embed_batch(self, wavs: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        import torch

        per_clip = [self.model_inputs(w) for w in wavs]
        flat = [d for inputs in per_clip for d in inputs]
        outs = []
        with torch.inference_mode():
            for i in range(0, len(flat), self.batch_size):
                emb = self.model.get_audio_embedding(flat[i : i + self.batch_size])
                outs.append(emb.float())
        # one device -> host transfer per call (no sync between forward passes)
        embs = torch.cat(outs).cpu().numpy() if outs else np.zeros((0, EMBED_DIM), np.float32)
        result, k = [], 0
        for inputs in per_clip:
            result.append({"emb": np.ascontiguousarray(embs[k : k + len(inputs)], dtype=np.float32)})
            k += len(inputs)
        return result

    # -- text -------------------------------------------------------------------------------------------------
    @property
    def text_tokenizer(self):
        """The roberta-base tokenizer, resolved on first use (raises :class:`EmbedderUnavailable`)."""
        if self._tokenizer is None:
            self._tokenizer, self._tokenizer_source = resolve_roberta_tokenizer(self.tokenizer)
        return self._tokenizer

    def count_truncated(self, texts: Sequence[str]) -> list[int]:
        """Indices of texts longer than 77 RoBERTa tokens (incl. <s> and </s>), which CLAP truncates."""
        ids = self.text_tokenizer(list(texts), truncation=False, padding=False, verbose=False)["input_ids"]
        return [i for i, seq in enumerate(ids) if len(seq) > TEXT_MAX_TOKENS]

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised text embeddings ``(n, 512)``; texts are truncated to 77 tokens (counted, logged)."""
        import torch

        texts = [str(t) for t in texts]
        truncated = self.count_truncated(texts) if texts else []
        self.last_text_truncated, self.last_text_truncated_idx = len(truncated), truncated
        self.text_truncated_total += len(truncated)
        if truncated:
            log.warning(
                "CLAP: %d of %d texts exceed %d tokens and were truncated (first: #%d %r)",
                len(truncated),
                len(texts),
                TEXT_MAX_TOKENS,
                truncated[0],
                texts[truncated[0]][:80],
            )
        outs = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.text_batch_size):
                enc = self.text_tokenizer(
                    texts[i : i + self.text_batch_size],
                    padding="max_length",
                    truncation=True,
                    max_length=TEXT_MAX_TOKENS,
                    return_tensors="pt",
                )
                data = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
                outs.append(self.model.get_text_embedding(data).float().cpu().numpy())
        return np.concatenate(outs, axis=0) if outs else np.zeros((0, EMBED_DIM), np.float32)
