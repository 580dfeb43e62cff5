"""Prompt sets: ids, texts and (optionally) the paired reference clip of each prompt.

Ids come from untrusted files; they are only ever turned into file names through
:func:`bench.paths.safe_id`. Loaders for the public caption sets live in ``bench.prompt_sets``.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Objects of a JSON-lines file, in order; a bad line raises ValueError naming ``path:line``."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{n}: invalid JSON ({exc})") from exc
    return rows


@dataclass
class Prompt:
    """One prompt.

    id: the raw id from the prompt file (unique within its set).
    text: the text given to text-conditioned generators and to CLAP.
    reference: path of this prompt's own reference clip (for the oracle baseline, KL), or None.
    meta: anything else from the source row (aspects, labels, ...).
    """

    id: str
    text: str
    reference: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class PromptSet:
    """A named, ordered list of prompts with provenance for the run manifest."""

    name: str
    prompts: list[Prompt]
    license: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        seen: dict[str, int] = {}
        where = f" ({self.source})" if self.source else ""
        for n, p in enumerate(self.prompts, 1):
            if not str(p.id).strip():
                raise ValueError(f"prompt set {self.name!r}{where}: prompt {n} has an empty id; every prompt needs one")
            if p.id in seen:
                raise ValueError(
                    f"prompt set {self.name!r}{where}: duplicate prompt id {p.id!r} (prompts {seen[p.id]} and {n}); "
                    "ids must be unique: fix the file or choose another id_column"
                )
            seen[p.id] = n

    def __len__(self) -> int:
        return len(self.prompts)

    def __iter__(self):
        return iter(self.prompts)

    @property
    def texts(self) -> dict[str, str]:
        return {p.id: p.text for p in self.prompts}

    @property
    def references(self) -> dict[str, str]:
        return {p.id: p.reference for p in self.prompts if p.reference}

    def provenance(self) -> dict[str, Any]:
        return {"name": self.name, "n_prompts": len(self), "license": self.license, "source": self.source}

    def subset(self, limit: int | None = None, offset: int = 0) -> PromptSet:
        """The prompts ``[offset, offset + limit)`` (all when ``limit`` is None)."""
        end = None if limit is None else offset + int(limit)
        return PromptSet(self.name, self.prompts[offset:end], self.license, self.source)

    # -- loaders ----------------------------------------------------------------
    @classmethod
    def from_list(
        cls,
        name: str,
        prompts: list[dict[str, Any]] | list[str],
        license: str | None = None,
        source: str | None = None,
    ) -> PromptSet:
        """Inline prompts: ``[{"id": .., "text": .., "reference": ..}, ...]`` or bare strings (ids p000, p001...)."""
        out = []
        for i, p in enumerate(prompts):
            if isinstance(p, str):
                out.append(Prompt(f"p{i:03d}", p))
            else:
                d = dict(p)
                out.append(Prompt(str(d.pop("id", f"p{i:03d}")), str(d.pop("text")), d.pop("reference", None), d))
        return cls(name, out, license, source)

    @classmethod
    def from_csv(
        cls,
        name: str,
        path: str,
        id_column: str = "id",
        text_column: str = "text",
        reference_column: str | None = "reference",
        limit: int | None = None,
        offset: int = 0,
        license: str | None = None,
        source: str | None = None,
        reference_template: str | None = None,
    ) -> PromptSet:
        """A CSV with ``id,text[,reference]`` columns (names configurable).

        Relative reference paths are resolved against the CSV's folder. ``reference_template``
        (e.g. ``"/data/clips/{id}.wav"``; ``{safe_id}`` also works) gives every prompt its paired
        clip when the CSV has no reference column.
        """
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"prompt file {p} does not exist")
        try:
            with open(p, newline="", encoding="utf-8-sig") as f:
                rows = list(csv.DictReader(f))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ValueError(f"{p}: not a readable UTF-8 CSV ({exc}); save it as UTF-8 CSV with id,text columns") from None
        ps = cls._from_rows(name, rows, p, id_column, text_column, reference_column, limit, offset, license, source)
        if reference_template:
            from bench.paths import safe_id

            for pr in ps.prompts:
                pr.reference = reference_template.format(id=pr.id, safe_id=safe_id(pr.id))
        return ps

    @classmethod
    def from_jsonl(
        cls,
        name: str,
        path: str,
        id_column: str = "id",
        text_column: str = "text",
        reference_column: str | None = "reference",
        limit: int | None = None,
        offset: int = 0,
        license: str | None = None,
        source: str | None = None,
    ) -> PromptSet:
        """One JSON object per line with ``id``, ``text`` and optional ``reference``."""
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"prompt file {p} does not exist")
        return cls._from_rows(name, read_jsonl(p), p, id_column, text_column, reference_column, limit, offset,
                              license, source)

    @classmethod
    def from_rows(
        cls,
        name: str,
        rows: list[dict[str, Any]],
        path: str | Path,
        id_column: str = "id",
        text_column: str = "text",
        reference_column: str | None = "reference",
        license: str | None = None,
        source: str | None = None,
        subset: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    ) -> PromptSet:
        """The one table -> prompts conversion (every CSV / JSONL loader ends here).

        ``rows`` are the table's records, checked for the id/text columns and then cut to
        ``subset(rows)``; relative reference paths are resolved against ``path``'s folder; the other
        columns become ``Prompt.meta``.
        """
        path = Path(path)
        if rows and (id_column not in rows[0] or text_column not in rows[0]):
            raise ValueError(
                f"{path}: needs columns {id_column!r} and {text_column!r}; found {sorted(rows[0])}"
                " (set id_column/text_column in the prompts config)"
            )
        prompts = []
        for r in subset(rows) if subset else rows:
            ref = r.get(reference_column) if reference_column else None
            if ref:
                rp = Path(str(ref)).expanduser()
                ref = str(rp if rp.is_absolute() else (path.parent / rp))
            meta = {k: v for k, v in r.items() if k not in (id_column, text_column, reference_column)}
            prompts.append(Prompt(str(r[id_column]), str(r[text_column]), ref or None, meta))
        return cls(name, prompts, license, source or str(path))

    @classmethod
    def _from_rows(cls, name, rows, path, id_col, text_col, ref_col, limit, offset, license, source) -> PromptSet:
        def subset(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return rows[offset:] if limit is None else rows[offset:][: int(limit)]

        return cls.from_rows(name, rows, path, id_col, text_col, ref_col, license, source, subset)
