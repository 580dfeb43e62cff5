"""Metrics: pure functions on embeddings / probabilities plus thin pipeline wrappers."""

from __future__ import annotations

import importlib
from typing import Any

#: config key -> wrapper class (``configs/metric/<key>.yaml`` instantiates the same targets)
REGISTRY: dict[str, str] = {
    "fad": "bench.metrics.fad.FAD",
    "fad_inf": "bench.metrics.fad.FADInf",
    "kad": "bench.metrics.kad.KAD",
    "clap_score": "bench.metrics.clap_score.CLAPScore",
    "kl": "bench.metrics.kl.KL",
    "inception_score": "bench.metrics.inception.InceptionScore",
    "prdc": "bench.metrics.prdc.PRDC",
    "memorization": "bench.metrics.memorization.Memorization",
    "mad": "bench.metrics.mad.MAD",
    "chroma_cosine": "bench.metrics.melody.ChromaCosine",
    "pitch_accuracy": "bench.metrics.melody.PitchAccuracy",
    "aes_ce": "bench.metrics.aesthetics.AestheticsCE",
    "aes_cu": "bench.metrics.aesthetics.AestheticsCU",
    "aes_pc": "bench.metrics.aesthetics.AestheticsPC",
    "aes_pq": "bench.metrics.aesthetics.AestheticsPQ",
}


def metric_class(key: str) -> type:
    """Wrapper class for a registry key (imported lazily: torch is only loaded by KAD)."""
    try:
        path = REGISTRY[key]
    except KeyError:
        raise KeyError(f"unknown metric {key!r}; known: {sorted(REGISTRY)}") from None
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def build_metric(key: str, **kwargs: Any):
    """Instantiate a metric wrapper by key, e.g. ``build_metric("fad", n_bootstrap=0)``."""
    return metric_class(key)(**kwargs)
