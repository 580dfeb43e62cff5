"""Turning untrusted ids (from prompt files, manifests) into safe file names."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_id(raw: object, max_len: int = 80) -> str:
    """A filesystem-safe, collision-resistant name for an arbitrary id.

    Keeps ``[A-Za-z0-9._-]`` (after NFKD ascii folding), replaces other runs with ``_``,
    strips leading dots, and appends an 8-hex digest of the raw id whenever the result differs
    from the input (so ``"a/b"`` and ``"a_b"`` never collide). Never empty, never ``.``/``..``.
    """
    text = str(raw)
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = _SAFE.sub("_", folded).strip("._")[:max_len]
    if name != text or not name:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        name = f"{name}-{digest}" if name else f"id-{digest}"
    return name


def inside(root: str | Path, *parts: str) -> Path:
    """Join ``parts`` under ``root`` and refuse any result that escapes ``root``."""
    root_r = Path(root).resolve()
    p = root_r.joinpath(*parts).resolve()
    if p != root_r and root_r not in p.parents:
        raise ValueError(f"path {p} escapes output folder {root_r}")
    return p
