"""Write ``clap_<arch>_keys.json``: names, shapes and dtypes of the released LAION-CLAP checkpoints' ``state_dict``.

Built with laion_clap 1.1.7's own ``CLAP_Module`` (random weights; ``RobertaModel.from_pretrained("roberta-base")``
answered with a randomly initialised roberta-base of the published config, since the hub is offline), then laid
out as the released ``.pt`` files are: ``module.`` prefix (DDP training checkpoints) and the
``text_branch.embeddings.position_ids`` buffer, which laion_clap's own ``load_state_dict`` deletes before a strict
load (and fails with KeyError if absent, so the released files have it). Run from the repository root:
``python tests/embedders/golden/make_clap_layout.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import transformers

from bench.embedders.clap import ROBERTA_BASE, clap_module

OUT = Path(__file__).resolve().parent
#: architecture -> (amodel, fusion, released files with it)
ARCHS = {
    "htsat_tiny": ("HTSAT-tiny", False, ["630k-audioset-best.pt", "630k-best.pt"]),
    "htsat_tiny_fusion": ("HTSAT-tiny", True, ["630k-audioset-fusion-best.pt", "630k-fusion-best.pt"]),
    "htsat_base": (
        "HTSAT-base",
        False,
        ["music_audioset_epoch_15_esc_90.14.pt", "music_speech_audioset_epoch_15_esc_89.98.pt"],
    ),
}


def main() -> None:
    cfg = transformers.RobertaConfig(**ROBERTA_BASE)
    transformers.RobertaModel.from_pretrained = classmethod(lambda c, *a, **k: c(cfg))
    for cls in (transformers.BertTokenizer, transformers.RobertaTokenizer, transformers.BartTokenizer):
        cls.from_pretrained = classmethod(lambda c, *a, **k: None)  # laion_clap's import-time tokenizers
    clap_module()  # laion_clap's clap_module folder on sys.path, as its own __init__ does
    import laion_clap

    for arch, (amodel, fusion, files) in ARCHS.items():
        module = laion_clap.CLAP_Module(enable_fusion=fusion, device="cpu", amodel=amodel, tmodel="roberta")
        sd = {"module." + k: v for k, v in module.model.state_dict().items()}
        sd["module.text_branch.embeddings.position_ids"] = module.model.text_branch.embeddings.position_ids
        lines = [f"  {json.dumps(k)}: {json.dumps([list(v.shape), str(v.dtype).removeprefix('torch.')])}" for k, v in sd.items()]
        src = (
            f"laion_clap 1.1.7 CLAP_Module(enable_fusion={fusion}, amodel={amodel!r}, tmodel='roberta').model.state_dict() "
            "with roberta-base's config, 'module.' prefix and text_branch.embeddings.position_ids, as in the released "
            "checkpoints' 'state_dict'"
        )
        text = "{\n" + f'"source": {json.dumps(src)},\n"files": {json.dumps(files)},\n"keys": {{\n' + ",\n".join(lines) + "\n}\n}\n"
        json.loads(text)
        (OUT / f"clap_{arch}_keys.json").write_text(text)
        print(arch, len(sd))


if __name__ == "__main__":
    main()
