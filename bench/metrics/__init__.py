"""Metrics: pure functions on embeddings / probabilities plus thin pipeline wrappers.

The metrics that exist are the option files ``bench/configs/metric/*.yaml`` (:mod:`bench.registry`).
"""

from __future__ import annotations

from typing import Any


def registry() -> dict[str, str]:
    """Config key -> wrapper class path, read from ``bench/configs/metric/*.yaml``."""
    from bench.registry import index

    return {k: o.target for k, o in index("metric").items()}


def metric_class(key: str) -> type:
    """Wrapper class for a metric key (imported lazily: torch is only loaded by KAD)."""
    from bench.registry import index

    options = index("metric")
    if key not in options:
        raise KeyError(f"unknown metric {key!r}; known: {sorted(options)}")
    return options[key].load()


def build_metric(key: str, **kwargs: Any):
    """Instantiate a metric wrapper by key, e.g. ``build_metric("fad", n_bootstrap=0)``."""
    return metric_class(key)(**kwargs)


def __getattr__(name: str) -> Any:
    if name == "REGISTRY":  # the former hand-kept dict, now derived from the option files
        return registry()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
