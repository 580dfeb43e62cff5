"""Clotho (Drossos et al. 2020) evaluation split: 1,045 Freesound clips x 5 captions.

``captions="one"``: one prompt per clip, id = ``file_name`` (e.g. "Santa Motor.wav": spaces, commas
and non-ASCII characters occur), text = ``caption_<caption_index>``; ``captions="all"``: five
prompts per clip, id = ``<file_name>_caption_<k>``. ``reference_dir`` pairs prompts with the
evaluation audio (default pattern ``{file_name}``: the files are named exactly so).

The caption file is *not* shipped with genaudio-bench: Clotho is licensed for non-commercial use
with attribution, and this repository's shipped data stays usable commercially. Download
``clotho_captions_evaluation.csv`` from Zenodo (https://zenodo.org/records/4783391, Clotho v2.1, or
https://zenodo.org/records/3490684, v1) and set ``prompts.clotho.path`` or ``CLOTHO_CAPTIONS``.
"""

from __future__ import annotations

from bench.prompt_sets import read_caption_file
from bench.prompts import Prompt, PromptSet, TableOptions, flat_options

LICENSE = "Clotho captions: non-commercial use with attribution (Drossos, Lipping & Virtanen, ICASSP 2020)"
HOW_TO = (
    "Download clotho_captions_evaluation.csv from https://zenodo.org/records/4783391 (not shipped: "
    "non-commercial license) and set prompts.clotho.path=/path/to/it or export CLOTHO_CAPTIONS=/path/to/it."
)


@flat_options
def load(
    path: str | None,
    name: str = "clotho",
    captions: str = "one",
    caption_index: int = 1,
    opts: TableOptions = TableOptions(reference_pattern="{file_name}"),
) -> PromptSet:
    """Clotho prompts; ``limit``/``offset``/``sample_seed`` select clips."""
    cols = [f"caption_{k}" for k in range(1, 6)]
    p, rows = read_caption_file(path, "Clotho", HOW_TO, captions, ["file_name", *cols], "file_name,caption_1..caption_5")
    if not 1 <= int(caption_index) <= 5:
        raise ValueError(f"caption_index must be 1..5, got {caption_index}")
    prompts = []
    for r in opts.select(rows):
        fname = str(r["file_name"])
        texts = [str(r[c]).strip() for c in cols]
        ks = [int(caption_index)] if captions == "one" else range(1, 6)
        for k in ks:
            pid = fname if captions == "one" else f"{fname}_caption_{k}"
            meta = {"file_name": fname, "caption_index": k, "captions": texts}
            prompts.append(Prompt(pid, texts[k - 1], None, meta))
    return opts.prompt_set(name, prompts, LICENSE, str(p))
