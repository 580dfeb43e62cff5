"""Publishable leaderboards: one :class:`Board` (tables with CIs, significance, rank stability)
built from one or more run folders, rendered as Markdown, LaTeX and a self-contained HTML report.

Table convention (the same in every format; :func:`legend` writes it under each table):

* a cell reads ``value [low, high]``: the metric on the full set and its prompt-bootstrap
  bootstrap interval (95 % unless configured; percentile, or "shifted" for FAD/PRDC);
* **bold** marks the best value of a column (all of them on a tie); ``↓`` / ``↑`` in the header
  say whether lower or higher is better;
* ``†`` after the best value: it is *significantly* better than the runner-up, by a paired
  bootstrap over prompts (two-sided ``p < alpha``, default 0.05; Holm-corrected over the model
  pairs of that column when ``holm=True``). No dagger means the top two are not separable;
* ``P(rank)``: fraction of bootstrap replicates in which the model keeps its rank on the
  sorting column (rank stability).

Entry points: :func:`write_reports` (one run folder, called by the pipeline) and
:func:`bench.report.cli.main` (``bench leaderboard``: merge runs, then the same writers).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report import significance as sig
from bench.report.board import (  # noqa: F401  (the board model is part of this package's API)
    DAGGER,
    Board,
    Cell,
    Column,
    LeaderTable,
    cell_text,
    decimals_for,
    fmt,
    legend,
)
from bench.report.leaderboard import CELL6, WIDE_EXCLUDED_EXTRAS, column_name
from bench.report.merge import Merged, load_run, merge_runs

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("md", "tex", "html", "csv")
FILE_NAMES = {"md": "leaderboard.md", "tex": "leaderboard.tex", "html": "report.html"}


# -- building the board --------------------------------------------------------------------------
def _row_labels(long: pd.DataFrame) -> pd.Series:
    """``model``, or ``model [run_id]`` for models that have several rows for one cell (mixed runs)."""
    keys = ["model", "prompt_set", "reference_set", "embedder", "metric"]
    dup_models = set(long.loc[long.duplicated(keys, keep=False), "model"])
    return pd.Series(
        [f"{m} [{r}]" if m in dup_models else m for m, r in zip(long["model"], long["run_id"])], index=long.index
    )


def _bookkeeping(metric: str) -> bool:
    """Extras such as ``fad.n_frames`` stay in the long table, out of the display tables."""
    return "." in metric and metric.split(".", 1)[1] in WIDE_EXCLUDED_EXTRAS


def _replicate_vectors(replicates: pd.DataFrame) -> dict[tuple[str, ...], np.ndarray]:
    out: dict[tuple[str, ...], np.ndarray] = {}
    if replicates.empty:
        return out
    reps = replicates.dropna(subset=["replicate"]).sort_values("replicate", kind="stable")
    for key, g in reps.groupby(list(CELL6), sort=False):
        out[tuple(str(k) for k in key)] = g["value"].to_numpy(dtype=np.float64)
    return out


def build_board(
    merged: Merged,
    alpha: float = 0.05,
    holm: bool = False,
    level: float = 0.95,
    sort_by: str | None = None,
) -> Board:
    """Tables (one per prompt set x reference set), pairwise tests and rank stability of ``merged``."""
    long = merged.long.loc[np.array([not _bookkeeping(m) for m in merged.long["metric"]], dtype=bool)].copy()
    long["_row"] = _row_labels(long)
    reps = _replicate_vectors(merged.replicates)
    tables: list[LeaderTable] = []
    pair_frames: list[pd.DataFrame] = []
    stab_frames: list[pd.DataFrame] = []
    for (ps, rs), g in long.groupby(["prompt_set", "reference_set"], sort=False):
        columns: list[Column] = []
        for (emb, met), gc in g.groupby(["embedder", "metric"], sort=False):
            ok = gc[gc["status"] == "ok"]["value"].tolist()
            columns.append(Column(emb, met, bool(gc["lower_is_better"].iloc[0]), decimals_for(ok)))
        cells: dict[tuple[str, str], Cell] = {}
        table = LeaderTable(ps, rs, columns, rows=list(dict.fromkeys(g["_row"])), cells=cells)
        for _, r in g.iterrows():
            label = column_name(r["metric"], r["embedder"])
            cells[(r["_row"], label)] = Cell(
                float(r["value"]), float(r["ci_low"]), float(r["ci_high"]), int(r["n"]), str(r["status"]),
                str(r["reason"]), str(r["run_id"]), str(r["embedder_id"]), str(r["reference_hash"]),
                model=str(r["model"]),
            )
        for row in table.rows:
            mine = g[g["_row"] == row]
            ok_n = mine.loc[mine["status"] == "ok", "n"]
            table.n[row] = int(ok_n.max()) if len(ok_n) else int(mine["n"].max())
            table.runs[row] = ", ".join(dict.fromkeys(mine["run_id"]))
        _annotate(table, merged, reps, alpha, holm, level, pair_frames, stab_frames)
        _sort_rows(table, sort_by)
        _notes(table)
        tables.append(table)
    pairs = pd.concat(pair_frames, ignore_index=True) if pair_frames else pd.DataFrame(
        columns=["prompt_set", "reference_set", "column", *sig.PAIRWISE_COLUMNS]
    )
    stab = pd.concat(stab_frames, ignore_index=True) if stab_frames else pd.DataFrame(
        columns=["prompt_set", "reference_set", "column", "model", "rank", "p_rank_held"]
    )
    return Board(merged, tables, pairs, stab, alpha, holm, level)


def _untestable(table: LeaderTable, col: Column, merged: Merged, rows: list[str]) -> dict[tuple[str, str], str]:
    """Pairs of rows whose replicates are not paired (other resamples) or not comparable (mixed)."""
    keys: dict[str, str] = {}
    for row in rows:
        c = table.cell(row, col)
        run = merged.runs.get(c.run_id)
        keys[row] = run.resample_key(c.model, table.prompt_set, col.embedder, table.reference_set, col.metric) if run \
            else f"run:{c.run_id}"
    out: dict[tuple[str, str], str] = {}
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            ca, cb = table.cell(a, col), table.cell(b, col)
            if ca.embedder_id != cb.embedder_id:
                out[(a, b)] = "not comparable: embedder_id differs (mixed runs)"
            elif ca.reference_hash != cb.reference_hash:
                out[(a, b)] = "not comparable: reference_hash differs (mixed runs)"
            elif keys[a] != keys[b]:
                out[(a, b)] = "not paired: bootstrap resamples differ (other prompt ids or seed)"
    return out


def _annotate(
    table: LeaderTable,
    merged: Merged,
    reps: dict[tuple[str, ...], np.ndarray],
    alpha: float,
    holm: bool,
    level: float,
    pair_frames: list[pd.DataFrame],
    stab_frames: list[pd.DataFrame],
) -> None:
    """Best / dagger marks per column; appends the column's pairwise tests and rank stability frames."""
    for col in table.columns:
        rows = [r for r in table.rows if table.cell(r, col).ok]
        if not rows:
            continue
        values = {r: table.cell(r, col).value for r in rows}
        vecs: dict[str, np.ndarray] = {}
        for r in rows:
            c = table.cell(r, col)
            key = (c.run_id, c.model, table.prompt_set, table.reference_set, col.embedder, col.metric)
            if key in reps:
                vecs[r] = reps[key]
        untest = _untestable(table, col, merged, rows)
        pairs = sig.pairwise(values, vecs, col.lower_is_better, alpha, holm, untest, level)
        ranks = sig.full_ranks(values, col.lower_is_better)
        order = sorted(ranks, key=lambda r: (ranks[r], r))
        for r in order:
            table.cell(r, col).best = ranks[r] == 1
        if len(order) >= 2 and ranks[order[0]] == 1 and ranks[order[1]] != 1:
            table.cell(order[0], col).dagger = sig.best_is_significant(pairs, order[0], order[1])
            top = pairs[(pairs["model_a"] == order[0]) & (pairs["model_b"] == order[1])]
            if len(top) and top["note"].iloc[0].startswith("not "):
                table.notes.append(f"{col.label}: best vs runner-up not tested ({top['note'].iloc[0]})")
        meta = {"prompt_set": table.prompt_set, "reference_set": table.reference_set, "column": col.label}
        if len(pairs):
            pair_frames.append(pairs.assign(**meta)[[*meta, *sig.PAIRWISE_COLUMNS]])
        # rank stability over the largest group of rows whose replicates pair with each other
        groups: dict[str, list[str]] = {}
        for r in vecs:
            anchor = next((k for k in groups if (k, r) not in untest and (r, k) not in untest), r)
            groups.setdefault(anchor, []).append(r)
        group = max(groups.values(), key=len, default=[])
        if len(group) >= 2 and len({len(vecs[r]) for r in group}) == 1:
            st = sig.rank_stability({r: values[r] for r in group}, {r: vecs[r] for r in group},
                                    col.lower_is_better, level)
            stab_frames.append(st.assign(**meta)[[*meta, *st.columns]])
            if len(group) == len(rows):  # ranks within a subset are not the table's ranks
                table.stability[col.label] = {str(m): float(v) for m, v in zip(st["model"], st["p_rank_held"])}


def _sort_rows(table: LeaderTable, sort_by: str | None) -> None:
    labels = [c.label for c in table.columns]
    col = next((c for c in table.columns if c.label == sort_by), None) if sort_by else None
    if col is None:
        if sort_by and sort_by not in labels:
            log.warning("sort column %r not in table %s; using the first metric", sort_by, table.title)
        col = next((c for c in table.columns if any(table.cell(r, c).ok for r in table.rows)), None)
    if col is None:
        table.rows.sort()
        return
    table.sort_by = col.label
    values = {r: table.cell(r, col).value for r in table.rows if table.cell(r, col).ok}
    table.rank = sig.full_ranks(values, col.lower_is_better)
    big = len(table.rows) + 1
    table.rows.sort(key=lambda r: (table.rank.get(r, big), r))
    held = table.stability.get(col.label, {})
    table.rank_held = {r: held.get(r, math.nan) for r in table.rows}


def _notes(table: LeaderTable) -> None:
    """Drop columns without any ok cell; one note per (status, reason) naming its columns and models."""
    groups: dict[tuple[str, str], tuple[dict[str, None], dict[str, None]]] = {}
    for col in table.columns:
        for row in table.rows:
            c = table.cell(row, col)
            if c.status != "ok":
                cols, rows = groups.setdefault((c.status, c.reason), ({}, {}))
                cols[col.label] = None
                rows[row] = None
    table.columns = [c for c in table.columns if any(table.cell(r, c).ok for r in table.rows)]
    if len({n for n in table.n.values() if n > 0}) > 1:
        sizes = ", ".join(f"{r} {table.n[r]}" for r in table.rows if table.n[r] > 0)
        table.notes.append(
            f"n differs between rows ({sizes}): set metrics such as FAD, KAD and PRDC are biased by n, so these rows "
            "are not directly comparable (coverage=intersect scores every model on the same prompt ids)"
        )
    for (status, reason), (cols, rows) in groups.items():
        table.notes.append(f"{', '.join(cols)} {status} for {', '.join(rows)}" + (f": {reason}" if reason else ""))


# -- writing -------------------------------------------------------------------------------------
def write_board(board: Board, out_dir: str | Path, formats: Sequence[str] = ("md", "tex", "html")) -> list[Path]:
    """Render ``board`` into ``out_dir``: leaderboard.md / .tex, report.html and (format "csv")
    significance.csv + rank_stability.csv. Returns the written paths."""
    from bench.cache import atomic_write_text
    from bench.report.leaderboard import write_csv

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown report format(s) {sorted(unknown)}; choose from {FORMATS}")
    written: list[Path] = []
    if "md" in formats:
        from bench.report.markdown import render_markdown

        atomic_write_text(out_dir / FILE_NAMES["md"], render_markdown(board))
        written.append(out_dir / FILE_NAMES["md"])
    if "tex" in formats:
        from bench.report.latex import render_latex

        atomic_write_text(out_dir / FILE_NAMES["tex"], render_latex(board))
        written.append(out_dir / FILE_NAMES["tex"])
    if "html" in formats:
        from bench.report.html import render_html

        atomic_write_text(out_dir / FILE_NAMES["html"], render_html(board, out_dir))
        written.append(out_dir / FILE_NAMES["html"])
    if "csv" in formats:
        write_csv(board.pairwise, out_dir / "significance.csv")
        write_csv(board.stability, out_dir / "rank_stability.csv")
        written += [out_dir / "significance.csv", out_dir / "rank_stability.csv"]
    return written


def write_reports(
    run_dir: str | Path,
    formats: Sequence[str] = ("md", "tex", "html"),
    alpha: float = 0.05,
    holm: bool = False,
    level: float = 0.95,
    sort_by: str | None = None,
    trackers: Sequence[str] = (),
    tracker_project: str = "genaudio-bench",
) -> list[Path]:
    """Read the CSVs of one run folder and write its reports next to them (see :func:`write_board`).

    ``trackers`` (default none): also log the board and the written files to ``"wandb"`` /
    ``"mlflow"`` when installed (see :mod:`bench.report.trackers`).
    """
    board = build_board(merge_runs([load_run(run_dir)]), alpha=alpha, holm=holm, level=level, sort_by=sort_by)
    written = write_board(board, run_dir, formats)
    if trackers:
        from bench.report.trackers import log_board

        log_board(board, trackers, files=written, project=tracker_project, name=Path(run_dir).name)
    return written


__all__ = [
    "Board", "Cell", "Column", "LeaderTable", "build_board", "cell_text", "legend", "write_board", "write_reports",
]
