"""Leaderboard tables: the long (tidy) schema every run writes, and the wide view.

Long schema (``leaderboard_long.csv``, one row per model x prompt set x reference set x
embedder x metric; stable, documented in README):

=================  ==========================================================================
run_id             run name (``results/<run_id>/``)
config_hash        identity of the resolved run config, the same on every machine (bench.manifest.config_hash)
model              model key (bench/configs/model/<key>.yaml)
prompt_set         prompt-set key
reference_set      reference-set key ("" for reference-free metrics)
embedder           embedder key ("" for metrics that need none)
embedder_id        ``<name>-<hash(preprocessing, checkpoint digests)>``: rows only compare when equal
reference_hash     hash of the reference set's file digests (or its statistics file)
metric             metric key; extra outputs appear as ``<metric>.<extra>`` (e.g. ``prdc.recall``)
value              float (NaN unless status is "ok")
ci_low, ci_high    bootstrap interval, method per metric config (NaN when not computed)
n                  generated clips used
lower_is_better    ranking direction
status             "ok" | "unavailable" | "error"
reason             why a metric is unavailable / failed ("" when ok)
=================  ==========================================================================

The wide view (``leaderboard.csv``) has one row per model x prompt set x reference set, the
columns ``run_id, model, prompt_set, reference_set, rank, n_samples, same_n`` and one column per
``<metric>@<embedder>`` (extra outputs: ``<metric>.<extra>@<embedder>``). A cell that could not be
computed in this run (e.g. a checkpoint missing offline) is empty; its reason is in the ``reason``
column of the long table and in the Markdown/HTML notes. ``same_n`` is false on every row of a table
whose rows were scored on different numbers of clips. Combinations that can never be computed
(CLAP score without a text tower, KL/IS without class probabilities) are no columns at all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench.cache import atomic_write_text

LONG_COLUMNS: tuple[str, ...] = (
    "run_id",
    "config_hash",
    "model",
    "prompt_set",
    "reference_set",
    "embedder",
    "embedder_id",
    "reference_hash",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "lower_is_better",
    "status",
    "reason",
)
WIDE_KEYS: tuple[str, ...] = ("run_id", "model", "prompt_set", "reference_set")
#: columns naming one metric cell inside a run (replicates / per-item / curves rows join on these)
CELL6: tuple[str, ...] = ("run_id", "model", "prompt_set", "reference_set", "embedder", "metric")
#: columns naming one table cell across runs (its version is the pair embedder_id, reference_hash)
CELL5: tuple[str, ...] = CELL6[1:]
PER_ITEM_COLUMNS: tuple[str, ...] = (*CELL6, "item_id", "value")
REPLICATE_COLUMNS: tuple[str, ...] = (*CELL6, "replicate", "value")
#: FAD-vs-n points behind an extrapolated metric (``MetricResult.curve``)
CURVE_COLUMNS: tuple[str, ...] = (*CELL6, "n", "value")


def column_name(metric: str, embedder: str) -> str:
    """Wide-view column of a metric: ``"fad@vggish"`` (or just ``"fad"`` without embedder)."""
    return f"{metric}@{embedder}" if embedder else metric


def long_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Rows (dicts) -> DataFrame with exactly :data:`LONG_COLUMNS`, in order."""
    df = pd.DataFrame(list(rows))
    for c in LONG_COLUMNS:
        if c not in df.columns:
            df[c] = math.nan if c in ("value", "ci_low", "ci_high") else ""
    df = df[list(LONG_COLUMNS)]
    for c in ("value", "ci_low", "ci_high"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df["n"] = pd.to_numeric(df["n"], errors="coerce").fillna(0).astype(int)
    df["lower_is_better"] = df["lower_is_better"].astype(bool)
    return df


def read_long(path: str | Path) -> pd.DataFrame:
    """Read a ``leaderboard_long.csv`` (keeps "" as "" rather than NaN in text columns)."""
    df = pd.read_csv(path, keep_default_na=False, na_values={"value": [""], "ci_low": [""], "ci_high": [""]})
    return long_frame(df.to_dict("records"))


#: bookkeeping extras (frame counts, flags) that stay in the long table only
WIDE_EXCLUDED_EXTRAS: tuple[str, ...] = (
    "n_frames", "ref_n_frames", "rank_deficient", "n_ref", "n_gen", "n_rows", "ref_n_rows", "n_unpaired", "bandwidth",
    "mauve", "mauve_star", "frontier_integral", "n_clusters", "pca_dim", "n_unvoiced",  # MAD's (MAUVE runs the other way)
)


def wide_frame(long: pd.DataFrame, sort_by: str | None = None) -> pd.DataFrame:
    """The wide view: one row per ``WIDE_KEYS`` group, one column per metric@embedder.

    Bookkeeping extras (:data:`WIDE_EXCLUDED_EXTRAS`) are left out; the long table has them.

    ``sort_by`` (a column name; default the first metric column) orders the rows best first,
    using that metric's ``lower_is_better``; a ``rank`` column is added for it.
    """
    if long.empty:
        return pd.DataFrame(columns=[*WIDE_KEYS, "n_samples", "same_n"])
    long = long[[m.split(".", 1)[-1] not in WIDE_EXCLUDED_EXTRAS or "." not in m for m in long["metric"]]].copy()
    long["column"] = [column_name(m, e) for m, e in zip(long["metric"], long["embedder"])]
    columns = list(dict.fromkeys(long["column"]))
    out_rows = []
    for key, g in long.groupby(list(WIDE_KEYS), sort=False):
        row: dict[str, Any] = dict(zip(WIDE_KEYS, key))
        ok = g[g["status"] == "ok"]
        row["n_samples"] = int(ok["n"].max()) if len(ok) else int(g["n"].max())
        for _, r in g.iterrows():
            row[r["column"]] = r["value"] if r["status"] == "ok" else math.nan  # reason: leaderboard_long.csv
        out_rows.append(row)
    wide = pd.DataFrame(out_rows, columns=[*WIDE_KEYS, "n_samples", *columns])
    # same_n: False where the rows of one table (prompt set x reference set) were scored on different n
    scored = wide["n_samples"].where(wide["n_samples"] > 0)  # rows with nothing computed do not count
    same = scored.groupby([wide["prompt_set"], wide["reference_set"]]).transform("nunique") <= 1
    wide.insert(len(WIDE_KEYS) + 1, "same_n", same.astype(bool))
    sort_by = sort_by or next((c for c in columns if _numeric(wide[c]).notna().any()), None)
    if sort_by is not None and sort_by in wide.columns:
        lower = bool(long.loc[long["column"] == sort_by, "lower_is_better"].iloc[0])
        key_vals = _numeric(wide[sort_by])
        wide = wide.assign(_k=key_vals if lower else -key_vals).sort_values(
            ["prompt_set", "reference_set", "_k"], na_position="last", kind="stable"
        )
        wide = wide.drop(columns="_k")
        wide.insert(len(WIDE_KEYS), "rank", wide.groupby(["prompt_set", "reference_set"]).cumcount() + 1)
        wide.attrs["sorted_by"] = sort_by
    return wide.reset_index(drop=True)


_URL_NOTE = re.compile(r"\s*\((?:published at|see) [^)]*\)")
_EXC_PREFIX = re.compile(r"\b[A-Z][A-Za-z]*(?:Unavailable|Error): ")


def short_reason(reason: str) -> str:
    """A wide-table version of a reason: without exception class names and URLs (the long table keeps all)."""
    return _EXC_PREFIX.sub("", _URL_NOTE.sub("", str(reason))).strip()


def _numeric(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


def write_csv(df: pd.DataFrame, path: str | Path, columns: Sequence[str] | None = None) -> None:
    """Atomically write a CSV (floats with full precision)."""
    if columns is not None:
        df = df.reindex(columns=list(columns))
    atomic_write_text(path, df.to_csv(index=False, float_format="%.10g"))
