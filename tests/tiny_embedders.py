"""Random checkpoints of the official embedder architectures, saved in the released on-disk layout.

Each builder writes a checkpoint (file or folder) that the backend loads through its ordinary ``checkpoint``
argument, as it would the released weights: random weights of the authors' own model code (torchvggish,
frechet-audio-distance / panns_inference CNN14, laion_clap's ``create_model``, encodec, audiobox_aesthetics,
transformers' HuBERT for MERT, torchopenl3's numpy weight format), in the released key layout; a tiny config where the backend reads one (MERT
``config.json``, PaSST's ``arch``), full size where the layout is fixed. Used through the session fixtures
``tiny_embedder_checkpoint`` / ``tiny_embedder_overrides`` of ``tests/conftest.py`` by the embedder contract
(``tests/contract``) and by the per-backend tests, which build their reference models with the helpers here.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest


# -- VGGish (torchvggish 0.2) ------------------------------------------------------------------------
def torchvggish():
    return pytest.importorskip("torchvggish", reason="torchvggish==0.2 not installed (requirements.txt)")


def randomise_vgg(model, seed: int):
    """Random weights scaled so activations stay O(1) through all 9 layers (default init shrinks them)."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model.eval()


def vggish_reference(checkpoint: Path | None = None, seed: int = 0):
    """torchvggish's ``VGG`` (final ReLU kept): random (``seed``), or the weights of ``checkpoint``."""
    import torch

    ref = torchvggish().torchvggish._vgg(postprocess=False)
    if checkpoint is None:
        return randomise_vgg(ref, seed)
    ref.load_state_dict(torch.load(checkpoint, weights_only=True))
    return ref.eval()


def vggish(folder: Path) -> Path:
    """torchvggish ``VGG.state_dict()``, as the released ``vggish-10086976.pth`` (loaded strictly by torchvggish)."""
    import torch

    path = folder / "vggish_random.pth"
    torch.save(vggish_reference(seed=0).state_dict(), path)
    return path


def vggish_pca_params(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"pca_eigen_vectors": rng.standard_normal((128, 128)) * 0.3, "pca_means": rng.standard_normal(128) * 0.05}


def vggish_pca(folder: Path) -> Path:
    """PCA parameters in the released ``vggish_pca_params-970ea276.pth`` layout (numpy arrays, Google's names)."""
    import torch

    path = folder / "vggish_pca_random.pth"
    torch.save(vggish_pca_params(0), path)
    return path


# -- PANN CNN14 (frechet-audio-distance 0.3.4 / panns_inference 0.1.1) -----------------------------------
def _private_import(alias: str, dist: str, module: str):
    """``<dist>/<module>.py`` without running the package ``__init__`` (which downloads at import), loaded
    under a private alias so the real package is untouched."""
    spec = importlib.util.find_spec(dist)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{dist} not installed (requirements.txt)")
    if alias not in sys.modules:
        pkg = types.ModuleType(alias)
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules[alias] = pkg
    return importlib.import_module(f"{alias}.{module}")


def fad_pann_module():
    """``frechet_audio_distance/models/pann.py`` (its package ``__init__`` imports laion_clap, needs network)."""
    return _private_import("_fad_ref", "frechet_audio_distance", "models.pann")


def panns_inference_models():
    """``panns_inference/models.py`` (its ``config`` downloads the label CSV into ``~/panns_data`` at import)."""
    return _private_import("_panns_ref", "panns_inference", "models")


def randomise_bn(model, seed: int) -> None:
    """Non-trivial BatchNorm statistics and affine parameters."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)


def cnn14_16k_reference(seed: int = 0):
    """frechet-audio-distance's ``Cnn14_16k`` (16 kHz, audioldm_eval's model), random weights."""
    import torch

    torch.manual_seed(seed)
    ref = fad_pann_module().Cnn14_16k(
        sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000, classes_num=527
    )
    randomise_bn(ref, seed)
    return ref.eval()


def cnn14_32k_reference(seed: int = 3):
    """panns_inference's ``Cnn14`` as its ``AudioTagging`` builds it (32 kHz, fmax 14000), random weights."""
    import torch

    torch.manual_seed(seed)
    ref = panns_inference_models().Cnn14(
        sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=14000, classes_num=527
    )
    randomise_bn(ref, seed)
    return ref.eval()


def load_reference(ref, checkpoint: Path, key: str | None = None):
    """``ref`` with the weights of ``checkpoint`` (``key``: the dict entry holding the state dict)."""
    import torch

    state = torch.load(checkpoint, weights_only=True)
    ref.load_state_dict(state[key] if key else state)
    return ref.eval()


def pann_16k(folder: Path) -> Path:
    """``{"iteration", "model": state_dict}``, the layout of the released ``Cnn14_16k_mAP=0.438.pth``."""
    import torch

    path = folder / "cnn14_16k_random.pth"
    torch.save({"iteration": 0, "model": cnn14_16k_reference(0).state_dict()}, path)
    return path


def pann_32k(folder: Path) -> Path:
    """The layout of the released ``Cnn14_mAP=0.431.pth`` (panns_inference's AudioTagging reads ``["model"]``)."""
    import torch

    path = folder / "cnn14_32k_random.pth"
    torch.save({"iteration": 660000, "model": cnn14_32k_reference(3).state_dict()}, path)
    return path


# -- LAION-CLAP (laion_clap 1.1.x) ------------------------------------------------------------------------
#: a tiny RoBERTa text tower (hidden 768: laion_clap hard-codes ``Linear(768, 512)``)
CLAP_TINY_TEXT = {"num_hidden_layers": 1, "intermediate_size": 64, "max_position_embeddings": 80}
ROBERTA_MERGES = ["Ġ t", "Ġ a", "h e", "Ġt he", "i n", "Ġa n", "e r", "o n", "Ġ s", "o u"]


def roberta_vocab() -> dict[str, int]:
    """Byte-level BPE vocab: specials + 256 byte symbols + :data:`ROBERTA_MERGES` + ``<mask>``."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # transformers 4 and 5

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for ch in bytes_to_unicode().values():
        vocab.setdefault(ch, len(vocab))
    for m in ROBERTA_MERGES:
        vocab.setdefault(m.replace(" ", ""), len(vocab))
    vocab["<mask>"] = len(vocab)
    return vocab


def roberta_tokenizer(folder: Path) -> Path:
    """A tiny roberta-base-style tokenizer folder (``vocab.json`` + ``merges.txt``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(roberta_vocab()), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(ROBERTA_MERGES) + "\n", encoding="utf-8")
    return folder


def clap_text_config() -> dict[str, Any]:
    """``ClapEmbedder(text_config=...)`` of the tiny checkpoints: :data:`CLAP_TINY_TEXT` + the tiny vocab size."""
    return {**CLAP_TINY_TEXT, "vocab_size": len(roberta_vocab())}


@contextmanager
def hf_stand_ins(tok_dir: Path, text_cfg: dict):
    """``from_pretrained`` of the HF tokenizers / RobertaModel return tiny real local objects, so laion_clap
    (which downloads them at import and in ``CLAP.__init__``) works offline."""
    import transformers

    from bench.embedders.clap import ROBERTA_BASE

    # positional: transformers 5 ignores the keyword names vocab_file/merges_file (a 5-token placeholder)
    tok = transformers.RobertaTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"))
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    for cls in (transformers.BertTokenizer, transformers.RobertaTokenizer, transformers.BartTokenizer):
        mp.setattr(cls, "from_pretrained", classmethod(lambda c, *a, **k: tok))
    cfg = transformers.RobertaConfig(**{**ROBERTA_BASE, **text_cfg})
    mp.setattr(transformers.RobertaModel, "from_pretrained", classmethod(lambda c, *a, **k: c(cfg)))
    try:
        yield
    finally:
        mp.undo()


def randomize_clap_bn(model):
    """Non-trivial BatchNorm statistics (log-mel scale), so HTSAT's bn0 matters in the comparisons."""
    import torch

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-20, -10)
                m.running_var.uniform_(50, 150)
    return model


def clap_reference_module(tok_dir: Path, fusion: bool, seed: int, amodel: str = "HTSAT-tiny"):
    """laion_clap's own ``CLAP_Module`` (HTSAT-tiny or -base, tiny RoBERTa), randomly initialised."""
    import torch

    if importlib.util.find_spec("laion_clap") is None:  # importing it needs the stand-ins below
        pytest.skip("laion_clap not installed (requirements.txt)")
    torch.manual_seed(seed)
    with hf_stand_ins(tok_dir, clap_text_config()):
        import laion_clap

        module = laion_clap.CLAP_Module(enable_fusion=fusion, device="cpu", amodel=amodel, tmodel="roberta")
    randomize_clap_bn(module.model)
    return module


def save_clap_checkpoint(model, path: Path) -> Path:
    """Save a CLAP like laion_clap's training checkpoints: ``module.`` keys, position_ids, a numpy epoch."""
    import torch

    sd = {"module." + k: v for k, v in model.state_dict().items()}
    n_pos = model.text_branch.config.max_position_embeddings
    sd["module.text_branch.embeddings.position_ids"] = torch.arange(n_pos)[None]
    torch.save({"epoch": np.int64(15), "name": "tiny", "state_dict": sd}, path)
    return path


def _clap(amodel: str, fusion: bool, seed: int) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        import torch

        from bench.embedders.clap import build_clap_model

        torch.manual_seed(seed)  # laion_clap's create_model (without its package __init__, slow and online)
        model, _ = build_clap_model(amodel, fusion, clap_text_config())
        randomize_clap_bn(model)
        return save_clap_checkpoint(model, folder / f"clap_{amodel.lower()}{'_fusion' * fusion}.pt")

    build.__doc__ = f"laion_clap ``CLAP`` ({amodel}, fusion={fusion}, tiny text tower), random, saved as released."
    return build


# -- EnCodec (encodec 0.1.1) ----------------------------------------------------------------------------
def encodec_model(variant: str, seed: int):
    """encodec's own ``EncodecModel`` of ``variant`` ("24khz" / "48khz"), random weights."""
    import torch

    from bench.embedders.encodec import build_encodec_model

    pytest.importorskip("encodec")
    torch.manual_seed(seed)
    return build_encodec_model(variant)


def _encodec(variant: str, seed: int) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        import torch

        path = folder / f"my_encodec_{variant}.th"  # not the official name (that one is digest-checked)
        torch.save(encodec_model(variant, seed).state_dict(), path)
        return path

    build.__doc__ = f"``EncodecModel.state_dict()`` of a random {variant} model (the released ``.th`` layout)."
    return build


# -- MERT-v1 -------------------------------------------------------------------------------------------
#: a MERT-style config.json (field names as in m-a-p/MERT-v1-95M), tiny sizes
MERT_TINY_CONFIG: dict[str, Any] = {
    "architectures": ["MERTModel"],
    "auto_map": {"AutoConfig": "configuration_MERT.MERTConfig", "AutoModel": "modeling_MERT.MERTModel"},
    "model_type": "mert_model",
    "attention_relax": -1.0,
    "deepnorm": False,
    "feature_extractor_cqt": False,
    "feature_extractor_cqt_bins": 336,
    "sample_rate": 24000,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 48,
    "conv_dim": [16, 16, 16],
    "conv_kernel": [10, 3, 3],
    "conv_stride": [5, 2, 2],
    "conv_bias": False,
    "feat_extract_norm": "group",
    "feat_proj_layer_norm": True,
    "do_stable_layer_norm": False,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "layer_norm_eps": 1e-5,
    "mask_time_prob": 0.05,
    "hidden_act": "gelu",
}


def mert_reference(cfg: dict, seed: int = 0):
    """``HubertModel`` whose config is written out field by field from the MERT config (not converted)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    fields = (
        "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act", "layer_norm_eps",
        "conv_dim", "conv_kernel", "conv_stride", "conv_bias", "feat_extract_norm", "feat_proj_layer_norm",
        "do_stable_layer_norm", "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "mask_time_prob",
    )  # fmt: skip
    hcfg = transformers.HubertConfig(**{k: cfg[k] for k in fields}, conv_pos_batch_norm=False)
    return transformers.HubertModel(hcfg).eval()


def mert_format(state: dict) -> dict:
    """HubertModel state dict -> MERT's saved layout (transformers 4.25: legacy weight-norm names)."""
    out = {}
    for k, v in state.items():
        k = k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        )
        out[k] = v.clone()
    return out


def write_mert_checkpoint(folder: Path, cfg: dict, state: dict) -> Path:
    """A MERT snapshot folder: ``config.json`` + ``pytorch_model.bin`` in MERT's layout."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg))
    torch.save(mert_format(state), folder / "pytorch_model.bin")
    return folder


def _mert(n_layers: int) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        cfg = {**MERT_TINY_CONFIG, "num_hidden_layers": n_layers}
        return write_mert_checkpoint(folder / "mert", cfg, mert_reference(cfg).state_dict())

    build.__doc__ = f"A tiny MERT snapshot folder with {n_layers} layers (the shipped configs' layer index)."
    return build


# -- OpenL3 (torchopenl3's numpy weights) ----------------------------------------------------------------
def torchopenl3_reference(input_repr: str = "mel256", embedding_size: int = 512, slaney: bool = False, seed: int = 0):
    """torchopenl3's own ``PytorchOpenl3`` (music content) with random weights and random BatchNorm statistics.

    ``slaney=True`` swaps its mel matrix for ``librosa.filters.mel(..., norm="slaney")``: torchopenl3 calls
    ``librosa.filters.mel(norm=1)``, which meant area ("slaney") normalisation in the librosa 0.6 that
    kapre 0.1.4 / openl3 0.3 used, but means L1 normalisation since librosa 0.8 (what it computes here).
    """
    import torch
    from torchopenl3.models import PytorchOpenl3

    torch.manual_seed(seed)
    m = PytorchOpenl3("music", input_repr, embedding_size).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.1, 0.1)
        m.batch_normalization_1.running_mean.fill_(-40.0)  # dB-scale input
        m.batch_normalization_1.running_var.fill_(400.0)
        if slaney:
            import librosa

            sr, n_mels = 48000, m.speclayer.mel_basis.shape[0]
            basis = librosa.filters.mel(sr=sr, n_fft=2048, n_mels=n_mels, fmin=0, fmax=sr // 2, htk=True, norm="slaney")
            m.speclayer.mel_basis.copy_(torch.from_numpy(basis))
    return m


def openl3_layer_dict(seed: int = 0, keras_layout: bool = False) -> dict:
    """Random weights in torchopenl3's numpy format ({layer: {weights, bias} | {scale, bias, mean, var}})."""
    import torch

    from bench.embedders.openl3 import OpenL3Net

    rng = np.random.default_rng(seed)
    layers: dict = {}
    for name, mod in OpenL3Net().named_children():
        if isinstance(mod, torch.nn.Conv2d):
            w = (rng.standard_normal(tuple(mod.weight.shape)) * np.sqrt(2.0 / (9 * mod.in_channels))).astype(np.float32)
            layers[name] = {
                "weights": w.transpose(2, 3, 1, 0) if keras_layout else w,
                "bias": (0.01 * rng.standard_normal(mod.out_channels)).astype(np.float32),
            }
        else:
            c = mod.num_features
            layers[name] = {
                "scale": rng.uniform(0.5, 1.5, c).astype(np.float32),
                "bias": (0.1 * rng.standard_normal(c)).astype(np.float32),
                "mean": (0.1 * rng.standard_normal(c)).astype(np.float32),
                "var": rng.uniform(0.5, 2.0, c).astype(np.float32),
            }
    layers["batch_normalization_1"]["mean"][:] = -40.0  # dB-scale input
    layers["batch_normalization_1"]["var"][:] = 400.0
    return layers


def save_openl3_layers(layers: dict, path: Path) -> Path:
    """What torchopenl3's ``np.load(allow_pickle=True).item()`` reads."""
    with open(path, "wb") as fh:
        np.save(fh, np.array(layers, dtype=object), allow_pickle=True)
    return path


def openl3(folder: Path) -> Path:
    """mel256 / music / 512 weights as ``openl3_mel256_music_layer_weights.npz`` (turian/openl3_numpy_weights)."""
    return save_openl3_layers(openl3_layer_dict(0), folder / "openl3_mel256_music_layer_weights.npz")


# -- PaSST ---------------------------------------------------------------------------------------------
#: PaSST-S with a tiny transformer (``PaSSTEmbedder(arch=...)``); patching and head as released
PASST_TINY = {"embed_dim": 32, "depth": 2, "num_heads": 2}


def passt(folder: Path) -> Path:
    """``PaSSTNet.state_dict()`` (the released ``passt-s-*.pt`` key names) of a tiny random PaSST-S."""
    import torch

    from bench.embedders.passt import PASST_S_ARCH, PaSSTNet

    torch.manual_seed(0)
    path = folder / "passt-tiny.pt"
    torch.save(PaSSTNet(**{**PASST_S_ARCH, **PASST_TINY}).state_dict(), path)
    return path


# -- Audiobox Aesthetics (audiobox-aesthetics 0.0.4) ---------------------------------------------------------
AUDIOBOX_MODEL_CFG = {
    "proj_num_layer": 1, "proj_ln": False, "proj_act_fn": "gelu", "proj_dropout": 0, "nth_layer": 13,
    "use_weighted_layer_sum": True, "precision": "32", "normalize_embed": True, "output_dim": 1,
}  # fmt: skip


def audiobox_aesthetics(folder: Path) -> Path:
    """The released ``checkpoint.pt`` layout: ``state_dict`` (``model.`` prefixes), ``model_cfg``,
    ``target_transform``, of the package's ``AesMultiOutput`` (WavLM encoder, full size: fixed by the package)."""
    import torch

    from bench.embedders.audiobox_aesthetics import AXES

    aes = pytest.importorskip("audiobox_aesthetics.model.aes", reason="pip install --no-deps audiobox-aesthetics==0.0.4")
    torch.manual_seed(0)
    tt = {a: {"mean": 5.0 + i, "std": 1.5 + 0.1 * i} for i, a in enumerate(AXES)}
    model = aes.AesMultiOutput(**AUDIOBOX_MODEL_CFG, target_transform=tt)
    with torch.no_grad():
        for p in model.layer_weights.values():
            p.copy_(torch.randn_like(p))
    path = folder / "checkpoint.pt"
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "model_cfg": AUDIOBOX_MODEL_CFG, "target_transform": tt}, path)
    return path


#: checkpoint kind -> builder writing it under the given (empty) folder and returning its path
BUILDERS: dict[str, Callable[[Path], Path]] = {
    "audiobox_aesthetics": audiobox_aesthetics,
    "clap_htsat_tiny": _clap("HTSAT-tiny", False, 0),
    "clap_htsat_tiny_fusion": _clap("HTSAT-tiny", True, 1),
    "clap_htsat_base": _clap("HTSAT-base", False, 2),
    "encodec_24khz": _encodec("24khz", 0),
    "encodec_48khz": _encodec("48khz", 5),
    "mert_12": _mert(12),
    "mert_24": _mert(24),
    "openl3": openl3,
    "pann_16k": pann_16k,
    "pann_32k": pann_32k,
    "passt": passt,
    "roberta_tokenizer": roberta_tokenizer,
    "vggish": vggish,
    "vggish_pca": vggish_pca,
}


class Built(str):
    """A constructor argument that is the path of the checkpoint kind named by this string."""


def _clap_args(kind: str) -> dict[str, Any]:
    return {"checkpoint": Built(kind), "tokenizer": Built("roberta_tokenizer"), "text_config": clap_text_config()}


#: embedder config key -> constructor overrides that build it here (weights from :data:`BUILDERS`)
EMBEDDERS: dict[str, dict[str, Any]] = {
    "audiobox_aesthetics": {"checkpoint": Built("audiobox_aesthetics")},
    "clap": _clap_args("clap_htsat_tiny"),
    "clap_fusion": _clap_args("clap_htsat_tiny_fusion"),
    "clap_music": _clap_args("clap_htsat_base"),
    "clap_music_speech": _clap_args("clap_htsat_base"),
    "encodec": {"checkpoint": Built("encodec_24khz")},
    "encodec_48k": {"checkpoint": Built("encodec_48khz")},
    "mert": {"checkpoint": Built("mert_12")},
    "mert_330m": {"checkpoint": Built("mert_24")},
    "openl3": {"checkpoint": Built("openl3")},
    "pann": {"checkpoint": Built("pann_16k")},
    "pann_32k": {"checkpoint": Built("pann_32k")},
    "passt": {"checkpoint": Built("passt"), "arch": PASST_TINY},
    "vggish": {"checkpoint": Built("vggish")},
    "vggish_pca": {"checkpoint": Built("vggish"), "pca_checkpoint": Built("vggish_pca")},
    "vggish_tf": {"checkpoint": Built("vggish")},
}


def overrides(key: str, checkpoint: Callable[[str], Path]) -> dict[str, Any]:
    """The constructor overrides of embedder ``key`` with every :class:`Built` resolved by ``checkpoint(kind)``
    (``{}`` for backends that need no downloaded weights)."""
    spec = EMBEDDERS.get(key, {})
    return {k: str(checkpoint(v)) if isinstance(v, Built) else v for k, v in spec.items()}
