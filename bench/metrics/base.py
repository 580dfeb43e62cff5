"""Metric wrappers: thin stateful shells around the pure functions in ``bench.metrics``.

The pipeline hands every metric a :class:`MetricInput` (embeddings of one model's outputs
for one prompt set, the reference set's embeddings or statistics, prompt texts, the
embedder for text towers) and gets a :class:`MetricResult` back.

Item ids of generated audio are ``"<prompt_id>"`` or ``"<prompt_id>#<k>"`` (k-th sample).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from bench.identity import Configured


class MetricUnavailable(RuntimeError):
    """The metric cannot be computed for this input (reason in the message); reported, not faked."""


def prompt_of(item_id: str) -> str:
    """``"p1#2"`` -> ``"p1"``."""
    return item_id.split("#", 1)[0]


@dataclass
class EmbeddingSet:
    """Embeddings of a set of clips, loaded lazily from the cache.

    ids: item ids, in a fixed order.
    load: ``id -> {"emb": (T, D) float32, "probs": (C,) optional}``.
    stats: precomputed Gaussian statistics ``{"mu": (D,), "sigma": (D, D), "n": int}`` when the
        set is given only as statistics (then ``ids`` is empty).
    """

    name: str
    ids: list[str]
    load: Callable[[str], dict[str, np.ndarray]] | None = None
    stats: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def iter_emb(self) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(id, (T, D) float32)`` one clip at a time (memory stays flat)."""
        assert self.load is not None, f"{self.name} holds statistics only"
        for i in self.ids:
            yield i, self.load(i)["emb"]

    def frames(self) -> np.ndarray:
        """All frames stacked ``(sum T, D)`` float32 (small sets only)."""
        return np.concatenate([e for _, e in self.iter_emb()], axis=0)

    def clip_embeddings(self) -> np.ndarray:
        """Per-clip mean over frames ``(N, D)`` float64."""
        return np.stack([e.astype(np.float64).mean(axis=0) for _, e in self.iter_emb()])

    def probs(self) -> np.ndarray:
        """Clip-level class probabilities ``(N, C)`` float64; MetricUnavailable if absent."""
        assert self.load is not None
        out = []
        for i in self.ids:
            d = self.load(i)
            if "probs" not in d:
                raise MetricUnavailable(f"embedder gives no class probabilities for {self.name}")
            out.append(d["probs"].astype(np.float64))
        return np.stack(out)

    @property
    def has_items(self) -> bool:
        return bool(self.ids) and self.load is not None


@dataclass
class MetricInput:
    """What a metric sees for one (model, prompt set, reference set, embedder) cell.

    gen: generated clips' embeddings (ids ``prompt_id`` or ``prompt_id#k``).
    ref: the reference set (items or statistics), or None.
    paired: embeddings of each prompt's own reference clip, keyed by prompt id (for KL).
    texts: prompt id -> prompt text.
    embedder: the embedder instance (its ``embed_text`` serves text-audio metrics).
    seed: seed for bootstrap / subsampling.
    """

    gen: EmbeddingSet
    ref: EmbeddingSet | None = None
    paired: EmbeddingSet | None = None
    texts: dict[str, str] = field(default_factory=dict)
    embedder: Any = None
    seed: int = 0


@dataclass
class MetricResult:
    """A metric value with its uncertainty.

    value: the metric on the full set.
    ci_low / ci_high: bootstrap percentile interval (None without bootstrap).
    n: number of generated clips used.
    extras: further named scalars (e.g. ``{"recall": ..}`` for PRDC, ``{"r2": ..}`` for FAD-inf);
        the leaderboard writes each as metric ``"<name>.<key>"``.
    per_item: per generated clip (or per prompt) scores, keyed by item id, or None.
    replicates: ``(B,)`` values on the shared prompt resamples of
        :func:`bench.metrics.bootstrap.prompt_resamples` (same seed + same prompt ids => same
        resamples in every run), used for paired significance tests across models and runs.
    curve: ``[(n, value), ...]`` points behind an extrapolated metric (FAD-inf's FAD-vs-n), or None.
    """

    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    extras: dict[str, float] = field(default_factory=dict)
    per_item: dict[str, float] | None = None
    replicates: list[float] | None = None
    curve: list[tuple[float, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "extras": self.extras,
            "per_item": self.per_item,
            "replicates": self.replicates,
            "curve": self.curve,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MetricResult:
        d = dict(d)
        if d.get("curve") is not None:
            d["curve"] = [tuple(p) for p in d["curve"]]
        return cls(**d)


class Metric(Configured, ABC):
    """Base for pipeline metrics. Set ``name`` and the ``needs_*`` flags; implement :meth:`compute`.

    ``lower_is_better`` tells the leaderboard how to rank. Identity (:meth:`params`, :attr:`id`, the
    score-cache key) = ``name`` + :attr:`fixed_params` + every constructor argument not in
    :attr:`non_value_params`, read back from the attribute of the same name (:mod:`bench.identity`).
    """

    name: str = "metric"
    lower_is_better: bool = True
    needs_reference: bool = True
    needs_text: bool = False
    needs_probs: bool = False
    needs_pairs: bool = False
    #: constructor arguments that change memory use or speed, never the value
    non_value_params: ClassVar[tuple[str, ...]] = (
        "device", "block", "batch_size", "text_batch", "cache_max_bytes", "bootstrap_max_bytes", "progress",
        "num_workers",
    )

    def params(self) -> dict[str, Any]:
        """Everything that changes the value (part of the score cache key and the manifest)."""
        return {"name": self.name, **self.fixed_params, **self.value_params()}

    def check(self, inp: MetricInput) -> None:
        """Raise :class:`MetricUnavailable` with a reason if ``inp`` cannot support this metric."""
        if self.needs_reference and inp.ref is None:
            raise MetricUnavailable(f"{self.name} needs a reference set")
        if self.needs_text and (inp.embedder is None or not inp.embedder.has_text):
            name = getattr(inp.embedder, "name", None)
            raise MetricUnavailable(f"{self.name} needs a joint text-audio embedder; {name} has no text tower")
        if self.needs_pairs and (inp.paired is None or not inp.paired.has_items):
            raise MetricUnavailable(f"{self.name} needs prompts paired with reference clips")
        if self.needs_probs and getattr(inp.embedder, "class_names", None) is None:
            name = getattr(inp.embedder, "name", None)
            raise MetricUnavailable(f"{self.name} needs a classifier embedder; {name} gives no class probabilities")

    @abstractmethod
    def compute(self, inp: MetricInput) -> MetricResult:
        """Compute on ``inp`` (already :meth:`check`-ed)."""

    def __call__(self, inp: MetricInput) -> MetricResult:
        self.check(inp)
        return self.compute(inp)


class BootstrapMetric(Metric):
    """A metric with the shared prompt-resampling bootstrap (:mod:`bench.metrics.bootstrap`).

    Args:
        n_bootstrap: replicates (0 disables intervals and ``replicates``).
        ci: confidence level of the interval.
        ci_method: "percentile", "basic" or "shifted"; None = the class's :attr:`default_ci_method`.

    Subclasses take their own arguments and pass ``**bootstrap`` on to this constructor.
    """

    #: interval method when ``ci_method`` is not given ("shifted" for biased set-level distances)
    default_ci_method: ClassVar[str] = "percentile"

    def __init__(self, n_bootstrap: int = 200, ci: float = 0.95, ci_method: str | None = None):
        from bench.metrics.bootstrap import check_ci_method

        self.n_bootstrap = int(n_bootstrap)
        self.ci = float(ci)
        self.ci_method = check_ci_method(self.default_ci_method if ci_method is None else ci_method)

    def clip_weights(self, item_ids: list[str], seed: int) -> np.ndarray:
        """Replicate weights ``(n_bootstrap, n_items)`` of :func:`bench.metrics.bootstrap.clip_weights`."""
        from bench.metrics.bootstrap import clip_weights

        return clip_weights(item_ids, self.n_bootstrap, seed)

    def attach_bootstrap(self, res: MetricResult, replicates: np.ndarray) -> MetricResult:
        """Set ``res.replicates`` and its interval at :attr:`ci` by :attr:`ci_method`."""
        from bench.metrics.bootstrap import attach_bootstrap

        return attach_bootstrap(res, replicates, self.ci, self.ci_method)
