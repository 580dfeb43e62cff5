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

from pathlib import Path

from bench.prompt_sets import attach_references, read_table, require_file, select
from bench.prompts import Prompt, PromptSet

LICENSE = "MIT (AudioCaps captions, Kim et al. 2019); the AudioCaps README restricts use to academic research"
HOW_TO = (
    "The package ships bench/datasets/audiocaps/audiocaps-test.csv; otherwise download test.csv from "
    "https://github.com/cdjkim/audiocaps/tree/master/dataset and set prompts.<key>.path."
)


def load(
    path: str,
    name: str = "audiocaps",
    captions: str = "one",
    limit: int | None = None,
    offset: int = 0,
    sample_seed: int | None = None,
    reference_dir: str | None = None,
    reference_pattern: str = "{youtube_id}.wav",
    license: str | None = None,
    source: str | None = None,
) -> PromptSet:
    """AudioCaps prompts; ``limit``/``offset``/``sample_seed`` select clips (all their captions come along)."""
    if captions not in ("one", "all"):
        raise ValueError(f"audiocaps captions must be 'one' or 'all', got {captions!r}")
    p = require_file(path, "AudioCaps captions", HOW_TO)
    rows = read_table(p)
    if rows and not {"audiocap_id", "youtube_id", "caption"} <= set(rows[0]):
        raise ValueError(f"{p}: needs audiocap_id,youtube_id,caption columns; found {sorted(rows[0])}")
    clips: dict[str, list[dict]] = {}
    for r in rows:
        clips.setdefault(str(r["youtube_id"]), []).append(r)
    prompts = []
    for yid in select(list(clips), limit, offset, sample_seed):
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
    attach_references(prompts, reference_dir, reference_pattern)
    return PromptSet(name, prompts, license or LICENSE, source or str(Path(p)))
