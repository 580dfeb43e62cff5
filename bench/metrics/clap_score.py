"""CLAP score: cosine similarity between each generated clip and its own prompt in a joint
text-audio embedding space (as stable-audio-metrics' ``clap_score`` and AudioLDM's CLAP metric).

Audio side: the clip embedding = mean over the clip's frames (windows of long audio, as
stable-audio-metrics does); text side: ``embedder.embed_text(prompt)``. Score = mean over
generated clips of ``cos(audio_i, text_{prompt(i)})`` (``torch.nn.functional.cosine_similarity``
with ``eps=1e-8``), optionally x100 (``scale=100``, the convention of some papers). Higher is better.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.metrics.base import BootstrapMetric, MetricInput, MetricResult, MetricUnavailable, prompt_of
from bench.metrics.bootstrap import weighted_mean_replicates


def cosine_rows(a: np.ndarray, b: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Row-wise cosine similarity of ``a (n, D)`` and ``b (n, D)`` -> ``(n,)`` float64."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na = np.maximum(np.linalg.norm(a, axis=1), eps)
    nb = np.maximum(np.linalg.norm(b, axis=1), eps)
    return (a * b).sum(1) / (na * nb)


def clap_score(audio: np.ndarray, text: np.ndarray, scale: float = 1.0) -> tuple[float, np.ndarray]:
    """Mean paired cosine (x ``scale``) and the per-clip cosines for ``audio (n, D)`` / ``text (n, D)``."""
    cos = cosine_rows(audio, text)
    return float(scale * cos.mean()), cos


def per_prompt_means(values: np.ndarray, item_ids: Sequence[str]) -> dict[str, float]:
    """Average per-clip values over the clips of each prompt (``"pid#k"`` -> ``"pid"``)."""
    groups: dict[str, list[float]] = {}
    for v, i in zip(values, item_ids):
        groups.setdefault(prompt_of(i), []).append(float(v))
    return {p: float(np.mean(v)) for p, v in groups.items()}


class CLAPScore(BootstrapMetric):
    """Text-audio agreement of generated clips with their prompts (higher is better).

    Args:
        scale: 1 (cosine in [-1, 1]) or 100.
        per_item: "clip" (one cosine per generated item) or "prompt" (mean over a prompt's samples).
        text_batch: prompts per ``embed_text`` call.
        **bootstrap: n_bootstrap, ci, ci_method (:class:`~bench.metrics.base.BootstrapMetric`).
    """

    name = "clap_score"
    lower_is_better = False
    needs_reference = False
    needs_text = True

    fixed_params = {"pooling": "clip_mean"}

    def __init__(
        self,
        scale: float = 1.0,
        per_item: str = "clip",
        text_batch: int = 64,
        **bootstrap: Any,
    ):
        if per_item not in ("clip", "prompt"):
            raise ValueError(f"per_item must be 'clip' or 'prompt', got {per_item!r}")
        self.scale = float(scale)
        self.per_item = per_item
        self.text_batch = int(text_batch)
        super().__init__(**bootstrap)

    def text_embeddings(self, inp: MetricInput, prompt_ids: Sequence[str]) -> np.ndarray:
        missing = [p for p in prompt_ids if not str(inp.texts.get(p) or "").strip()]  # e.g. prompts=[files]
        if missing:
            raise MetricUnavailable(f"CLAP score needs prompt texts; {len(missing)} missing (e.g. {missing[0]!r})")
        texts = [inp.texts[p] for p in prompt_ids]
        out = [
            np.asarray(inp.embedder.embed_text(texts[i : i + self.text_batch]), dtype=np.float64)
            for i in range(0, len(texts), self.text_batch)
        ]
        return np.concatenate(out, axis=0)

    def compute(self, inp: MetricInput) -> MetricResult:
        if not inp.gen.has_items:
            raise MetricUnavailable("CLAP score needs generated embeddings")
        ids = list(inp.gen.ids)
        pids = [prompt_of(i) for i in ids]
        uniq = sorted(set(pids))
        text = self.text_embeddings(inp, uniq)
        row = {p: j for j, p in enumerate(uniq)}
        audio = inp.gen.clip_embeddings()
        if audio.shape[1] != text.shape[1]:
            raise MetricUnavailable(f"audio dim {audio.shape[1]} != text dim {text.shape[1]}")
        value, cos = clap_score(audio, text[[row[p] for p in pids]], self.scale)
        scaled = self.scale * cos
        per_item = (
            {i: float(v) for i, v in zip(ids, scaled)} if self.per_item == "clip" else per_prompt_means(scaled, ids)
        )
        res = MetricResult(value=value, n=len(ids), per_item=per_item, extras={"n_prompts": float(len(uniq))})
        if self.n_bootstrap > 0:
            reps = weighted_mean_replicates(scaled, self.clip_weights(ids, inp.seed))
            self.attach_bootstrap(res, reps)
        return res
