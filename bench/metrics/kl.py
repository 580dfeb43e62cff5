"""KL divergence between classifier label distributions of paired generated and reference clips.

Each generated clip (``"pid"`` or ``"pid#k"``) is paired with the reference clip of its prompt
(``MetricInput.paired``, keyed by prompt id). With ``p`` the reference clip's label
probabilities and ``q`` the generated clip's, both directions are reported:

- ``ref||gen`` = ``KL(p || q) = sum_c p_c (log p_c - log(q_c + eps))`` - AudioCraft's ``kld``
  (``kl_divergence(pred_probs=gen, target_probs=ref)``: ``F.kl_div((gen + eps).log(), ref)``) and
  audioldm_eval's KL; the default.
- ``gen||ref`` = ``KL(q || p) = sum_c q_c (log q_c - log(p_c + eps))`` - stable-audio-metrics'
  ``passt_kld`` (``F.kl_div((ref + 1e-6).log(), gen)``).

``eps = 1e-6`` as both; ``0 log 0 = 0``. The probabilities are the embedder's: softmax over
PaSST logits for AudioCraft / stable-audio-metrics, sigmoid for audioldm_eval's ``KL_Sigmoid``
(not renormalised unless ``renormalize=True``). The value is the mean over generated clips
(lower is better); ``direction="both"`` gives the sum of the two (AudioCraft's ``kld_both``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy.special import xlogy

from bench.metrics.base import BootstrapMetric, MetricInput, MetricResult, MetricUnavailable, prompt_of
from bench.metrics.bootstrap import weighted_mean_replicates

log = logging.getLogger(__name__)

DIRECTIONS = ("ref||gen", "gen||ref", "both")


def kl_rows(p: np.ndarray, q: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Row-wise ``KL(p || q) = sum_c p log p - p log(q + eps)`` for ``(n, C)`` arrays -> ``(n,)``."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    return (xlogy(p, p) - p * np.log(q + eps)).sum(-1)


def paired_kl(gen: np.ndarray, ref: np.ndarray, eps: float = 1e-6) -> dict[str, np.ndarray]:
    """Per-pair KL in both directions: ``{"ref||gen": (n,), "gen||ref": (n,)}``."""
    return {"ref||gen": kl_rows(ref, gen, eps), "gen||ref": kl_rows(gen, ref, eps)}


def _renorm(p: np.ndarray) -> np.ndarray:
    return p / np.clip(p.sum(-1, keepdims=True), 1e-12, None)


class KL(BootstrapMetric):
    """Paired-classifier KL divergence (lower is better).

    Args:
        direction: "ref||gen" (AudioCraft / audioldm_eval; default), "gen||ref" (stable-audio-metrics)
            or "both" (sum).
        eps: added to the second distribution inside the log.
        renormalize: divide probabilities by their sum first (e.g. sigmoid outputs).
        report_directions: also report both directions as extras ``kl_ref_gen`` and ``kl_gen_ref``
            (columns ``kl.kl_ref_gen@<embedder>``, ``kl.kl_gen_ref@<embedder>``); off by default, since
            one of them repeats the value.
        **bootstrap: n_bootstrap, ci, ci_method (:class:`~bench.metrics.base.BootstrapMetric`).

    extras: ``n_unpaired``; with ``report_directions`` also ``kl_ref_gen``, ``kl_gen_ref``.
    """

    name = "kl"
    lower_is_better = True
    needs_reference = False
    needs_pairs = True
    needs_probs = True

    def __init__(
        self,
        direction: str = "ref||gen",
        eps: float = 1e-6,
        renormalize: bool = False,
        report_directions: bool = False,
        **bootstrap: Any,
    ):
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        self.direction = direction
        self.eps = float(eps)
        self.renormalize = bool(renormalize)
        self.report_directions = bool(report_directions)
        super().__init__(**bootstrap)

    def compute(self, inp: MetricInput) -> MetricResult:
        paired = inp.paired
        assert paired is not None and paired.load is not None
        gen_probs = inp.gen.probs()
        available = set(paired.ids)
        keep = [k for k, i in enumerate(inp.gen.ids) if prompt_of(i) in available]
        n_unpaired = len(inp.gen.ids) - len(keep)
        if not keep:
            raise MetricUnavailable("KL: no generated clip has a paired reference clip")
        if n_unpaired:
            log.warning("KL: %d generated clips have no paired reference clip and are skipped", n_unpaired)
        ids = [inp.gen.ids[k] for k in keep]
        ref_cache: dict[str, np.ndarray] = {}
        for p in sorted({prompt_of(i) for i in ids}):
            d = paired.load(p)
            if "probs" not in d:
                raise MetricUnavailable(f"embedder gives no class probabilities for {paired.name}")
            ref_cache[p] = np.asarray(d["probs"], dtype=np.float64)
        ref = np.stack([ref_cache[prompt_of(i)] for i in ids])
        gen = gen_probs[keep]
        if gen.shape != ref.shape:
            raise MetricUnavailable(f"class probability shapes differ: generated {gen.shape}, reference {ref.shape}")
        if self.renormalize:
            gen, ref = _renorm(gen), _renorm(ref)
        kls = paired_kl(gen, ref, self.eps)
        per = kls["ref||gen"] + kls["gen||ref"] if self.direction == "both" else kls[self.direction]
        res = MetricResult(
            value=float(per.mean()),
            n=len(ids),
            extras={
                **({"kl_ref_gen": float(kls["ref||gen"].mean()), "kl_gen_ref": float(kls["gen||ref"].mean())}
                   if self.report_directions else {}),
                "n_unpaired": float(n_unpaired),
            },
            per_item={i: float(v) for i, v in zip(ids, per)},
        )
        if self.n_bootstrap > 0:
            reps = weighted_mean_replicates(per, self.clip_weights(ids, inp.seed))
            self.attach_bootstrap(res, reps)
        return res
