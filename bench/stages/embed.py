"""The embed stage: every audio file once per embedder, into the content-addressed cache.

Call boundary: :func:`embed` takes the cache, the error log, the embedders and the files with their
owners (:func:`bench.stages.gather.embed_jobs`) and returns :class:`Embedded` (the cache key of
every embedded file, per embedder, and the counters).

Cache key = sha256 of the file + the embedder id (name, preprocessing, checkpoint digests). An entry
is computed only while holding its file lock and after checking the cache again, so processes
sharing a cache split the work; entries another process holds are waited for at the end.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from bench.audio import AudioError, extension_note, load_audio_report
from bench.cache import ArrayCache, sha256_file, stable_hash
from bench.embedders.base import Embedder
from bench.errors import ErrorLog, RunFailed
from bench.stages.common import Component, Owners

log = logging.getLogger(__name__)

@lru_cache(maxsize=65536)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def file_digest(path: str) -> str:
    """sha256 of a file, memoised on (path, size, mtime) within the process."""
    s = os.stat(path)
    return _file_digest(path, s.st_size, s.st_mtime_ns)


def embedding_key(digest: str, embedder: Embedder) -> str:
    return stable_hash({"audio_sha256": digest, "embedder": embedder.id}, 32)


@dataclass
class EmbedState:
    """What the embed stage reads (cache, error log) and writes (``emb_keys``, ``counters``)."""

    cache: ArrayCache
    errors: ErrorLog
    #: (embedder key, path) -> cache key of its embedding (successfully embedded files only)
    emb_keys: dict[tuple[str, str], str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=lambda: {"embedded": 0, "embed_cache_hits": 0})


@dataclass
class Embedded:
    """The embed stage's result: ``keys[(embedder, path)]`` and the ``embedded`` / ``embed_cache_hits`` counts."""

    keys: dict[tuple[str, str], str]
    counters: dict[str, int]


def embed(
    cache: ArrayCache,
    errors: ErrorLog,
    embedders: Mapping[str, Component],
    files: Owners,
    progress: bool = True,
    compute: bool = True,
) -> Embedded:
    """Embed ``files`` with every available embedder (``compute=False``: only look up the cache)."""
    st = EmbedState(cache, errors)
    for e in embedders.values():
        if e.obj is not None:
            embed_files(st, e.key, e.obj, files, progress, compute=compute)
    return Embedded(st.emb_keys, st.counters)


def _record(st: EmbedState, ekey: str, key: str, paths: list[str], files: Owners, meta: dict[str, Any]) -> None:
    """Remember ``key`` as the embedding of ``paths`` and report the entry's warning notes for each owner."""
    for path in paths:
        st.emb_keys[(ekey, path)] = key
        notes = list(meta.get("notes") or [])
        if note := extension_note(path, meta.get("format")):
            notes.append(note)
        for note in notes:
            for o in files[path]:
                st.errors.warn("embed", o[0], o[1], o[2], path, note)


def _fail(st: EmbedState, paths: list[str], files: Owners, reason: str) -> None:
    for path in paths:
        for o in files[path]:
            st.errors.add("embed", o[0], o[1], o[2], path, reason)


def embed_files(st: EmbedState, ekey: str, emb: Embedder, files: Owners, progress: bool, compute: bool = True) -> None:
    """Embed every file not yet in the cache, in batches; record keys in ``st.emb_keys``.

    Files with identical content share one cache entry (embedded once). Concurrent runs sharing
    the cache split the work: an entry is computed only under its file lock, after re-checking
    the cache; entries another process is computing are skipped first and waited for at the end.
    """
    by_key: dict[str, list[str]] = {}
    for path, owners in files.items():
        try:
            key = embedding_key(file_digest(path), emb)
        except OSError as exc:
            for o in owners:
                st.errors.add("embed", o[0], o[1], o[2], path, f"cannot read file ({exc.strerror or exc})")
            continue
        by_key.setdefault(key, []).append(path)
    todo: list[str] = []
    for key, paths in by_key.items():
        got = st.cache.get_with_meta(key)
        if got is not None:
            _record(st, ekey, key, paths, files, got[1])
            st.counters["embed_cache_hits"] += 1
        elif compute:
            todo.append(key)
    if not todo:
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc=f"embed {ekey}", disable=not progress, unit="file")
    deferred = _embed_pass(st, ekey, emb, todo, by_key, files, bar, wait=False)
    if deferred:
        log.info("embed %s: waiting for %d entries another process is computing", ekey, len(deferred))
        _embed_pass(st, ekey, emb, deferred, by_key, files, bar, wait=True)
    bar.close()


def _embed_pass(st, ekey, emb, keys, by_key, files, bar, wait: bool) -> list[str]:
    """One pass over ``keys``: lock, re-check, embed in batches, store. Returns keys locked elsewhere."""
    from filelock import Timeout

    bs = 1 if wait else max(1, int(emb.batch_size))
    deferred: list[str] = []
    pending = list(keys)
    while pending:
        held: list[tuple[str, Any]] = []
        try:
            while pending and len(held) < bs:
                key = pending.pop(0)
                lock = st.cache.lock(key)
                try:
                    lock.acquire(timeout=None if wait else 0)
                except Timeout:
                    deferred.append(key)
                    continue
                got = st.cache.get_with_meta(key)  # finished by another process meanwhile?
                if got is not None:
                    lock.release()
                    _record(st, ekey, key, by_key[key], files, got[1])
                    st.counters["embed_cache_hits"] += 1
                    bar.update(1)
                    continue
                held.append((key, lock))
            if held:
                _embed_batch(st, ekey, emb, [k for k, _ in held], by_key, files)
                bar.update(len(held))
        finally:
            for _, lock in held:
                lock.release()
    return deferred


def _embed_batch(st: EmbedState, ekey: str, emb: Embedder, keys: list[str], by_key, files: Owners) -> None:
    wavs, ok = [], []
    for key in keys:
        path = by_key[key][0]
        try:
            loaded = load_audio_report(path, emb.audio)
        except AudioError as exc:
            _fail(st, by_key[key], files, str(exc))
            continue
        except (OSError, RuntimeError, ValueError, MemoryError) as exc:
            _fail(st, by_key[key], files, f"cannot load audio ({type(exc).__name__}: {exc})")
            continue
        wavs.append(loaded.wav)
        ok.append((key, {"notes": loaded.notes, "format": loaded.format, "source_rate": loaded.source_rate}))
    if not ok:
        return
    try:
        outs = emb.embed_batch(wavs)
        if len(outs) != len(wavs):
            raise RuntimeError(f"embed_batch returned {len(outs)} results for {len(wavs)} clips")
    except RunFailed:
        raise
    except Exception:  # retry alone: one pathological clip must not sink the batch
        outs = []
        for w in wavs:
            try:
                outs.append(emb.embed(w))
            except Exception as exc1:
                outs.append(exc1)
    del wavs
    for (key, meta), out in zip(ok, outs):
        if isinstance(out, BaseException):
            reason = f"embedding failed ({type(out).__name__}: {out})"
        elif not isinstance(out, dict) or "emb" not in out:
            reason = "embedder returned no 'emb'"
        elif np.asarray(out["emb"]).size == 0 or not np.all(np.isfinite(out["emb"])):
            reason = "embedding is empty or non-finite"
        else:
            reason = ""
        if reason:
            _fail(st, by_key[key], files, reason)
            continue
        st.cache.put(key, {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}, meta=meta)
        _record(st, ekey, key, by_key[key], files, meta)
        st.counters["embedded"] += 1


class EmbeddingLoader:
    """Loads verified cache entries, keeping recently used ones up to ``max_bytes`` (one per run).

    A byte budget, not an entry count, bounds memory whatever the embedding size.
    """

    def __init__(self, cache: ArrayCache, max_bytes: int = 256 * 2**20):
        self.cache = cache
        self.max_bytes = int(max_bytes)
        self._lru: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self._bytes = 0

    def __call__(self, key: str) -> dict[str, np.ndarray]:
        d = self._lru.get(key)
        if d is not None:
            self._lru.move_to_end(key)
            return d
        d = self.cache.get(key)
        if d is None:
            raise RuntimeError(f"embedding {key} vanished from the cache or failed its checksum")
        size = sum(a.nbytes for a in d.values())
        if size <= self.max_bytes // 4:
            self._lru[key] = d
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._lru.popitem(last=False)
                self._bytes -= sum(a.nbytes for a in old.values())
        return d
