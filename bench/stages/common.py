"""What the stages share: the components a run was configured with, its counters, the file owners."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: run counters, in manifest order
COUNTERS: tuple[str, ...] = ("generated", "embedded", "embed_cache_hits", "scored", "score_cache_hits")

#: audio path -> every ``(owner, set, item id)`` that uses it; owner is a model key, "reference" or "paired"
Owners = dict[str, list[tuple[str, str, str]]]


@dataclass
class Component:
    """A configured model or embedder: ``obj`` when it could be built, else ``error`` says why not."""

    key: str
    obj: Any = None
    error: str | None = None


def new_counters() -> dict[str, int]:
    return dict.fromkeys(COUNTERS, 0)
