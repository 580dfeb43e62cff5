"""Prompt sets: ids, texts and (optionally) the paired reference clip of each prompt.

Ids come from untrusted files; they are only ever turned into file names through
:func:`bench.paths.safe_id`. Loaders for the public caption sets live in ``bench.prompt_sets``; the
options every loader shares (:class:`TableOptions`, :class:`Columns`, taken as flat keys through
:func:`flat_options`) and what they do (:func:`select`, :func:`attach_references`) are defined here once.
"""

from __future__ import annotations

import csv
import functools
import glob
import inspect
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.paths import safe_id

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


def read_csv(path: str | Path, delimiter: str = ",") -> list[dict[str, Any]]:
    """Rows of a UTF-8 CSV (a BOM is dropped), in order; an unreadable file raises ValueError naming it."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f, delimiter=delimiter))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: not a readable UTF-8 CSV ({exc}); save it as UTF-8 CSV with id,text columns") from None


def _prompt_file(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"prompt file {p} does not exist")
    return p


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


@dataclass(frozen=True)
class Columns:
    """The columns of a user table that hold a prompt's id, its text and (optionally) its reference clip."""

    id_column: str = "id"
    text_column: str = "text"
    reference_column: str | None = "reference"


@dataclass(frozen=True)
class TableOptions:
    """The options every prompt-table loader takes (flat keys in ``bench/configs/prompts/*.yaml``).

    ``limit``/``offset``/``sample_seed``: which rows (or clips), see :func:`select`;
    ``reference_dir``/``reference_pattern``: where prompts without a reference find their clip, see
    :func:`attach_references`; ``license``/``source``: provenance for the manifest (the loader's own
    when None). A loader states its own defaults as ``opts: TableOptions = TableOptions(...)``.
    """

    limit: int | None = None
    offset: int = 0
    sample_seed: int | None = None
    reference_dir: str | None = None
    reference_pattern: str = "{id}.wav"
    license: str | None = None
    source: str | None = None

    def select(self, items: Sequence[Any]) -> list[Any]:
        """The chosen subset of ``items`` (rows or clips), in their order."""
        return select(items, self.limit, self.offset, self.sample_seed)

    def prompt_set(self, name: str, prompts: list[Prompt], license: str | None, source: str) -> PromptSet:
        """``prompts`` as a set: those without a reference paired through ``reference_dir``, and this
        object's ``license``/``source`` where given, else the loader's."""
        attach_references([p for p in prompts if not p.reference], self.reference_dir, self.reference_pattern)
        return PromptSet(name, prompts, self.license or license, self.source or source)


def flat_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with each parameter whose default is a :class:`Columns` / :class:`TableOptions` instance
    offered as that object's fields instead: flat keywords, as Hydra configs pass them, with the
    instance's values as defaults. The call rebuilds the object; ``inspect.signature`` shows the flat
    parameters, so config validation still names unknown keys."""
    sig = inspect.signature(fn)
    groups: dict[str, tuple[type, list[str]]] = {}
    params: list[inspect.Parameter] = []
    for p in sig.parameters.values():
        if is_dataclass(p.default) and not isinstance(p.default, type):
            fs = fields(p.default)
            groups[p.name] = (type(p.default), [f.name for f in fs])
            params += [inspect.Parameter(f.name, p.kind, default=getattr(p.default, f.name), annotation=f.type)
                       for f in fs]
        else:
            params.append(p)
    flat = sig.replace(parameters=params)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        bound = flat.bind(*args, **kwargs)
        bound.apply_defaults()
        given = dict(bound.arguments)
        for name, (klass, names) in groups.items():
            given[name] = klass(**{n: given.pop(n) for n in names})
        return fn(**given)

    call.__signature__ = flat  # type: ignore[attr-defined]
    return call


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
    @flat_options
    def from_csv(
        cls,
        name: str,
        path: str,
        columns: Columns = Columns(),
        opts: TableOptions = TableOptions(),
        reference_template: str | None = None,
    ) -> PromptSet:
        """A CSV with ``id,text[,reference]`` columns (names configurable); options as in :class:`TableOptions`.

        Relative reference paths are resolved against the CSV's folder. ``reference_template``
        (e.g. ``"/data/clips/{id}.wav"``; ``{safe_id}`` also works) gives every prompt its paired
        clip when the CSV has no reference column.
        """
        p = _prompt_file(path)
        ps = cls.from_rows(name, read_csv(p), p, columns, opts)
        if reference_template:
            for pr in ps.prompts:
                pr.reference = reference_template.format(id=pr.id, safe_id=safe_id(pr.id))
        return ps

    @classmethod
    @flat_options
    def from_jsonl(
        cls, name: str, path: str, columns: Columns = Columns(), opts: TableOptions = TableOptions()
    ) -> PromptSet:
        """One JSON object per line with ``id``, ``text`` and optional ``reference``; options as in :class:`TableOptions`."""
        p = _prompt_file(path)
        return cls.from_rows(name, read_jsonl(p), p, columns, opts)

    @classmethod
    def from_rows(
        cls,
        name: str,
        rows: list[dict[str, Any]],
        path: str | Path,
        columns: Columns = Columns(),
        opts: TableOptions = TableOptions(),
    ) -> PromptSet:
        """The one table -> prompts conversion (every CSV / JSONL loader ends here).

        ``rows`` are the table's records, checked for the id/text columns and then cut to
        ``opts.select(rows)``; relative reference paths are resolved against ``path``'s folder, prompts
        still without one are paired through ``opts.reference_dir``; the other columns become ``Prompt.meta``.
        """
        path = Path(path)
        id_column, text_column, reference_column = columns.id_column, columns.text_column, columns.reference_column
        if rows and (id_column not in rows[0] or text_column not in rows[0]):
            raise ValueError(
                f"{path}: needs columns {id_column!r} and {text_column!r}; found {sorted(rows[0])}"
                " (set id_column/text_column in the prompts config)"
            )
        prompts = []
        for r in opts.select(rows):
            ref = r.get(reference_column) if reference_column else None
            if ref:
                rp = Path(str(ref)).expanduser()
                ref = str(rp if rp.is_absolute() else (path.parent / rp))
            meta = {k: v for k, v in r.items() if k not in (id_column, text_column, reference_column)}
            prompts.append(Prompt(str(r[id_column]), str(r[text_column]), ref or None, meta))
        return opts.prompt_set(name, prompts, None, str(path))
