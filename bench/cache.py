"""Atomic, checksummed, lock-protected on-disk caches.

Every cache write goes to a temporary file in the destination folder and is renamed into
place (``os.replace`` is atomic on POSIX), so a reader never sees a half-written entry even
if the writer is SIGKILLed. Entries carry a sha256 of their payload; a corrupt entry is
treated as missing and recomputed. Concurrent writers to one cache serialise on a
per-entry file lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success (fsync and) rename it onto ``path``.

    The rename makes the write atomic for readers and against the writer being killed. ``durable``
    adds an fsync so the content also survives a power loss / OS crash; checksummed entries that are
    verified on read (the embedding and score caches) can skip it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if durable:
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
        if tmp_path.exists():  # mkstemp makes 0600 files; give results the usual umask permissions
            os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | Path, data: bytes, durable: bool = True) -> None:
    with atomic_path(path, durable=False) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def stable_hash(obj: Any, n: int = 16) -> str:
    """Short sha256 of a JSON-serialisable object with sorted keys (config / parameter hashes)."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


def write_json_checked(path: str | Path, obj: Any) -> None:
    """Atomically write ``{"sha256": ..., "data": obj}`` (checksum over the canonical JSON of ``obj``)."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    doc = json.dumps({"sha256": sha256_bytes(blob.encode()), "data": json.loads(blob)}) + "\n"
    atomic_write_bytes(path, doc.encode("utf-8"), durable=False)  # verified on read


def read_json_checked(path: str | Path) -> Any | None:
    """The ``data`` of a :func:`write_json_checked` file, or None when missing, unparsable or failing its checksum."""
    try:
        wrapped = json.loads(Path(path).read_text(encoding="utf-8"))
        blob = json.dumps(wrapped["data"], sort_keys=True, default=str, separators=(",", ":"))
        if wrapped.get("sha256") != sha256_bytes(blob.encode()):
            return None
        return wrapped["data"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


class ArrayCache:
    """Content-addressed store of named float arrays: ``root/<key[:2]>/<key>.npz``.

    Each entry is an uncompressed npz plus a ``__sha256__`` member over the other members'
    bytes (and an optional ``__meta__`` member holding a small JSON document);
    :meth:`get` returns None for missing or corrupt entries, so they are recomputed.
    Writers serialise per entry on :meth:`lock` (a file lock next to the entry).
    """

    META = "__meta__"
    SHA = "__sha256__"

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def lock(self, key: str, timeout: float = 600) -> FileLock:
        """A file lock for ``key`` (``acquire(timeout=0)`` raises ``filelock.Timeout`` if another process holds it)."""
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(p) + ".lock", timeout=timeout)

    @staticmethod
    def _digest(arrays: dict[str, np.ndarray]) -> str:
        h = hashlib.sha256()
        for name in sorted(arrays):
            a = np.ascontiguousarray(arrays[name])
            h.update(name.encode())
            h.update(str(a.dtype).encode())
            h.update(str(a.shape).encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def get_with_meta(self, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """``(arrays, meta)`` of a verified entry, or None (missing, unreadable or checksum mismatch)."""
        p = self.path(key)
        try:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception:  # missing, truncated, not a zip, bad member ...
            return None
        stored = arrays.pop(self.SHA, None)
        if stored is None or str(stored) != self._digest(arrays):
            return None
        meta: dict[str, Any] = {}
        if self.META in arrays:
            try:
                meta = json.loads(str(arrays.pop(self.META)))
            except ValueError:
                return None
        return arrays, meta

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        got = self.get_with_meta(key)
        return None if got is None else got[0]

    def has(self, key: str) -> bool:
        """True when a *verified* entry exists (reads and checks it)."""
        return self.get_with_meta(key) is not None

    def put(self, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> None:
        """Write an entry atomically (readers see the old entry or the whole new one, never a part)."""
        payload = {k: np.asarray(v) for k, v in arrays.items()}
        if self.META in payload or self.SHA in payload:
            raise ValueError(f"array names {self.META!r} and {self.SHA!r} are reserved")
        if meta is not None:
            payload[self.META] = np.array(json.dumps(meta, sort_keys=True, default=str))
        payload[self.SHA] = np.array(self._digest(payload))
        buf = io.BytesIO()
        np.savez(buf, **payload)
        atomic_write_bytes(self.path(key), buf.getvalue(), durable=False)  # verified on read: no fsync needed

    def sweep_tmp(self, max_age_s: float = 3600.0) -> int:
        """Delete temp files left by writers killed mid-write (older than ``max_age_s``); returns the count."""
        import time

        if not self.root.is_dir():
            return 0
        now, n = time.time(), 0
        for sub in os.scandir(self.root):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for f in os.scandir(sub.path):
                if f.name.startswith(".") and f.name.endswith(".tmp"):
                    with contextlib.suppress(OSError):
                        if now - f.stat(follow_symlinks=False).st_mtime > max_age_s:
                            os.unlink(f.path)
                            n += 1
        return n
