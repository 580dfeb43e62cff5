"""The gather stage: one audio file per model x prompt set x item, generated or collected.

Input: prompt sets, models, the run folder, the error log; output: :class:`Gathered` (item paths per
``(model, prompt set)`` and the number of files generated). :func:`embed_jobs` turns that, the
reference sets and the prompts' paired clips into the embed stage's input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import ErrorLog
from bench.paths import inside, safe_id
from bench.prompts import PromptSet
from bench.references import ReferenceSet
from bench.stages.common import Component, Owners

Keep = Callable[[str], bool] | None


@dataclass
class Gathered:
    """``audio[(model, prompt set)] = {item id: path}`` (good files only); ``n_generated`` new files."""

    audio: dict[tuple[str, str], dict[str, Path]] = field(default_factory=dict)
    n_generated: int = 0


def gather(
    prompt_sets: Mapping[str, PromptSet],
    models: Mapping[str, Component],
    run_dir: Path,
    errors: ErrorLog,
    progress: bool = True,
    keep: Keep = None,
) -> Gathered:
    """Every available model's audio for every prompt set, in ``run_dir/audio/<model>/<set>/``."""
    out = Gathered()
    for ps_key, ps in prompt_sets.items():
        for m in models.values():
            if m.obj is None:
                continue
            m.obj.name = m.key
            out_dir = inside(run_dir, "audio", safe_id(m.key), safe_id(ps_key))
            out.audio[(m.key, ps_key)] = m.obj.gather(
                ps.prompts, out_dir, errors, set_name=ps_key, progress=progress, keep=keep
            )
            out.n_generated += int(getattr(m.obj, "n_generated", 0))
    return out


def paired_items(ps: PromptSet, keep: Keep = None) -> dict[str, Path]:
    """``{prompt id: its reference clip}`` for prompts whose paired clip exists (this shard only)."""
    out = {}
    for p in ps.prompts:
        if p.reference and Path(p.reference).is_file() and (keep is None or keep(p.id)):
            out[p.id] = Path(p.reference)
    return out


def embed_jobs(
    audio: Mapping[tuple[str, str], Mapping[str, Path]],
    refs: Mapping[str, ReferenceSet],
    paired: Mapping[str, Mapping[str, Path]],
    keep: Keep = None,
) -> Owners:
    """Every file to embed with its owners: generated audio, reference clips (this shard), paired clips."""
    files: Owners = {}
    for (mk, pk), items in audio.items():
        for iid, p in items.items():
            files.setdefault(str(p), []).append((mk, pk, iid))
    for rk, ref in refs.items():
        for iid, p in ref.items.items():
            if keep is None or keep(iid):
                files.setdefault(str(p), []).append(("reference", rk, iid))
    for pk, items in paired.items():
        for iid, p in items.items():
            files.setdefault(str(p), []).append(("paired", pk, iid))
    return files
