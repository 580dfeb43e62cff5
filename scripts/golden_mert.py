"""Write the MERT golden files of tests/embedders/golden/ by running MERT's OWN modeling code.

MERT's code (``modeling_MERT.py`` + ``configuration_MERT.py`` from the m-a-p/MERT-v1-95M Hugging Face
repository, which ``transformers`` runs with ``trust_remote_code``) is not part of this project and is
not vendored: point ``--mert-code`` at a folder holding those two files (a Hugging Face snapshot of
m-a-p/MERT-v1-95M, or a copy such as github.com/cannam/mert-vamp-plugin at commit 6ce100f). They are
copied into a temporary package only to import them.

Outputs:
- ``mert_v1_95m_layout.json``: parameter names/shapes of ``MERTModel(MERTConfig())`` (the released
  MERT-v1-95M layout; legacy ``weight_g``/``weight_v`` weight-norm names) and the config used;
- ``mert_official_tiny.npz``: two tiny random MERT models (``deepnorm`` off / on), their state dicts,
  configs, an input clip and the official model's ``hidden_states`` for it.

Usage: ``python scripts/golden_mert.py --mert-code DIR [--out tests/embedders/golden]``
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

LEGACY_WN = {"parametrizations.weight.original0": "weight_g", "parametrizations.weight.original1": "weight_v"}
#: MERTConfig fields recorded with the layout (architecture-relevant)
CONFIG_KEYS = (
    "hidden_size num_hidden_layers num_attention_heads intermediate_size hidden_act layer_norm_eps "
    "feat_extract_norm feat_extract_activation conv_dim conv_stride conv_kernel conv_bias num_conv_pos_embeddings "
    "num_conv_pos_embedding_groups do_stable_layer_norm feat_proj_layer_norm mask_time_prob mask_feature_prob "
    "feature_extractor_cqt feature_extractor_cqt_bins deepnorm attention_relax sample_rate"
).split()
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 48,
    "conv_dim": [16, 16, 16],
    "conv_kernel": [10, 3, 3],
    "conv_stride": [5, 2, 2],
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "sample_rate": 24000,
}
#: input clip: first 0.5 s of fadtk's sample mg-1634.opus (MIT), resampled to 24 kHz
CLIP = ("mg-1634", 0.5)


def import_mert(code_dir: Path, tmp: Path):
    pkg = tmp / "mert_official"
    pkg.mkdir()
    for name in ("modeling_MERT.py", "configuration_MERT.py"):
        shutil.copy(code_dir / name, pkg / name)
    (pkg / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp))
    conf = importlib.import_module("mert_official.configuration_MERT")
    model = importlib.import_module("mert_official.modeling_MERT")
    return conf.MERTConfig, model.MERTModel


def legacy_names(state) -> dict:
    out = {}
    for k, v in state.items():
        for new, old in LEGACY_WN.items():
            k = k.replace(new, old)
        out[k] = v
    return out


def build(mert_config, mert_model, **kwargs):
    cfg = mert_config(**kwargs)
    cfg.conv_pos_batch_norm = False  # field of newer HubertConfig the 2023 MERTConfig lacks (fadtk does the same)
    model = mert_model(cfg).eval()
    for layer in model.encoder.layers:  # deepnorm layers build HubertAttention without config (old transformers API)
        if getattr(layer.attention, "config", True) is None:
            layer.attention.config = cfg
    return cfg, model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mert-code", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/embedders/golden")
    args = ap.parse_args()
    import fadtk
    import soundfile as sf
    import torch
    import transformers

    from bench.audio import resample

    with tempfile.TemporaryDirectory() as tmp:
        mert_config, mert_model = import_mert(args.mert_code, Path(tmp))

        cfg, model = build(mert_config, mert_model, sample_rate=24000)
        layout = {k: list(v.shape) for k, v in legacy_names(model.state_dict()).items()}
        n_params = sum(math.prod(s) for s in layout.values())
        record = {
            "_note": (
                "MERT-v1-95M parameter layout from MERT's own modeling code, MERTModel(MERTConfig()), run by "
                "scripts/golden_mert.py (transformers " + transformers.__version__ + "). Weight-norm names are the "
                "legacy weight_g/weight_v of checkpoints saved before transformers used torch parametrizations. "
                "Evidence that the released pytorch_model.bin has exactly this layout: cannam/mert-vamp-plugin "
                "python/dump-weights.py loads it into MERTModel(MERTConfig()) with a strict load_state_dict. "
                "'config' = MERTConfig defaults + sample_rate 24000 (model card: 24 kHz, 75 Hz); the released "
                "config.json was not available offline and its values are not checked."
            ),
            "n_parameters": n_params,
            "config": {k: cfg.to_dict()[k] for k in CONFIG_KEYS},
            "state_dict": layout,
        }
        (args.out / "mert_v1_95m_layout.json").write_text(json.dumps(record, indent=1) + "\n")

        wav, sr = sf.read(str(Path(fadtk.__file__).parent / "test/samples" / f"{CLIP[0]}.opus"), dtype="float32")
        wav = resample(wav[: int(CLIP[1] * sr)], sr, 24000)
        fe = transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=24000, do_normalize=True)
        inputs = fe(wav, sampling_rate=24000, return_tensors="pt")
        arrays: dict[str, np.ndarray] = {"wav": wav.astype(np.float32)}
        for tag, extra in (("plain", {}), ("deepnorm", {"deepnorm": True})):
            torch.manual_seed(0)
            tcfg, tiny = build(mert_config, mert_model, **TINY, **extra)
            with torch.no_grad():
                for p in tiny.parameters():
                    p.add_(0.02 * torch.randn_like(p))  # LayerNorm gains/biases away from 1/0
                hidden = tiny(**inputs, output_hidden_states=True).hidden_states
            config = {k: v for k, v in tcfg.to_dict().items() if k != "conv_pos_batch_norm"}  # as a 2023 config.json
            arrays[f"{tag}__config"] = np.array(json.dumps(config))
            arrays[f"{tag}__hidden"] = torch.stack(hidden)[:, 0].numpy()
            for k, v in legacy_names(tiny.state_dict()).items():
                arrays[f"{tag}__state__{k}"] = v.numpy()
        np.savez_compressed(args.out / "mert_official_tiny.npz", **arrays)
    print(f"wrote {args.out}/mert_v1_95m_layout.json ({len(layout)} tensors, {n_params} parameters)")
    print(f"wrote {args.out}/mert_official_tiny.npz")


if __name__ == "__main__":
    main()
