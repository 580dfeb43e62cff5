"""Every embedder backend built offline with randomly initialised weights of its real architecture.

Used where the published weights are absent (the GPU check, device tests, throughput benchmarks):
throughput and device placement do not depend on the weight values. musicnn reads its real weights
(from the musicnn wheel or ``$GENAUDIO_BENCH_MUSICNN_DIR``) because its TF-checkpoint reader is the
only way in. ``build(name, device, tmp_dir)`` returns an :class:`~bench.embedders.base.Embedder` or
raises ``ImportError`` / :class:`~bench.embedders.base.EmbedderUnavailable` (package or weights missing).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.embedders.base import Embedder

#: text tower of the random CLAP checkpoints: roberta-base with 1 layer (audio embedding never runs it)
CLAP_TEXT = {"num_hidden_layers": 1, "intermediate_size": 64, "max_position_embeddings": 80, "vocab_size": 300}

#: m-a-p/MERT-v1-95M config.json (architecture fields as published)
MERT_V1_95M_CONFIG: dict[str, Any] = {
    "architectures": ["MERTModel"],
    "model_type": "mert_model",
    "attention_relax": -1.0,
    "deepnorm": False,
    "feature_extractor_cqt": False,
    "feature_extractor_cqt_bins": 336,
    "sample_rate": 24000,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "conv_dim": [512] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_bias": False,
    "feat_extract_norm": "group",
    "feat_extract_activation": "gelu",
    "feat_proj_layer_norm": True,
    "do_stable_layer_norm": False,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "layer_norm_eps": 1e-5,
    "vocab_size": 32,
}


def vggish(device: str, tmp: Path, batch_size: int = 32) -> Embedder:
    from bench.embedders.vggish import VGGishEmbedder, VGGishNet

    torch.manual_seed(0)
    path = tmp / "vggish_random.pth"
    torch.save(VGGishNet().state_dict(), path)
    return VGGishEmbedder(checkpoint=str(path), device=device, batch_size=batch_size)


def pann(device: str, tmp: Path, batch_size: int = 32) -> Embedder:
    from bench.embedders.pann import Cnn14, PANNEmbedder

    torch.manual_seed(0)
    path = tmp / "cnn14_16k_random.pth"
    torch.save({"model": Cnn14(64).state_dict()}, path)
    return PANNEmbedder(checkpoint=str(path), device=device, batch_size=batch_size)


def clap(device: str, tmp: Path, batch_size: int = 32) -> Embedder:
    from bench.embedders.clap import ClapEmbedder, build_clap_model

    torch.manual_seed(0)
    model, _ = build_clap_model("HTSAT-tiny", False, CLAP_TEXT)
    sd = {"module." + k: v for k, v in model.state_dict().items()}  # laion_clap training-checkpoint layout
    sd["module.text_branch.embeddings.position_ids"] = torch.arange(CLAP_TEXT["max_position_embeddings"])[None]
    path = tmp / "clap_htsat_tiny_random.pt"  # not the published name: that one is checksum-verified
    torch.save({"state_dict": sd}, path)
    return ClapEmbedder(checkpoint=path, text_config=CLAP_TEXT, device=device, batch_size=batch_size)


def encodec(device: str, tmp: Path, batch_size: int = 32) -> Embedder:
    from bench.embedders.encodec import EncodecEmbedder, build_encodec_model

    torch.manual_seed(0)
    path = tmp / "encodec_24khz_random.th"
    torch.save(build_encodec_model("24khz").state_dict(), path)
    return EncodecEmbedder("24khz", checkpoint=path, device=device, batch_size=batch_size)


def mert(device: str, tmp: Path, batch_size: int = 32) -> Embedder:
    from bench.embedders.mert import MERTEmbedder, build_model

    torch.manual_seed(0)
    folder = tmp / "mert-v1-95m"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(MERT_V1_95M_CONFIG))
    torch.save(build_model(MERT_V1_95M_CONFIG).state_dict(), folder / "pytorch_model.bin")
    return MERTEmbedder("MERT-v1-95M", checkpoint=str(folder), device=device, batch_size=batch_size)


def openl3(device: str, tmp: Path, batch_size: int = 32) -> Embedder:
    from bench.embedders.openl3 import OpenL3Embedder, OpenL3Net

    torch.manual_seed(0)
    path = tmp / "openl3_mel256_music_random.pt"
    torch.save(OpenL3Net("mel256", 512).state_dict(), path)
    return OpenL3Embedder(checkpoint=str(path), device=device, batch_size=batch_size)


def passt(device: str, tmp: Path, batch_size: int = 32) -> Embedder:
    from bench.embedders.passt import PASST_S_ARCH, PaSSTEmbedder, PaSSTNet

    torch.manual_seed(0)
    path = tmp / "passt_s_random.pt"
    torch.save(PaSSTNet(**PASST_S_ARCH).state_dict(), path)
    return PaSSTEmbedder(checkpoint=str(path), device=device, batch_size=batch_size)


def aisfx(device: str, tmp: Path, batch_size: int = 32) -> Embedder:
    from bench.embedders.aisfx import AISFXEmbedder, EmbeddingNet

    torch.manual_seed(0)
    path = tmp / "aisfx_random.pth"
    sd = {"embedding_net." + k: v for k, v in EmbeddingNet().state_dict().items()}
    torch.save((sd, {"random": (0, 1)}), path)
    return AISFXEmbedder(checkpoint=str(path), device=device, batch_size=batch_size)


def musicnn(device: str, tmp: Path, batch_size: int = 32) -> Embedder:
    from bench.embedders.musicnn import MusicnnEmbedder

    return MusicnnEmbedder("MSD_musicnn", device=device, batch_size=batch_size)


def logmel(device: str, tmp: Path, batch_size: int = 32) -> Embedder:
    from bench.embedders.logmel import LogMelEmbedder

    return LogMelEmbedder(device=device, batch_size=batch_size)


BUILDERS: dict[str, Callable[..., Embedder]] = {
    "vggish": vggish,
    "pann": pann,
    "musicnn": musicnn,
    "aisfx": aisfx,
    "logmel": logmel,
    "clap": clap,
    "encodec": encodec,
    "mert": mert,
    "openl3": openl3,
    "passt": passt,
}


def build(name: str, device: str, tmp: str | Path, batch_size: int = 32) -> Embedder:
    """Embedder ``name`` (a key of :data:`BUILDERS`) on ``device``, weights written under ``tmp``."""
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    return BUILDERS[name](device, tmp, batch_size)
