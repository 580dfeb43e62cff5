"""The embed stage: every audio file once per embedder, into the content-addressed cache.

Call boundary: :func:`embed` takes the cache, the error log, the embedders, the files with their
owners (:func:`bench.stages.gather.embed_jobs`) and the input settings (:class:`EmbedIO`) and returns
:class:`Embedded` (the cache key of every embedded file, per embedder, and the counters).

Cache key = sha256 of the file + the embedder id (name, preprocessing, checkpoint digests). An entry
is computed only while holding its file lock and after checking the cache again, so processes
sharing a cache split the work; entries another process holds are waited for at the end.

Input path (:func:`embed_all`, see docs/throughput.md): all embedders of a run are served by one
stream of file jobs. A job decodes a file once, mixes it down once per mono method and resamples it
once per (rate, resampler) for every embedder that still needs it; jobs run in a worker pool
(``embed_io.num_workers`` threads or processes) that prefetches the next files while the model runs.
Results are consumed in submission order and batches are cut by a rule that only depends on the
files (count, or total audio seconds), so embeddings are bit-identical whatever the worker count or
timing. Memory: prepared waveforms waiting for their embedder are bounded by ``embed_io.prefetch_mb``
(a batch is embedded early when the budget is reached). ``embed_io.legacy=true`` runs the previous
path (each embedder decodes and resamples every file, sequentially) for benchmarks.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from bench.audio import AudioError, AudioSpec, LoadedAudio, extension_note, load_audio_multi, load_audio_report
from bench.cache import ArrayCache, sha256_file, stable_hash
from bench.embedders.base import Embedder
from bench.errors import ErrorLog, RunFailed
from bench.fields import from_fields
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
    io: EmbedIO | None = None,
) -> Embedded:
    """Embed ``files`` with every available embedder (``compute=False``: only look up the cache).

    ``io`` (the run's ``embed_io``) sets the input pipeline: workers, prefetch, batching, legacy path.
    """
    st = EmbedState(cache, errors)
    ready = [(e.key, e.obj) for e in embedders.values() if e.obj is not None]
    embed_all(st, ready, files, progress, compute, io)
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


def _keys(st: EmbedState, emb: Embedder, files: Owners) -> dict[str, list[str]]:
    """Cache key -> paths (files with identical content share one key); unreadable files are error rows."""
    by_key: dict[str, list[str]] = {}
    for path, owners in files.items():
        try:
            key = embedding_key(file_digest(path), emb)
        except OSError as exc:
            for o in owners:
                st.errors.add("embed", o[0], o[1], o[2], path, f"cannot read file ({exc.strerror or exc})")
            continue
        by_key.setdefault(key, []).append(path)
    return by_key


def embed_files(
    st: EmbedState, ekey: str, emb: Embedder, files: Owners, progress: bool, compute: bool = True,
    io: EmbedIO | None = None,
) -> None:
    """Embed every file not yet in the cache, in batches; record keys in ``st.emb_keys``.

    Files with identical content share one cache entry (embedded once). Concurrent runs sharing
    the cache split the work: an entry is computed only under its file lock, after re-checking
    the cache; entries another process is computing are skipped first and waited for at the end.
    """
    embed_all(st, [(ekey, emb)], files, progress, compute, io)


def _record_cached(st: EmbedState, ekey: str, by_key: dict[str, list[str]], files: Owners) -> list[str]:
    """Record every key of ``by_key`` already in the cache (counted as hits); the other keys, in order."""
    missing = []
    for key, paths in by_key.items():
        got = st.cache.get_with_meta(key)
        if got is not None:
            _record(st, ekey, key, paths, files, got[1])
            st.counters["embed_cache_hits"] += 1
        else:
            missing.append(key)
    return missing


def _embed_files_legacy(st: EmbedState, ekey: str, emb: Embedder, files: Owners, progress: bool, compute: bool) -> None:
    """The previous embed stage (``embed_io.legacy``): per embedder, sequential load then embed per batch."""
    by_key = _keys(st, emb, files)
    missing = _record_cached(st, ekey, by_key, files)  # hits are recorded even when not computing
    todo = missing if compute else []
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


def _load_reason(exc: BaseException) -> str:
    """The errors.csv reason for a file that could not be loaded."""
    if isinstance(exc, AudioError):
        return str(exc)
    return f"cannot load audio ({type(exc).__name__}: {exc})"


_LOAD_ERRORS = (OSError, RuntimeError, ValueError, MemoryError)


def _embed_batch(st: EmbedState, ekey: str, emb: Embedder, keys: list[str], by_key, files: Owners) -> None:
    """Legacy path: load the files of ``keys`` one after the other, then embed them."""
    items = []
    for key in keys:
        path = by_key[key][0]
        try:
            loaded = load_audio_report(path, emb.audio)
        except _LOAD_ERRORS as exc:
            _fail(st, by_key[key], files, _load_reason(exc))
            continue
        items.append((key, loaded))
    _embed_loaded(st, ekey, emb, items, by_key, files)


def _meta(loaded: LoadedAudio) -> dict[str, Any]:
    return {"notes": loaded.notes, "format": loaded.format, "source_rate": loaded.source_rate}


def _embed_loaded(
    st: EmbedState, ekey: str, emb: Embedder, items: list[tuple[str, LoadedAudio]], by_key, files: Owners
) -> None:
    """Embed prepared waveforms ``[(key, loaded)]`` in one ``embed_batch`` call and store the entries."""
    if not items:
        return
    wavs = [loaded.wav for _, loaded in items]
    ok = [(key, _meta(loaded)) for key, loaded in items]
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


# -- pipelined input ---------------------------------------------------------------------------------------


def default_num_workers() -> int:
    """Worker count when ``embed_io.num_workers`` is null: the usable cores, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


@dataclass(frozen=True)
class EmbedIO:
    """How the embed stage feeds the models (``embed_io:`` in the run config). Changes speed and memory,
    never the embeddings (not part of any cache key).

    num_workers: decode/resample workers; null = usable cores (at most 8); 0 = in the main thread.
    executor: "thread" (default: decoding and resampling release the GIL) or "process".
    prefetch: file jobs submitted ahead of the one being consumed, per worker.
    prefetch_mb: byte budget for prepared waveforms waiting for their embedder; reaching it embeds the
        largest waiting batch early.
    batch_audio_s: when set, an ``embed_batch`` call gets files until their total audio reaches this many
        seconds (batching by audio length, for GPUs); null = ``batch_size`` files per call, as the legacy path.
    legacy: the previous path (per embedder, sequential decode + resample, then embed), for benchmarks.
    """

    num_workers: int | None = None
    executor: str = "thread"
    prefetch: int = 2
    prefetch_mb: float = 512.0
    batch_audio_s: float | None = None
    legacy: bool = False

    def __post_init__(self) -> None:
        if self.executor not in ("thread", "process"):
            raise ValueError(f"embed_io.executor must be 'thread' or 'process', got {self.executor!r}")
        if self.num_workers is not None and int(self.num_workers) < 0:
            raise ValueError(f"embed_io.num_workers must be >= 0 or null, got {self.num_workers!r}")
        if int(self.prefetch) < 1 or float(self.prefetch_mb) <= 0:
            raise ValueError("embed_io.prefetch must be >= 1 and embed_io.prefetch_mb > 0")
        if self.batch_audio_s is not None and float(self.batch_audio_s) <= 0:
            raise ValueError(f"embed_io.batch_audio_s must be > 0 or null, got {self.batch_audio_s!r}")

    @classmethod
    def from_config(cls, node: Any) -> EmbedIO:
        """From the ``embed_io`` config node (dict / DictConfig / None); unknown keys raise ``ValueError``."""
        return from_fields(cls, node, "embed_io")

    @property
    def workers(self) -> int:
        return default_num_workers() if self.num_workers is None else int(self.num_workers)


def prepare_job(path: str, specs: list[AudioSpec]) -> list[LoadedAudio | str]:
    """Worker task: ``path`` prepared for every spec (decoded once), or the errors.csv reason per spec."""
    try:
        got = load_audio_multi(path, specs)
    except _LOAD_ERRORS as exc:
        return [_load_reason(exc)] * len(specs)
    return [g if isinstance(g, LoadedAudio) else _load_reason(g) for g in got]


@dataclass
class _Need:
    """One embedder's work: its key, cache-key -> paths, waiting prepared clips and their locks."""

    ekey: str
    emb: Embedder
    by_key: dict[str, list[str]]
    pending: list[tuple[str, LoadedAudio]]
    locks: dict[str, Any]
    deferred: list[str]
    pending_bytes: int = 0
    pending_s: float = 0.0


class _InlineExecutor:
    """``submit`` that runs the task at once (``num_workers=0``)."""

    def submit(self, fn, *args):
        from concurrent.futures import Future

        f: Future = Future()
        try:
            f.set_result(fn(*args))
        except BaseException as exc:
            f.set_exception(exc)
        return f

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def _executor(io: EmbedIO):
    if io.workers == 0:
        return _InlineExecutor()
    if io.executor == "process":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(io.workers, mp_context=multiprocessing.get_context("spawn"))
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(io.workers, thread_name_prefix="embed-io")


def embed_all(
    st: EmbedState,
    embedders: list[tuple[str, Embedder]],
    files: Owners,
    progress: bool,
    compute: bool = True,
    io: EmbedIO | None = None,
) -> None:
    """Embed every file not yet in the cache for every embedder; record keys in ``st.emb_keys``.

    Same results, errors and cache/lock semantics as :func:`embed_files` per embedder, but each file is
    decoded once for all embedders and the input is prepared in a worker pool ahead of the models.
    """
    io = io or EmbedIO()
    if io.legacy:
        for ekey, emb in embedders:
            _embed_files_legacy(st, ekey, emb, files, progress, compute)
        return
    needs: list[_Need] = []
    jobs: dict[str, list[tuple[int, str]]] = {}  # path -> [(need index, key)] in first-seen order
    for ekey, emb in embedders:
        by_key = _keys(st, emb, files)
        need = _Need(ekey, emb, by_key, [], {}, [])
        missing = _record_cached(st, ekey, by_key, files)  # hits are recorded even when not computing
        for key in missing if compute else []:
            jobs.setdefault(by_key[key][0], []).append((len(needs), key))
        needs.append(need)
    total = sum(len(v) for v in jobs.values())
    if total == 0:
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="embed", disable=not progress, unit="item")
    budget = float(io.prefetch_mb) * 2**20
    ex = _executor(io)
    window: deque = deque()  # (future, path, [(need index, key)]) in submission order
    queue = iter(jobs.items())
    depth = max(1, io.workers) * int(io.prefetch)
    try:
        while True:
            while len(window) < depth:
                job = next(queue, None)
                if job is None:
                    break
                path, wanted = job
                held = _lock_job(st, needs, wanted, files, bar)
                if held:
                    specs = _distinct_specs([needs[i].emb.audio for i, _ in held])
                    window.append((ex.submit(prepare_job, path, specs), specs, held))
            if not window:
                break
            fut, specs, held = window.popleft()
            try:
                results = fut.result()
            except _LOAD_ERRORS as exc:  # a process worker that died, a pickling error ...
                results = [_load_reason(exc)] * len(specs)
            for i, key in held:
                need = needs[i]
                res = results[specs.index(need.emb.audio)]
                if isinstance(res, str):
                    _fail(st, need.by_key[key], files, res)
                    need.locks.pop(key).release()
                    bar.update(1)
                    continue
                need.pending.append((key, res))
                need.pending_bytes += res.wav.nbytes
                need.pending_s += res.wav.shape[0] / need.emb.audio.sample_rate
                if _batch_full(need, io):
                    _flush(st, need, files, bar)
            while sum(n.pending_bytes for n in needs) > budget:
                _flush(st, max(needs, key=lambda n: n.pending_bytes), files, bar)
        for need in needs:
            _flush(st, need, files, bar)
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
        for need in needs:
            for lock in need.locks.values():
                lock.release()
            need.locks.clear()
    for need in needs:
        if need.deferred:
            log.info("embed %s: waiting for %d entries another process is computing", need.ekey, len(need.deferred))
            _embed_pass(st, need.ekey, need.emb, need.deferred, need.by_key, files, bar, wait=True)
    bar.close()


def _distinct_specs(specs: list[AudioSpec]) -> list[AudioSpec]:
    out: list[AudioSpec] = []
    for s in specs:
        if s not in out:
            out.append(s)
    return out


def _lock_job(st: EmbedState, needs: list[_Need], wanted, files: Owners, bar) -> list[tuple[int, str]]:
    """Lock the entries of one file job (non-blocking); entries locked elsewhere are deferred, entries
    finished meanwhile recorded. Returns the (need index, key) pairs to compute."""
    from filelock import Timeout

    held = []
    for i, key in wanted:
        need = needs[i]
        lock = st.cache.lock(key)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            need.deferred.append(key)
            continue
        got = st.cache.get_with_meta(key)  # finished by another process meanwhile?
        if got is not None:
            lock.release()
            _record(st, need.ekey, key, need.by_key[key], files, got[1])
            st.counters["embed_cache_hits"] += 1
            bar.update(1)
            continue
        need.locks[key] = lock
        held.append((i, key))
    return held


def _batch_full(need: _Need, io: EmbedIO) -> bool:
    if io.batch_audio_s is not None:
        return need.pending_s >= float(io.batch_audio_s)
    return len(need.pending) >= max(1, int(need.emb.batch_size))


def _flush(st: EmbedState, need: _Need, files: Owners, bar) -> None:
    """Embed and store ``need``'s waiting clips, then release their locks."""
    items, need.pending, need.pending_bytes, need.pending_s = need.pending, [], 0, 0.0
    if not items:
        return
    try:
        _embed_loaded(st, need.ekey, need.emb, items, need.by_key, files)
    finally:
        for key, _ in items:
            need.locks.pop(key).release()
        bar.update(len(items))


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
