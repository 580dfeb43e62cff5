"""Melody agreement of each generated clip with its prompt's conditioning / reference audio.

For prompt sets whose prompts carry a ``reference`` clip (MusicCaps pairs, the demo's held-out
clips, a melody to condition on), every generated clip ``"pid"``/``"pid#k"`` is compared with the
reference clip of ``pid`` (``MetricInput.paired``), frame by frame over the first
``min(T_gen, T_ref)`` frames (both start at t = 0).

- :class:`ChromaCosine` (MusicGen, Copet et al. 2023; AudioCraft's ``ChromaCosineSimilarityMetric``):
  on the :class:`bench.embedders.chroma.ChromaEmbedder` chromagrams, optionally quantised to the
  one-hot arg-max pitch class per frame (``argmax: true``, MusicGen's evaluation setting),
  ``cos(c_ref[t], c_gen[t])`` (eps 1e-8). The value is the sum of the frame cosines over all pairs
  divided by the total frame count, as AudioCraft accumulates it; ``per_item`` = each clip's mean.
- :class:`PitchAccuracy` on :class:`bench.embedders.crepe.CrepeEmbedder` pitch tracks: a frame is
  voiced when CREPE's periodicity >= ``voicing_threshold``. Raw pitch accuracy (RPA, mir_eval's
  definition with binary voicing): among the reference's voiced frames, the fraction where the
  generated clip is voiced and within ``cent_tolerance`` (50 cents) of the reference f0. Raw chroma
  accuracy (RCA, extra ``rca``): the same with octave errors forgiven. The value is the mean RPA
  over pairs (clips whose reference has no voiced frame are skipped and counted in ``n_unvoiced``).

Higher is better for both (1 = same pitch content). Bootstrap: prompt resampling of the per-clip
terms (exact weighted sums / means, :mod:`bench.metrics.bootstrap`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.metrics.base import BootstrapMetric, MetricInput, MetricResult, MetricUnavailable, prompt_of
from bench.metrics.bootstrap import weighted_mean_replicates

log = logging.getLogger(__name__)


# -- pure functions ------------------------------------------------------------------------------
def one_hot_argmax(c: np.ndarray) -> np.ndarray:
    """Each row of ``c (T, n)`` replaced by the one-hot vector of its arg-max (first on ties)."""
    out = np.zeros_like(c, dtype=np.float64)
    out[np.arange(len(c)), np.argmax(c, axis=1)] = 1.0
    return out


def frame_cosines(ref: np.ndarray, gen: np.ndarray, argmax: bool = False, eps: float = 1e-8) -> np.ndarray:
    """Frame-wise cosine of two chromagrams ``(T, n)`` over their first ``min(T)`` frames -> ``(t,)``."""
    t = min(len(ref), len(gen))
    a = np.asarray(ref[:t], dtype=np.float64)
    b = np.asarray(gen[:t], dtype=np.float64)
    if argmax:
        a, b = one_hot_argmax(a), one_hot_argmax(b)
    na = np.maximum(np.linalg.norm(a, axis=1), eps)
    nb = np.maximum(np.linalg.norm(b, axis=1), eps)
    return (a * b).sum(1) / (na * nb)


def hz_to_cents(f: np.ndarray, ref_hz: float = 10.0) -> np.ndarray:
    """``1200 log2(f / 10 Hz)`` (mir_eval's reference frequency); non-positive f -> 0."""
    f = np.asarray(f, dtype=np.float64)
    out = np.zeros_like(f)
    pos = f > 0
    out[pos] = 1200.0 * np.log2(f[pos] / ref_hz)
    return out


def pitch_agreement(
    ref_f0: np.ndarray,
    ref_voiced: np.ndarray,
    gen_f0: np.ndarray,
    gen_voiced: np.ndarray,
    cent_tolerance: float = 50.0,
) -> tuple[float, float, int]:
    """``(RPA, RCA, n_ref_voiced)`` over the first ``min(T)`` frames (NaN, NaN, 0 without voiced reference frames)."""
    t = min(len(ref_f0), len(gen_f0))
    rv = np.asarray(ref_voiced[:t], dtype=bool) & (np.asarray(ref_f0[:t]) > 0)
    gv = np.asarray(gen_voiced[:t], dtype=bool) & (np.asarray(gen_f0[:t]) > 0)
    n = int(rv.sum())
    if n == 0:
        return float("nan"), float("nan"), 0
    diff = np.abs(hz_to_cents(ref_f0[:t]) - hz_to_cents(gen_f0[:t]))
    both = rv & gv
    rpa = float((both & (diff <= cent_tolerance)).sum() / n)
    folded = np.abs(diff - 1200.0 * np.floor(diff / 1200.0 + 0.5))
    rca = float((both & (folded <= cent_tolerance)).sum() / n)
    return rpa, rca, n


# -- wrappers ------------------------------------------------------------------------------------
class _PairedFeatureMetric(BootstrapMetric):
    """Pairs generated clips with their prompt's reference clip; embedder must give ``feature``."""

    needs_reference = False
    needs_pairs = True
    lower_is_better = False
    feature = ""
    embedder_hint = ""

    def check(self, inp: MetricInput) -> None:
        super().check(inp)
        if getattr(inp.embedder, "feature", None) != self.feature:
            name = getattr(inp.embedder, "name", None)
            raise MetricUnavailable(f"{self.name} needs the {self.embedder_hint} embedder, not {name}")

    def pairs(self, inp: MetricInput) -> tuple[list[str], Callable[[str], np.ndarray], int]:
        """Generated ids that have a paired clip, a loader of a prompt's reference frames, #unpaired."""
        paired = inp.paired
        assert paired is not None and paired.load is not None
        available = set(paired.ids)
        ids = [i for i in inp.gen.ids if prompt_of(i) in available]
        n_unpaired = len(inp.gen.ids) - len(ids)
        if not ids:
            raise MetricUnavailable(f"{self.name}: no generated clip has a paired reference clip")
        if n_unpaired:
            log.warning("%s: %d generated clips have no paired reference clip and are skipped", self.name, n_unpaired)
        load = paired.load
        return ids, lambda pid: np.asarray(load(pid)["emb"]), n_unpaired


class ChromaCosine(_PairedFeatureMetric):
    """MusicGen's chroma cosine similarity between generated clips and their reference melody (higher is better).

    Args:
        argmax: one-hot arg-max pitch class per frame first (MusicGen's evaluation: true).
        eps: cosine epsilon (1e-8).
        **bootstrap: n_bootstrap, ci, ci_method (:class:`~bench.metrics.base.BootstrapMetric`).
    """

    name = "chroma_cosine"
    feature = "chroma"
    embedder_hint = "chroma"
    fixed_params = {"frames": "min(T_gen,T_ref)", "aggregate": "frame_weighted"}

    def __init__(self, argmax: bool = True, eps: float = 1e-8, **bootstrap: Any):
        self.argmax = bool(argmax)
        self.eps = float(eps)
        super().__init__(**bootstrap)

    def compute(self, inp: MetricInput) -> MetricResult:
        ids, ref_of, n_unpaired = self.pairs(inp)
        sums, counts = [], []
        for i in ids:
            cos = frame_cosines(ref_of(prompt_of(i)), inp.gen.load(i)["emb"], self.argmax, self.eps)  # type: ignore[misc]
            sums.append(float(cos.sum()))
            counts.append(len(cos))
        s, c = np.asarray(sums), np.asarray(counts, dtype=np.float64)
        res = MetricResult(
            value=float(s.sum() / c.sum()),
            n=len(ids),
            per_item={i: float(a / b) for i, a, b in zip(ids, s, c)},
            extras={"n_unpaired": float(n_unpaired), "n_frames": float(c.sum())},
        )
        if self.n_bootstrap > 0:
            w = self.clip_weights(ids, inp.seed)
            with np.errstate(invalid="ignore", divide="ignore"):
                reps = (w @ s) / (w @ c)
            self.attach_bootstrap(res, reps)
        return res


class PitchAccuracy(_PairedFeatureMetric):
    """Raw pitch accuracy of generated clips against their reference melody, from CREPE tracks (higher is better).

    Args:
        voicing_threshold: CREPE periodicity at or above which a frame counts as voiced.
        cent_tolerance: pitch match tolerance in cents (mir_eval: 50).
        **bootstrap: n_bootstrap, ci, ci_method (:class:`~bench.metrics.base.BootstrapMetric`).

    extras: ``rca`` (octave-invariant accuracy), ``n_unvoiced`` (pairs skipped: silent / unpitched
    reference), ``n_unpaired``.
    """

    name = "pitch_accuracy"
    feature = "pitch"
    embedder_hint = "crepe"
    fixed_params = {"frames": "min(T_gen,T_ref)", "aggregate": "mean_over_clips"}

    def __init__(self, voicing_threshold: float = 0.5, cent_tolerance: float = 50.0, **bootstrap: Any):
        if not 0.0 <= float(voicing_threshold) <= 1.0:
            raise ValueError(f"voicing_threshold must be in [0, 1], got {voicing_threshold}")
        self.voicing_threshold = float(voicing_threshold)
        self.cent_tolerance = float(cent_tolerance)
        super().__init__(**bootstrap)

    def compute(self, inp: MetricInput) -> MetricResult:
        ids, ref_of, n_unpaired = self.pairs(inp)
        kept, rpas, rcas = [], [], []
        for i in ids:
            r = ref_of(prompt_of(i))
            g = np.asarray(inp.gen.load(i)["emb"])  # type: ignore[misc]
            th = self.voicing_threshold
            rpa, rca, n = pitch_agreement(r[:, 0], r[:, 1] >= th, g[:, 0], g[:, 1] >= th, self.cent_tolerance)
            if n:
                kept.append(i)
                rpas.append(rpa)
                rcas.append(rca)
        if not kept:
            raise MetricUnavailable(f"{self.name}: no reference clip has a voiced frame (periodicity >= {th})")
        v, c = np.asarray(rpas), np.asarray(rcas)
        res = MetricResult(
            value=float(v.mean()),
            n=len(kept),
            per_item=dict(zip(kept, map(float, v))),
            extras={"rca": float(c.mean()), "n_unvoiced": float(len(ids) - len(kept)), "n_unpaired": float(n_unpaired)},
        )
        if self.n_bootstrap > 0:
            self.attach_bootstrap(res, weighted_mean_replicates(v, self.clip_weights(kept, inp.seed)))
        return res
