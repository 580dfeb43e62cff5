"""Fair comparison: which prompt ids each model is scored on.

Set metrics (FAD, KAD, PRDC) are biased by the number of clips, and models scored on different
prompts are not comparable. ``coverage`` (top-level config key) decides, per prompt set:

- ``intersect`` (default): every model is scored on the prompt ids *all* available models produced;
- ``each``: every model on whatever it produced (tables then note that ``n`` differs);
- ``error``: stop (exit 2) when the models do not cover the same prompt ids.

Pure functions over ``{model: {item_id: path}}``; the pipeline writes the result to ``missing.csv``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import ConfigError
from bench.metrics.base import prompt_of

log = logging.getLogger(__name__)

MODES = ("intersect", "each", "error")
MISSING_COLUMNS = ("model", "prompt_set", "item_id", "status")


@dataclass
class Coverage:
    """Outcome for one prompt set: kept items per model, and the rows of ``missing.csv``."""

    prompt_set: str
    n_prompts: int
    covered: dict[str, int]  # model -> prompt ids it produced
    common: set[str] | None  # prompt ids every model produced (None with coverage=each)
    kept: dict[str, dict[str, Path]]
    rows: list[dict[str, str]] = field(default_factory=list)

    def manifest_entry(self, mode: str) -> dict:
        """What ``manifest.json`` records for this prompt set."""
        return {"mode": mode, "n_prompts": self.n_prompts, "covered": self.covered,
                "n_common": None if self.common is None else len(self.common)}

    def summary(self) -> str:
        parts = ", ".join(f"{m} {n:,}" for m, n in self.covered.items())
        head = f"prompts {self.prompt_set}: {parts} of {self.n_prompts:,} prompts"
        if self.common is None:
            return f"{head}; coverage=each: every model scored on its own ids, n differs between rows"
        return f"{head}; scoring the {len(self.common):,} common ids (coverage=intersect; lists in missing.csv)"


def apply_coverage(
    prompt_set: str, prompt_ids: list[str], audio: Mapping[str, Mapping[str, Path]], mode: str = "intersect"
) -> Coverage:
    """Restrict each model's ``{item_id: path}`` to the prompt ids the ``mode`` allows.

    Raises :class:`ConfigError` for an unknown mode, with ``mode="error"`` when the models cover
    different prompt ids, and with ``intersect`` when no prompt id is covered by every model.
    """
    if mode not in MODES:
        raise ConfigError(f"coverage must be one of {list(MODES)}, got {mode!r}")
    ids_of = {m: {prompt_of(i) for i in items} for m, items in audio.items()}
    covered = {m: len(ids) for m, ids in ids_of.items()}
    all_ids = set(prompt_ids)
    rows = [
        {"model": m, "prompt_set": prompt_set, "item_id": pid, "status": "missing"}
        for m, ids in ids_of.items()
        for pid in prompt_ids
        if pid not in ids
    ]
    if mode == "each" or len(audio) == 0:
        return Coverage(prompt_set, len(prompt_ids), covered, None, {m: dict(v) for m, v in audio.items()}, rows)
    common = set.intersection(*ids_of.values()) & all_ids if ids_of else set()
    cov = Coverage(prompt_set, len(prompt_ids), covered, common, {}, rows)
    if mode == "error" and any(ids != common for ids in ids_of.values()):
        raise ConfigError(f"{cov.summary().split(';')[0]}: models cover different prompt ids (coverage=error); "
                          "use coverage=intersect (score the common ids) or coverage=each")
    if not common:
        empty = [m for m, n in covered.items() if n == 0]
        none = f" ({', '.join(empty)} matched no prompt at all)" if empty else ""
        raise ConfigError(f"{cov.summary().split(';')[0]}: no prompt id is covered by every model{none}; check the "
                          "file names (model.<key>.pattern) or use coverage=each")
    for m, items in audio.items():
        cov.kept[m] = {i: p for i, p in items.items() if prompt_of(i) in common}
        cov.rows += [{"model": m, "prompt_set": prompt_set, "item_id": pid, "status": "excluded"}
                     for pid in sorted(ids_of[m] - common)]
    return cov


def restrict_run_audio(
    audio: dict[tuple[str, str], dict[str, Path]], prompt_ids: Mapping[str, list[str]], model_keys: list[str],
    mode: str = "intersect",
) -> dict[str, Coverage]:
    """:func:`apply_coverage` for every prompt set of a run, over ``audio[(model, prompt set)]``
    (restricted in place); logs a warning per prompt set whose models do not all cover every prompt."""
    out = {}
    for ps_key, ids in prompt_ids.items():
        per_model = {m: audio[(m, ps_key)] for m in model_keys if (m, ps_key) in audio}
        cov = out[ps_key] = apply_coverage(ps_key, ids, per_model, mode)
        for m, items in cov.kept.items():
            audio[(m, ps_key)] = items
        if len(set(cov.covered.values())) > 1 or any(n < len(ids) for n in cov.covered.values()):
            log.warning("coverage: %s", cov.summary())
    return out
