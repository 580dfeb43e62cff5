"""Loaders for public caption sets (MusicCaps, AudioCaps, Clotho) and user tables -> :class:`bench.prompts.PromptSet`.

Shared pieces: :func:`read_table` (CSV / JSONL) and, from :mod:`bench.prompts`, :class:`TableOptions`
(the options every loader takes as flat keys: :func:`select` for deterministic subsets,
:func:`attach_references` to pair each prompt with ``<reference_dir>/<pattern>`` when that file exists).
Prompt ids stay raw here; they only touch the filesystem through :func:`bench.paths.safe_id`.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from bench.prompts import (
    Columns,
    PromptSet,
    TableOptions,
    attach_references,
    flat_options,
    read_csv,
    read_jsonl,
    select,
)

__all__ = ["Columns", "TableOptions", "attach_references", "from_table", "read_caption_file", "read_table", "require_file", "select"]

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
    return read_csv(p, delimiter="\t" if p.suffix.lower() == ".tsv" else ",")


def read_caption_file(
    path: str | Path | None, dataset: str, how_to: str, captions: str, columns: Collection[str], columns_text: str
) -> tuple[Path, list[dict[str, Any]]]:
    """``(path, rows)`` of a ``dataset`` caption file (several captions per clip) that has ``columns``,
    after checking that ``captions`` is "one" (one prompt per clip) or "all" (one per caption)."""
    if captions not in ("one", "all"):
        raise ValueError(f"{dataset.lower()} captions must be 'one' or 'all', got {captions!r}")
    p = require_file(path, f"{dataset} captions", how_to)
    rows = read_table(p)
    if rows and not set(columns) <= set(rows[0]):
        raise ValueError(f"{p}: needs {columns_text} columns; found {sorted(rows[0])}")
    return p, rows


@flat_options
def from_table(
    path: str, name: str = "custom", columns: Columns = Columns(), opts: TableOptions = TableOptions()
) -> PromptSet:
    """Any user CSV / JSONL with ``id,text[,reference]`` columns (names configurable); options as in
    :class:`TableOptions`.

    Relative ``reference`` paths are resolved against the table's folder; prompts without one are
    paired through ``reference_dir`` + ``reference_pattern`` when given.
    """
    p = require_file(
        path, f"prompt table {name}", "Set prompts.<key>.path to a CSV or JSONL file with id,text columns."
    )
    return PromptSet.from_rows(name, read_table(p), p, columns, opts)
