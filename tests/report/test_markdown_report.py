"""Markdown tables parse back to the board's numbers and marks (bench.report.markdown)."""

from __future__ import annotations

import io
import re

import pandas as pd

from bench.report import build_board
from bench.report.markdown import escape, render_markdown
from bench.report.merge import load_run, merge_runs


def _tables(md: str) -> list[pd.DataFrame]:
    """Every pipe table of a Markdown text, parsed with pandas (alignment row dropped)."""
    out, block = [], []
    for line in [*md.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
        elif block:
            assert re.fullmatch(r"\|( :?-+:? \|)+", block[1]), block[1]
            text = "\n".join([block[0], *block[2:]])
            df = pd.read_csv(io.StringIO(text), sep=r"(?<!\\)\|", engine="python", dtype=str, skipinitialspace=True)
            df = df.iloc[:, 1:-1]  # the empty fields outside the outer pipes
            df.columns = [c.strip() for c in df.columns]
            out.append(df.apply(lambda s: s.str.strip()))
            block = []
    return out


def test_markdown_table_structure_and_marks(two_runs_shared):
    board = build_board(merge_runs([load_run(p) for p in two_runs_shared]))
    md = render_markdown(board)
    lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len({ln.count(" | ") for ln in lines}) == 1  # every row has the same number of cells
    (table,) = _tables(md)
    assert list(table.columns) == ["rank", "model", "n", "P(rank)", "fad@vggish ↓", "clap@clap ↑"]  # no fad@mert
    assert list(table["model"]) == ["alpha", "beta", "gamma"] and list(table["rank"]) == ["1", "2", "3"]
    t = board.tables[0]
    fad = t.columns[0]
    a = t.cell("alpha", fad)
    assert table.loc[0, "fad@vggish ↓"] == f"**{a.value:.2f}**† [{a.ci_low:.2f}, {a.ci_high:.2f}]"
    assert table.loc[0, "clap@clap ↑"].startswith("**0.430**† [")
    for i in (1, 2):  # the tie: no bold, no dagger, still a CI
        for col in ("fad@vggish ↓", "clap@clap ↑"):
            assert "**" not in table.loc[i, col] and "†" not in table.loc[i, col]
            assert re.fullmatch(r"\d+\.\d+ \[\d+\.\d+, \d+\.\d+\]", table.loc[i, col])
    assert table.loc[0, "P(rank)"] == "1.00"
    # significance summary, legend and notes
    assert "alpha better than beta (p < 0.005)" in md and "beta better than gamma" not in md
    assert "†: best and significantly better than the runner-up" in md
    assert "- fad@mert unavailable for alpha, beta, gamma: embedder unavailable: MERT weights not found" in md


def test_markdown_escapes_cell_breakers(tmp_path, run_factory):
    assert escape("a|b\nc") == "a\\|b c" and escape("*x*") == "\\*x\\*"
    run = run_factory(tmp_path, "r1", ["alpha"])
    long = pd.read_csv(run / "leaderboard_long.csv", keep_default_na=False)
    long["reason"] = long["reason"].replace("embedder unavailable: MERT weights not found", "bad | pipe")
    long.to_csv(run / "leaderboard_long.csv", index=False)
    md = render_markdown(build_board(merge_runs([load_run(run)])))
    assert "bad \\| pipe" in md
    (table,) = _tables(md)
    assert len(table.columns) == 6 and len(table) == 1
