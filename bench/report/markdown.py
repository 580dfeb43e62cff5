"""Markdown rendering of a :class:`bench.report.Board` (GitHub-flavoured pipe tables).

One table per prompt set x reference set; columns ``rank | model | n | P(rank) | <metric>@<embedder> ↓ ...``;
cells ``**3.21**† [2.90, 3.50]`` following the convention in :mod:`bench.report`. Unavailable
metrics and merge warnings are listed under each table.
"""

from __future__ import annotations

from bench.report.board import DAGGER, Board, LeaderTable, legend, table_rows
from bench.report.significance import p_phrase


def escape(text: str) -> str:
    """Make text safe inside a pipe-table cell (pipes, newlines, emphasis characters)."""
    out = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    for ch in "*`<>":
        out = out.replace(ch, "\\" + ch)
    return out


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def table_markdown(table: LeaderTable) -> str:
    """The pipe table (header, alignment row, one line per model) of one :class:`LeaderTable`."""
    header = ["rank", "model", "n", "P(rank)", *[f"{escape(c.label)} {c.arrow}" for c in table.columns]]
    lines = [_row(header), _row(["---:", ":---", "---:", "---:", *["---:"] * len(table.columns)])]
    body = table_rows(table, escape, "—", lambda v: f"**{v}**", DAGGER, lambda v, ci: f"{v} {ci}")
    lines += [_row(cells) for cells in body]
    return "\n".join(lines)


def render_markdown(board: Board) -> str:
    """The whole Markdown document: runs, one table per prompt set x reference set, legend, notes."""
    runs = board.merged.runs
    out = ["# Leaderboard", ""]
    out.append("Runs: " + ", ".join(f"`{rid}` (config {r.config_hash or 'n/a'})" for rid, r in runs.items()))
    out.append("")
    if not board.tables:
        out += ["No metric rows in these runs.", ""]
    for table in board.tables:
        out += [f"## {escape(table.title)}", ""]
        if table.sort_by:
            out += [f"Sorted by {escape(table.sort_by)}.", ""]
        out += [table_markdown(table), ""]
        sig = board.pairwise[
            (board.pairwise["prompt_set"] == table.prompt_set) & (board.pairwise["reference_set"] == table.reference_set)
        ] if len(board.pairwise) else board.pairwise
        decided = sig[sig["p"].notna()] if len(sig) else sig
        if not len(decided) and len(table.rows) > 1:
            out += ["Significance not tested: no paired bootstrap replicates.", ""]
        if len(decided):
            n_sig = int(decided["significant"].sum())
            out += [f"Paired bootstrap: {n_sig} of {len(decided)} model pairs differ significantly "
                    f"(see report.html / significance.csv).", ""]
            for _, r in decided[decided["significant"]].iterrows():
                out.append(f"- {escape(r['column'])}: {escape(r['model_a'])} better than {escape(r['model_b'])} "
                           f"({p_phrase(r['p_holm'] if board.holm else r['p'], int(r['n_replicates']))}"
                           f"{', Holm' if board.holm else ''})")
            out.append("")
        for note in table.notes:
            out.append(f"- {escape(note)}")
        if table.notes:
            out.append("")
    out += [*[f"_{escape(line)}_  " for line in legend(board)], ""]
    if board.merged.notes:
        out += ["## Merge notes", "", *[f"- {escape(n)}" for n in board.merged.notes], ""]
    return "\n".join(out)
