"""MusicCaps (Agostinelli et al. 2023): 5,521 ten-second YouTube music clips with expert captions.

Prompt id = ``ytid`` (e.g. "-0Gj8-vB1q4": note the leading dashes), kept raw; the 0-based row of
the source file is ``meta["row"]`` (fadtk's sample clips ``mg-N`` were generated from row N).
Splits: "all", "eval" (``is_audioset_eval``, 2,858 clips), "train" (the rest) and "balanced"
(``is_balanced_subset``, 1,000 clips). Texts: "caption" (the full caption), "refined" (the short
``openai_refine`` prompts of fadtk; 5 clips without one are dropped) or "aspects" (the aspect list
joined by commas). No audio is shipped: pass ``reference_dir`` (files ``<ytid>.wav`` by default,
see ``reference_pattern``) to pair prompts with your copy of the clips.

License: captions CC BY-SA 4.0 (Google LLC); fadtk's refined prompts: MIT (Microsoft).
"""

from __future__ import annotations

import ast
import logging

from bench.prompt_sets import read_table, require_file
from bench.prompts import Prompt, PromptSet, TableOptions, flat_options

log = logging.getLogger(__name__)

LICENSE = "CC BY-SA 4.0 (MusicCaps captions, Agostinelli et al. 2023, (c) Google LLC)"
REFINED_LICENSE = "refined prompts: MIT (fadtk, Microsoft; generated with an OpenAI model from MusicCaps captions)"
SPLITS = ("all", "eval", "train", "balanced")
TEXTS = ("caption", "refined", "aspects")
HOW_TO = (
    "The package ships bench/datasets/musiccaps/musiccaps-public.csv; otherwise download musiccaps-public.csv "
    "from https://www.kaggle.com/datasets/googleai/musiccaps and set prompts.<key>.path."
)


def _bool(v) -> bool:
    return str(v).strip().lower() in ("true", "1", "yes")


def _has_text(v) -> bool:
    """fadtk's file writes missing prompts as "" or as the string "None"."""
    return str(v or "").strip() not in ("", "None", "nan", "NaN")


def _aspects(v: str) -> list[str]:
    try:
        out = ast.literal_eval(v) if v else []
        return [str(a) for a in out] if isinstance(out, (list, tuple)) else [str(v)]
    except (ValueError, SyntaxError):
        return [a.strip() for a in str(v).strip("[]").split(",") if a.strip()]


@flat_options
def load(
    path: str,
    name: str = "musiccaps",
    split: str = "all",
    text: str = "caption",
    refined_path: str | None = None,
    opts: TableOptions = TableOptions(),
) -> PromptSet:
    """MusicCaps prompts.

    Args:
        path: musiccaps-public.csv (or fadtk's musiccaps-public-openai.csv, which has ``openai_refine``).
        split: "all" | "eval" | "train" | "balanced".
        text: "caption" | "refined" | "aspects".
        refined_path: CSV with ``ytid,openai_refine`` for ``text="refined"`` when ``path`` lacks the column.
        opts: :class:`bench.prompts.TableOptions` (flat keys ``limit``, ``offset``, ``sample_seed``: subset taken
            after the split filter; ``reference_dir``, ``reference_pattern``: pair prompts with local audio).
    """
    if split not in SPLITS:
        raise ValueError(f"musiccaps split must be one of {SPLITS}, got {split!r}")
    if text not in TEXTS:
        raise ValueError(f"musiccaps text must be one of {TEXTS}, got {text!r}")
    p = require_file(path, "MusicCaps captions", HOW_TO)
    rows = read_table(p)
    for i, r in enumerate(rows):
        r["row"] = i
    if rows and "ytid" not in rows[0]:
        raise ValueError(f"{p}: not a MusicCaps file (no ytid column; found {sorted(rows[0])})")
    if split == "eval":
        rows = [r for r in rows if _bool(r.get("is_audioset_eval"))]
    elif split == "train":
        rows = [r for r in rows if not _bool(r.get("is_audioset_eval"))]
    elif split == "balanced":
        rows = [r for r in rows if _bool(r.get("is_balanced_subset"))]
    lic = LICENSE
    if text == "refined":
        if rows and "openai_refine" not in rows[0]:
            rp = require_file(
                refined_path,
                "MusicCaps refined prompts",
                "Set refined_path to bench/datasets/musiccaps/musiccaps-refined-fadtk.csv (shipped in the package).",
            )
            refined = {str(r["ytid"]): r.get("openai_refine", "") for r in read_table(rp)}
            for r in rows:
                r["openai_refine"] = refined.get(str(r["ytid"]), "")
        dropped = [r["ytid"] for r in rows if not _has_text(r.get("openai_refine"))]
        if dropped:
            log.warning("musiccaps: %d clip(s) without a refined prompt dropped: %s", len(dropped), dropped[:5])
        rows = [r for r in rows if _has_text(r.get("openai_refine"))]
        lic = f"{LICENSE}; {REFINED_LICENSE}"
    prompts = []
    for r in opts.select(rows):
        aspects = _aspects(r.get("aspect_list", ""))
        body = {"caption": r.get("caption", ""), "refined": r.get("openai_refine", ""), "aspects": ", ".join(aspects)}[
            text
        ]
        meta = {
            "row": r["row"],
            "ytid": str(r["ytid"]),
            "start_s": r.get("start_s"),
            "end_s": r.get("end_s"),
            "caption": r.get("caption", ""),
            "aspects": aspects,
            "audioset_labels": [x for x in str(r.get("audioset_positive_labels", "")).split(",") if x],
            "author_id": r.get("author_id"),
            "is_balanced_subset": _bool(r.get("is_balanced_subset")),
            "is_audioset_eval": _bool(r.get("is_audioset_eval")),
        }
        prompts.append(Prompt(str(r["ytid"]), str(body).strip(), None, meta))
    return opts.prompt_set(name, prompts, lic, str(p))
