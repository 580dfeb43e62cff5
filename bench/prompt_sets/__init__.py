"""Loaders for public caption sets (MusicCaps, AudioCaps, Clotho) and user tables -> :class:`bench.prompts.PromptSet`.

Shared pieces: :func:`read_table` (CSV / JSONL), :func:`select` (deterministic subsets) and
:func:`attach_references` (pair each prompt with ``<reference_dir>/<pattern>`` when that file exists).
Prompt ids stay raw here; they only touch the filesystem through :func:`bench.paths.safe_id`.
"""

from __future__ import annotations

import csv
import glob
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.paths import safe_id
from bench.prompts import Prompt, PromptSet, read_jsonl

log = logging.getLogger(__name__)


def require_file(path: str | Path | None, what: str, how_to: str) -> Path:
    """``path`` as an existing file, else :class:`FileNotFoundError` with ``how_to``."""
    if not path:
        raise FileNotFoundError(f"{what}: no path given. {how_to}")
    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{what}: {p} does not exist. {how_to}")
    return p


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV (``.csv``/``.tsv``) or JSON-lines (``.jsonl``/``.json``) file, in file order."""
    p = Path(path)
    if p.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return read_jsonl(p)
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f, delimiter="\t" if p.suffix.lower() == ".tsv" else ","))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{p}: not a readable UTF-8 CSV ({exc}); save it as UTF-8 CSV with id,text columns") from None


def select(
    items: Sequence[Any], limit: int | None = None, offset: int = 0, sample_seed: int | None = None
) -> list[Any]:
    """A deterministic subset, in the original order.

    Without ``sample_seed``: ``items[offset : offset + limit]``. With it: the items at positions
    ``perm[offset : offset + limit]`` of a seeded permutation (numpy PCG64), so disjoint
    ``offset`` windows give disjoint random subsets.
    """
    items = list(items)
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    end = None if limit is None else offset + int(limit)
    if sample_seed is None:
        return items[offset:end]
    perm = np.random.default_rng(int(sample_seed)).permutation(len(items))
    return [items[i] for i in sorted(perm[offset:end])]


def _lexically_inside(root: Path, path: Path) -> bool:
    """``path`` is below ``root`` after normalising ``..`` (symlinked files inside ``root`` are fine)."""
    root_n, path_n = Path(os.path.normpath(root.absolute())), Path(os.path.normpath(path.absolute()))
    return root_n in path_n.parents


def attach_references(
    prompts: Sequence[Prompt], reference_dir: str | Path | None, pattern: str = "{id}.wav"
) -> tuple[int, int]:
    """Set ``prompt.reference`` to ``<reference_dir>/<pattern>`` where that file exists.

    ``pattern`` is formatted with ``id``, ``safe_id`` and the prompt's ``meta`` fields (e.g.
    ``"{ytid}.wav"``, ``"Y{youtube_id}.wav"``, ``"{file_name}"``); ``*`` matches any characters
    (the first match in sorted order wins; field values are matched literally). Returns
    ``(n_found, n_missing)``; prompts without a file keep ``reference=None``.
    """
    if not reference_dir:
        return 0, 0
    root = Path(str(reference_dir)).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"reference_dir {root} is not a folder")
    found = 0
    for p in prompts:
        values = {k: v for k, v in p.meta.items() if isinstance(v, (str, int, float))}
        values.update(id=p.id, safe_id=safe_id(p.id))
        try:
            if "*" in pattern or "?" in pattern:
                esc = {k: glob.escape(str(v)) for k, v in values.items()}
                hits = sorted(glob.glob(str(root / pattern.format(**esc))))
                path = Path(hits[0]) if hits else None
            else:
                path = root / pattern.format(**values)
        except (KeyError, IndexError) as exc:
            raise ValueError(
                f"reference_pattern {pattern!r}: unknown field {exc}; available: {sorted(values)}"
            ) from None
        if path is not None and _lexically_inside(root, path) and path.is_file():
            p.reference = str(path)
            found += 1
    missing = len(prompts) - found
    if missing:
        log.warning("%d of %d prompts have no reference file %s in %s", missing, len(prompts), pattern, root)
    return found, missing


def from_table(
    path: str,
    name: str = "custom",
    id_column: str = "id",
    text_column: str = "text",
    reference_column: str | None = "reference",
    limit: int | None = None,
    offset: int = 0,
    sample_seed: int | None = None,
    reference_dir: str | None = None,
    reference_pattern: str = "{id}.wav",
    license: str | None = None,
    source: str | None = None,
) -> PromptSet:
    """Any user CSV / JSONL with ``id,text[,reference]`` columns (names configurable).

    Relative ``reference`` paths are resolved against the table's folder; prompts without one are
    paired through ``reference_dir`` + ``reference_pattern`` when given.
    """
    p = require_file(
        path, f"prompt table {name}", "Set prompts.<key>.path to a CSV or JSONL file with id,text columns."
    )
    ps = PromptSet.from_rows(
        name, read_table(p), p, id_column, text_column, reference_column, license, source,
        subset=lambda rows: select(rows, limit, offset, sample_seed),
    )
    attach_references([q for q in ps.prompts if not q.reference], reference_dir, reference_pattern)
    return ps
