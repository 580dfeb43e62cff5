"""AudioCaps (Kim et al. 2019) test split: 975 AudioSet clips x 5 captions.

``captions="one"``: one prompt per clip, id = the ``audiocap_id`` of its first caption (captions
of a clip are ordered by ``audiocap_id``); ``captions="all"``: five prompts per clip, id =
``<youtube_id>_<k>`` with k = 1..5 in that order. Clips keep the order of their first row in the
file. ``meta`` holds ``youtube_id``, ``start_time``, ``audiocap_id`` and all ``captions`` of the clip.
No audio is shipped: ``reference_dir`` + ``reference_pattern`` (default ``{youtube_id}.wav``) pair
prompts with your copy of the clips.

License: the caption file is MIT (AudioCaps authors, 2019); the AudioCaps README asks for
academic use only. Audio belongs to its YouTube uploaders.
"""

from __future__ import annotations

from bench.prompt_sets import read_caption_file
from bench.prompts import Prompt, PromptSet, TableOptions, flat_options

LICENSE = "MIT (AudioCaps captions, Kim et al. 2019); the AudioCaps README restricts use to academic research"
HOW_TO = (
    "The package ships bench/datasets/audiocaps/audiocaps-test.csv; otherwise download test.csv from "
    "https://github.com/cdjkim/audiocaps/tree/master/dataset and set prompts.<key>.path."
)


@flat_options
def load(
    path: str,
    name: str = "audiocaps",
    captions: str = "one",
    opts: TableOptions = TableOptions(reference_pattern="{youtube_id}.wav"),
) -> PromptSet:
    """AudioCaps prompts; ``limit``/``offset``/``sample_seed`` select clips (all their captions come along)."""
    columns = ("audiocap_id", "youtube_id", "caption")
    p, rows = read_caption_file(path, "AudioCaps", HOW_TO, captions, columns, ",".join(columns))
    clips: dict[str, list[dict]] = {}
    for r in rows:
        clips.setdefault(str(r["youtube_id"]), []).append(r)
    prompts = []
    for yid in opts.select(list(clips)):
        caps = sorted(clips[yid], key=lambda r: int(r["audiocap_id"]))
        texts = [str(r["caption"]).strip() for r in caps]
        chosen = caps[:1] if captions == "one" else caps
        for k, r in enumerate(chosen, 1):
            pid = str(r["audiocap_id"]) if captions == "one" else f"{yid}_{k}"
            meta = {
                "youtube_id": yid,
                "start_time": r.get("start_time"),
                "audiocap_id": str(r["audiocap_id"]),
                "caption_index": k,
                "captions": texts,
            }
            prompts.append(Prompt(pid, str(r["caption"]).strip(), None, meta))
    return opts.prompt_set(name, prompts, LICENSE, str(p))
