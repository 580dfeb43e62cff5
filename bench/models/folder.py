"""Pre-generated audio in a folder, matched to prompt ids: how closed systems (Suno, Udio, MusicLM,
Jukebox samples...) and anything generated elsewhere get evaluated.

Files are found either by a file-name ``pattern`` or by a ``manifest`` CSV (``id[,sample],path``).
Pattern fields: ``{id}`` (raw prompt id), ``{safe_id}`` (:func:`bench.paths.safe_id` of it), ``{k}``
(sample index, from ``first_k``), ``{index}`` (0-based position of the prompt in the prompt set) and
any scalar field of the prompt's ``meta`` (e.g. MusicCaps' ``{row}``: fadtk's samples are
``mg-{row}.opus``; ``{ytid}``, ``{youtube_id}``...); format specs work (``{index:04d}``). Wildcards: ``*`` and ``?``
within a path segment, ``**/`` for any sub-folders. Only audio files (``bench.audio.AUDIO_EXTENSIONS``)
are candidates. Field values are matched literally (an id containing ``*`` or ``[`` is no glob).

Braces are Hydra syntax on a command line, so every field can also be written ``%name`` (ended by the
first character that cannot be in a name, or by a closing ``%``: ``%id%_%k%.wav``); ``%%`` is a literal
``%``. ``model.folder.pattern=mg-%row.opus`` needs no quoting.

``pattern: auto`` (the default of ``folders``) finds the naming itself: for each of the fields
``id, safe_id, ytid, youtube_id, audiocap_id, file_name, row, index`` it matches file stems that equal
the value, end with ``-value`` / ``_value`` / `` value``, or are ``Y<value>`` (AudioSet's naming), and
uses the field that gives the most prompts exactly one file (the choice is logged).

Every item gets exactly one file or an error row (missing, ambiguous, undecodable). Audio files
that match no prompt are "extra": they are logged, listed in ``<out_dir>/extra_files.txt`` and on
:attr:`FolderModel.extra_files`, and with ``report_extra="error"`` also written to errors.csv.
Nothing is ever written into the user's folder; files are used in place.
"""

from __future__ import annotations

import bisect
import csv
import io
import logging
import os
import re
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.audio import AUDIO_EXTENSIONS
from bench.cache import atomic_write_text
from bench.errors import ErrorLog
from bench.models.base import Model, is_valid_audio, item_id
from bench.paths import safe_id
from bench.prompts import Prompt

log = logging.getLogger(__name__)

_FIELDS = {"id", "safe_id", "k", "index"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PERCENT = re.compile(r"%%|%([A-Za-z_][A-Za-z0-9_]*)%?")
#: fields ``pattern: auto`` tries, in order of preference on ties
AUTO_FIELDS = ("id", "safe_id", "ytid", "youtube_id", "audiocap_id", "file_name", "row", "index")
_AUTO_SEPARATORS = "-_ "


def percent_fields(pattern: str) -> str:
    """``mg-%row.opus`` -> ``mg-{row}.opus``: the command-line spelling of pattern fields (``%%`` = ``%``)."""
    if "%" not in pattern:
        return pattern
    return _PERCENT.sub(lambda m: "%" if m.group(0) == "%%" else "{" + m.group(1) + "}", pattern)


def _stem(rel: str) -> str:
    name = rel.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def list_audio(root: Path) -> list[str]:
    """Sorted posix paths (relative to ``root``) of every audio file below it (symlinks followed)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root)
        for f in filenames:
            if f.lower().endswith(AUDIO_EXTENSIONS) and not f.startswith("."):
                out.append((rel / f).as_posix())
    return sorted(out)


def _glob_to_regex(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif text[i] == "*":
            out.append("[^/]*")
            i += 1
        elif text[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(text[i]))
            i += 1
    return "".join(out)


class FilePattern:
    """A compiled ``pattern``: :meth:`render` gives a literal prefix + regex for one item."""

    def __init__(self, pattern: str):
        self.text = pattern
        pattern = percent_fields(pattern)
        self.pattern = pattern
        try:
            self.parts = list(string.Formatter().parse(pattern))
        except ValueError as exc:
            raise ValueError(f"folder pattern {self.text!r}: {exc} (a literal brace is written {{{{ or }}}})") from None
        for _, field, _, _ in self.parts:
            if field is not None and not _IDENT.match(field):
                raise ValueError(
                    f"folder pattern {pattern!r}: bad field {{{field}}}; use {sorted(_FIELDS)} or meta fields"
                )
        self.fields = {f for _, f, _, _ in self.parts if f}
        if not self.fields - {"k"}:
            raise ValueError(f"folder pattern {pattern!r} must contain a prompt field such as {{id}}")

    def render(self, values: dict[str, Any]) -> tuple[str, re.Pattern | None]:
        """``(literal, None)`` when the result has no wildcard, else ``(literal prefix, full regex)``."""
        literal_prefix, regex, wild = [], [], False
        for lit, field, spec, conv in self.parts:
            if "*" in lit or "?" in lit:
                if not wild:
                    literal_prefix.append(re.split(r"[*?]", lit, maxsplit=1)[0])
                wild = True
            elif not wild:
                literal_prefix.append(lit)
            regex.append(_glob_to_regex(lit))
            if field:
                v = values[field]
                v = repr(v) if conv == "r" else v
                text = format(v, spec or "")
                regex.append(re.escape(text))
                if not wild:
                    literal_prefix.append(text)
        prefix = "".join(literal_prefix)
        return (prefix, re.compile("".join(regex) + r"\Z") if wild else None)


class FolderModel(Model):
    """Audio files already on disk, one per prompt (per sample when ``n_samples_per_prompt > 1``).

    Args:
        path: folder with the audio (optional with ``manifest``: relative manifest paths are then
            resolved against the manifest's folder).
        pattern: file name pattern relative to ``path`` (see module docstring).
        manifest: CSV with columns ``id`` (prompt id), ``path`` and, for several samples, ``sample``.
        first_k: number of the first sample in file names / the manifest (0 or 1).
        report_extra: "warn" (log + extra_files.txt), "error" (also one errors.csv row per file), "ignore".
        name: model name in tables (defaults to "folder").
        license, source: provenance of the audio, copied into the run manifest.
    """

    name = "folder"
    #: a folder model collects files: seed and duration do not change them, report_extra only the reports
    non_value_params = (*Model.non_value_params, "seed", "duration_s", "report_extra")
    #: recorded resolved (absolute paths; the pattern text or "auto")
    param_aliases = {"path": "path", "pattern": "pattern", "manifest": "manifest"}

    def __init__(
        self,
        path: str | None = None,
        pattern: str = "{id}.wav",
        manifest: str | None = None,
        first_k: int = 0,
        report_extra: str = "warn",
        name: str | None = None,
        license: str | None = None,
        source: str | None = None,
        id_column: str = "id",
        path_column: str = "path",
        sample_column: str = "sample",
        **kw,
    ):
        super().__init__(**kw)
        if name:
            self.name = name
        if report_extra not in ("warn", "error", "ignore"):
            raise ValueError(f"report_extra must be warn, error or ignore, got {report_extra!r}")
        if not path and not manifest:
            raise ValueError(f"{self.name}: set path (a folder of audio) or manifest (a CSV of id,path)")
        self.root = Path(path).expanduser().resolve() if path else None
        self.manifest = Path(manifest).expanduser().resolve() if manifest else None
        if self.root is not None and not self.root.is_dir():
            raise FileNotFoundError(f"{self.name}: audio folder {self.root} does not exist")
        if self.manifest is not None and not self.manifest.is_file():
            raise FileNotFoundError(f"{self.name}: manifest {self.manifest} does not exist")
        self.auto = self.manifest is None and pattern == "auto"
        if self.auto and self.n_samples_per_prompt > 1:
            raise ValueError(f"{self.name}: pattern auto matches one file per prompt; give a pattern with %k")
        self.pattern = FilePattern(pattern) if self.manifest is None and not self.auto else None
        #: the field ``pattern: auto`` chose in the last :meth:`gather` (None otherwise)
        self.matched_by: str | None = None
        if self.pattern is not None and self.n_samples_per_prompt > 1 and "k" not in self.pattern.fields:
            raise ValueError(f"{self.name}: n_samples_per_prompt > 1 needs {{k}} in the pattern, got {pattern!r}")
        self.first_k = int(first_k)
        self.report_extra = report_extra
        self.license, self.source = license, source
        self.id_column, self.path_column, self.sample_column = id_column, path_column, sample_column
        #: audio files (absolute paths) that matched no prompt in the last :meth:`gather`
        self.extra_files: list[Path] = []
        #: item ids with no file in the last :meth:`gather` (one summary row in errors.csv)
        self.missing: list[str] = []

    def derived_params(self) -> dict[str, Any]:
        return {
            "path": str(self.root) if self.root else None,
            "pattern": "auto" if self.auto else (self.pattern.pattern if self.pattern else None),
            "manifest": str(self.manifest) if self.manifest else None,
        }

    def generate(self, prompts: Sequence[Prompt], seeds: Sequence[int]) -> list[np.ndarray]:
        raise NotImplementedError("a folder model collects files; it does not generate")

    # -- matching ------------------------------------------------------------------
    def _items(self, prompts: Sequence[Prompt]):
        for index, p in enumerate(prompts):
            for k in range(self.n_samples_per_prompt):
                yield p, index, k, item_id(p.id, k, self.n_samples_per_prompt)

    def _match_pattern(self, prompts: Sequence[Prompt]) -> tuple[dict[str, list[Path]], set[Path]]:
        files = list_audio(self.root)
        present = set(files)
        found: dict[str, list[Path]] = {}
        for p, index, k, iid in self._items(prompts):
            values = {f: v for f, v in p.meta.items() if isinstance(v, (str, int, float))}
            values.update(id=p.id, safe_id=safe_id(p.id), k=k + self.first_k, index=index)
            unknown = self.pattern.fields - set(values)
            if unknown:
                raise ValueError(
                    f"{self.name}: pattern {self.pattern.pattern!r} uses {sorted(unknown)}, which prompt {p.id!r} "
                    f"does not have; available: {sorted(values)}"
                )
            prefix, rx = self.pattern.render(values)
            if rx is None:
                hits = [prefix] if prefix in present else []
            else:
                lo = bisect.bisect_left(files, prefix)
                hits = []
                for f in files[lo:]:
                    if not f.startswith(prefix):
                        break
                    if rx.match(f):
                        hits.append(f)
            found[iid] = [self.root / h for h in hits]
        return found, {self.root / f for f in files}

    def _match_auto(self, prompts: Sequence[Prompt]) -> tuple[dict[str, list[Path]], set[Path]]:
        files = list_audio(self.root)
        exact: dict[str, list[str]] = {}
        loose: dict[str, list[str]] = {}  # delimited suffixes of stems and Y<id> names
        for f in files:
            stem = _stem(f)
            exact.setdefault(stem, []).append(f)
            keys = {stem[i + 1:] for i, c in enumerate(stem) if c in _AUTO_SEPARATORS}
            if len(stem) > 1 and stem[0] == "Y":
                keys.add(stem[1:])
            for key in keys - {""}:
                loose.setdefault(key, []).append(f)

        def hits(value: Any) -> list[str]:
            v = str(value)
            if v.lower().endswith(AUDIO_EXTENSIONS):
                v = v.rsplit(".", 1)[0]
            return exact.get(v) or loose.get(v, [])

        best: tuple[int, str, dict[str, list[str]]] = (0, "id", {})
        for field in AUTO_FIELDS:
            found, unique = {}, 0
            for index, p in enumerate(prompts):
                values = {"id": p.id, "safe_id": safe_id(p.id), "index": index, **p.meta}
                if field not in values or not isinstance(values[field], (str, int)) or values[field] == "":
                    break
                found[p.id] = hits(values[field])
                unique += len(found[p.id]) == 1
            else:
                if unique > best[0]:
                    best = (unique, field, found)
        n, field, found = best
        self.matched_by = field if n else None
        if n:
            example = next(h[0] for h in found.values() if len(h) == 1)
            log.info("%s: pattern auto matched %d of %d prompts by %r (e.g. %s)", self.name, n, len(prompts), field,
                     example)
        return ({p.id: [self.root / h for h in found.get(p.id, [])] for p in prompts},
                {self.root / f for f in files})

    def _match_manifest(self, prompts: Sequence[Prompt]) -> tuple[dict[str, list[Path]], set[Path]]:
        id_col, path_col, k_col = self.id_column, self.path_column, self.sample_column
        with open(self.manifest, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if rows and (id_col not in rows[0] or path_col not in rows[0]):
            raise ValueError(f"{self.manifest}: needs columns {id_col!r} and {path_col!r}; found {sorted(rows[0])}")
        if self.n_samples_per_prompt > 1 and rows and k_col not in rows[0]:
            raise ValueError(f"{self.manifest}: n_samples_per_prompt > 1 needs a {k_col!r} column")
        base = self.root or self.manifest.parent
        wanted = {iid: (p.id, k) for p, _, k, iid in self._items(prompts)}
        by_key: dict[tuple[str, int], list[Path]] = {}
        listed: set[Path] = set()
        for r in rows:
            p = Path(str(r[path_col])).expanduser()
            p = p if p.is_absolute() else base / p
            listed.add(p)
            k = int(r[k_col]) - self.first_k if self.n_samples_per_prompt > 1 else 0
            by_key.setdefault((str(r[id_col]), k), []).append(p)
        found = {iid: by_key.get(key, []) for iid, key in wanted.items()}
        return found, listed

    def gather(
        self,
        prompts: Sequence[Prompt],
        out_dir: str | Path,
        errors: ErrorLog,
        set_name: str = "",
        progress: bool = True,
        keep=None,
    ) -> dict[str, Path]:
        """``{item_id: file}`` for items with exactly one decodable file; errors.csv rows for the rest."""
        self.n_generated = 0
        if self.manifest is not None:
            found, candidates = self._match_manifest(prompts)
            where = f"manifest {self.manifest}"
        elif self.auto:
            found, candidates = self._match_auto(prompts)
            where = f"{self.root} (pattern auto{', by ' + self.matched_by if self.matched_by else ''})"
        else:
            found, candidates = self._match_pattern(prompts)
            where = f"{self.root} (pattern {self.pattern.text!r})"
        out: dict[str, Path] = {}
        matched: set[Path] = set()
        self.missing = []
        n_items = 0
        for iid, hits in found.items():
            matched.update(hits)
            if keep is not None and not keep(iid):
                continue
            n_items += 1
            if not hits:
                self.missing.append(iid)
            elif len(hits) > 1:
                names = ", ".join(str(h) for h in hits[:3])
                errors.add("gather", self.name, set_name, iid, hits[0], f"ambiguous: {len(hits)} files match ({names})")
            elif not hits[0].is_file():
                errors.add("gather", self.name, set_name, iid, hits[0], "file listed in the manifest does not exist")
            elif not is_valid_audio(hits[0]):
                errors.add("gather", self.name, set_name, iid, hits[0], "file does not decode")
            else:
                out[iid] = hits[0]
        self.extra_files = sorted(candidates - matched)
        if self.missing:  # one summary row, not one per prompt (the ids go to missing.csv in a run)
            shown = ", ".join(repr(i) for i in self.missing[:3]) + (", ..." if len(self.missing) > 3 else "")
            errors.add("gather", self.name, set_name, "", self.root or self.manifest,
                       f"no file for {len(self.missing):,} of {n_items:,} prompts in {where} ({shown}; "
                       "listed in missing.csv)")
        self._report(out_dir, out, errors, set_name)
        return out

    def _report(self, out_dir: str | Path, out: dict[str, Path], errors: ErrorLog, set_name: str) -> None:
        out_dir = Path(out_dir).resolve()
        if self.extra_files and self.report_extra != "ignore":
            shown = ", ".join(str(p) for p in self.extra_files[:5])
            log.warning(
                "%s/%s: %d audio file(s) matched no prompt (e.g. %s); list in %s",
                self.name,
                set_name,
                len(self.extra_files),
                shown,
                out_dir / "extra_files.txt",
            )
            if self.report_extra == "error":
                for p in self.extra_files:
                    errors.add("gather", self.name, set_name, "", p, "extra file not matched to any prompt")
        if self.root is not None and (out_dir == self.root or self.root in out_dir.parents):
            log.warning("%s: output folder %s is inside the audio folder; not writing match lists", self.name, out_dir)
            return
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["item_id", "path"])
        w.writerows((iid, str(p)) for iid, p in out.items())
        atomic_write_text(out_dir / "folder_matches.csv", buf.getvalue())
        atomic_write_text(out_dir / "extra_files.txt", "".join(f"{p}\n" for p in self.extra_files))


def folders(
    path: str,
    pattern: str = "auto",
    include: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    **kw: Any,
) -> dict[str, FolderModel]:
    """One :class:`FolderModel` per sub-folder of ``path`` that holds audio: ``{sub-folder name: model}``.

    Every row of the tables is named after its sub-folder. ``pattern`` and the other keyword arguments
    (``n_samples_per_prompt``, ``first_k``, ``report_extra``, ``license``, ``source``) apply to every
    sub-folder, with the same rules as ``folder``. ``include`` / ``exclude`` pick sub-folders by name.
    """
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"folders: {root} is not a folder (set model.folders.path to a folder of sub-folders)")
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    names = [d.name for d in subdirs]
    missing = sorted(set(include or ()) - set(names))
    if missing:
        raise FileNotFoundError(f"folders: include names {missing}, which are not sub-folders of {root}; found {names}")
    chosen = [d for d in subdirs if (include is None or d.name in include) and d.name not in set(exclude)]
    out: dict[str, FolderModel] = {}
    for d in chosen:
        if not list_audio(d):
            log.warning("folders: %s has no audio files; skipped", d)
            continue
        out[d.name] = FolderModel(path=str(d), pattern=pattern, name=d.name, **kw)
    if not out:
        hint = " (it holds audio files itself: use model=[folder] model.folder.path=...)" if list_audio(root) else ""
        raise FileNotFoundError(f"folders: no sub-folder of {root} holds audio files{hint}")
    return out
