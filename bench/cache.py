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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success fsync + rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


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


class ArrayCache:
    """Content-addressed store of named float arrays: ``root/<key[:2]>/<key>.npz``.

    Each entry is an uncompressed npz plus a ``__sha256__`` member over the other members'
    bytes; :meth:`get` returns None for missing or corrupt entries.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def lock(self, key: str) -> FileLock:
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(p) + ".lock", timeout=600)

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

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        p = self.path(key)
        if not p.exists():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception:
            return None
        stored = arrays.pop("__sha256__", None)
        if stored is None or str(stored) != self._digest(arrays):
            return None
        return arrays

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def put(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        payload = dict(arrays)
        payload["__sha256__"] = np.array(self._digest(arrays))
        buf = io.BytesIO()
        np.savez(buf, **payload)
        atomic_write_bytes(self.path(key), buf.getvalue())
