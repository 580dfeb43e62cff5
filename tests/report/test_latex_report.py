"""LaTeX tables: booktabs structure, escaping, marks; compiled with pdflatex when installed."""

from __future__ import annotations

import re
import shutil
import subprocess

import pandas as pd
import pytest

from bench.report import build_board
from bench.report.latex import escape, render_latex
from bench.report.merge import load_run, merge_runs

_AMP = re.compile(r"(?<!\\)&")


def _body_rows(tex: str) -> tuple[str, list[str]]:
    spec = re.search(r"\\begin\{tabular\}\{([a-z]+)\}", tex).group(1)
    body = tex.split("\\midrule\n", 1)[1].split("\\bottomrule", 1)[0]
    return spec, [ln for ln in body.splitlines() if ln.strip()]


def test_latex_table_structure_and_marks(two_runs_shared):
    board = build_board(merge_runs([load_run(p) for p in two_runs_shared]))
    tex = render_latex(board)
    assert tex.count("\\begin{table}") == tex.count("\\end{table}") == 1
    assert tex.count("\\toprule") == tex.count("\\midrule") == tex.count("\\bottomrule") == 1
    spec, rows = _body_rows(tex)
    assert spec == "rlrr" + "rr"  # fad@mert (no ok cell) is left out, with a note
    header = tex.split("\\toprule\n", 1)[1].split("\n", 1)[0]
    for line in [header, *rows]:
        assert len(_AMP.findall(line)) == len(spec) - 1 and line.endswith("\\\\")
    cells = [[c.strip() for c in _AMP.split(r[: -2])] for r in rows]
    assert [c[1] for c in cells] == ["alpha", "beta", "gamma"]
    a = board.tables[0].cell("alpha", board.tables[0].columns[0])
    assert cells[0][4] == f"\\textbf{{{a.value:.2f}}}$^\\dagger$ {{\\scriptsize [{a.ci_low:.2f}, {a.ci_high:.2f}]}}"
    assert "\\textbf" not in " ".join(cells[1] + cells[2]) and "dagger" not in " ".join(cells[1] + cells[2])
    assert "fad@vggish $\\downarrow$" in header and "clap@clap $\\uparrow$" in header
    assert tex.count("{") == tex.count("}")
    assert "\\label{tab:leaderboard-demo-ref}" in tex and "p $<$ 0.05" in tex


def test_latex_escaping():
    assert escape("a_b & 50% #1 $x$ {y} ~^\\") == (
        "a\\_b \\& 50\\% \\#1 \\$x\\$ \\{y\\} \\textasciitilde{}\\textasciicircum{}\\textbackslash{}"
    )
    assert escape("↓ †") == "$\\downarrow$ $^\\dagger$"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_compiles(tmp_path, run_factory):
    run = run_factory(tmp_path, "r_1", ["alpha", "beta"], with_audio=False)
    long = pd.read_csv(run / "leaderboard_long.csv", keep_default_na=False)
    long["model"] = long["model"].replace("beta", "beta_50%&co")  # specials in names must be escaped
    long.to_csv(run / "leaderboard_long.csv", index=False)
    tex = render_latex(build_board(merge_runs([load_run(run)])))
    doc = ("\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage[utf8]{inputenc}\\usepackage{booktabs}"
           "\\usepackage{graphicx}\\begin{document}\n" + tex + "\n\\end{document}\n")
    (tmp_path / "t.tex").write_text(doc)
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000
