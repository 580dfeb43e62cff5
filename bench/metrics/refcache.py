"""In-process memo of reference-set derived quantities (statistics, clip embeddings, kernel sums).

The pipeline scores every model against the same reference set; streaming the reference
embeddings once per (model, metric) cell would dominate the run time. Entries are keyed by
a *fingerprint* of the :class:`EmbeddingSet` (name, item ids and the bytes of its first and
last embeddings, or the bytes of its statistics) plus the caller's parameters, and kept in a
small LRU (``MAX_ENTRIES``).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from bench.cache import stable_hash
from bench.metrics.base import EmbeddingSet

T = TypeVar("T")
MAX_ENTRIES = 16
_CACHE: OrderedDict[str, Any] = OrderedDict()
_LOCK = threading.Lock()


def fingerprint(es: EmbeddingSet) -> str:
    """Content fingerprint of an embedding set (cheap: loads at most two items)."""
    h = hashlib.sha256()
    h.update(es.name.encode())
    h.update("\n".join(es.ids).encode())
    if es.has_items:
        for i in {es.ids[0], es.ids[-1]}:
            h.update(np.ascontiguousarray(es.load(i)["emb"]).tobytes())  # type: ignore[misc]
    if es.stats is not None:
        for k in ("mu", "sigma", "n"):
            if k in es.stats:
                h.update(np.ascontiguousarray(np.asarray(es.stats[k])).tobytes())
    return h.hexdigest()[:24]


def cached(kind: str, es: EmbeddingSet, params: dict[str, Any], fn: Callable[[], T]) -> T:
    """Return ``fn()`` memoised under ``(kind, fingerprint(es), params)``."""
    key = f"{kind}:{fingerprint(es)}:{stable_hash(params, 16)}"
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    value = fn()
    with _LOCK:
        _CACHE[key] = value
        while len(_CACHE) > MAX_ENTRIES:
            _CACHE.popitem(last=False)
    return value


def clear() -> None:
    with _LOCK:
        _CACHE.clear()


def clip_pair(inp: Any, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """``(reference, generated)`` per-clip mean embeddings ``(N_ref, D)``, ``(N_gen, D)`` float64.

    The reference side is memoised per set. Raises MetricUnavailable when the reference holds
    statistics only or the dimensions differ.
    """
    from bench.metrics.base import MetricUnavailable

    ref_set = inp.ref
    if ref_set is None or not ref_set.has_items:
        raise MetricUnavailable(f"{metric} needs reference embeddings, not statistics")
    ref = cached("emb", ref_set, {"pooling": "clip"}, ref_set.clip_embeddings)
    gen = inp.gen.clip_embeddings()
    if ref.shape[1] != gen.shape[1]:
        raise MetricUnavailable(f"embedding dims differ: reference {ref.shape[1]}, generated {gen.shape[1]}")
    return ref, gen
