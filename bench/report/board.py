"""The board model every renderer reads: :class:`Board` (tables, significance, rank stability),
:class:`LeaderTable`, :class:`Column`, :class:`Cell`, the number formatting and the legend.

Built by :func:`bench.report.build_board`; rendered by :mod:`~bench.report.markdown`,
:mod:`~bench.report.latex`, :mod:`~bench.report.html` and :mod:`~bench.report.plots`, which import
this module (never the package) so the report package has no import cycle. The table convention is
in :mod:`bench.report`'s docstring and in :func:`legend`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.report.leaderboard import column_name
from bench.report.merge import Merged

DAGGER = "†"


@dataclass
class Column:
    """One metric column of a table: ``label`` is ``metric@embedder`` (the wide-view name)."""

    embedder: str
    metric: str
    lower_is_better: bool
    decimals: int = 3

    @property
    def label(self) -> str:
        return column_name(self.metric, self.embedder)

    @property
    def arrow(self) -> str:
        return "↓" if self.lower_is_better else "↑"


@dataclass
class Cell:
    """A table cell; ``best``/``dagger`` follow the convention in the module docstring."""

    value: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    n: int = 0
    status: str = "missing"
    reason: str = ""
    run_id: str = ""
    embedder_id: str = ""
    reference_hash: str = ""
    best: bool = False
    dagger: bool = False
    model: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok" and math.isfinite(self.value)


@dataclass
class LeaderTable:
    """One table: the models of a prompt set x reference set, best first on ``sort_by``.

    rows: row labels (the model key, or ``model [run_id]`` when mixed runs hold the same cell twice);
    cells: by ``(row, column label)``; rank: competition rank on ``sort_by``; rank_held: P(rank)
    on ``sort_by`` (NaN when not every row's replicates pair); stability: P(rank) per column label;
    n: generated clips per row; runs: source run ids per row; notes: unavailable metrics, untested pairs.
    """

    prompt_set: str
    reference_set: str
    columns: list[Column]
    rows: list[str]
    cells: dict[tuple[str, str], Cell]
    rank: dict[str, int] = field(default_factory=dict)
    rank_held: dict[str, float] = field(default_factory=dict)
    stability: dict[str, dict[str, float]] = field(default_factory=dict)
    n: dict[str, int] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)
    sort_by: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        ref = f", reference set {self.reference_set}" if self.reference_set else ""
        return f"Prompt set {self.prompt_set}{ref}"

    def cell(self, row: str, column: Column) -> Cell:
        return self.cells.get((row, column.label), Cell())


@dataclass
class Board:
    """Everything the writers render. ``pairwise`` / ``stability`` carry ``prompt_set,
    reference_set, column`` plus the :mod:`bench.report.significance` columns."""

    merged: Merged
    tables: list[LeaderTable]
    pairwise: pd.DataFrame
    stability: pd.DataFrame
    alpha: float = 0.05
    holm: bool = False
    level: float = 0.95

    @property
    def long(self) -> pd.DataFrame:
        return self.merged.long


# -- formatting shared by the writers -----------------------------------------------------
def decimals_for(values: Sequence[float]) -> int:
    """Decimals for a column (0..4): ~3 significant digits of its median magnitude and at least 2 of
    its smallest magnitude (values below 1/1000 of the median, e.g. an oracle's ~0, are ignored)."""
    x = np.abs(np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64))
    x = x[x > 0]
    if x.size == 0:
        return 2
    med = float(np.median(x))
    small = float(x[x >= med / 1000].min())
    return int(min(4, max(0, 2 - math.floor(math.log10(med)), 1 - math.floor(math.log10(small)))))


def fmt(value: float, decimals: int) -> str:
    """Fixed-point text; NaN -> "n/a"; a value that rounds to zero loses its minus sign."""
    if value is None or not math.isfinite(value):
        return "n/a"
    text = f"{value:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0.0 else text


def cell_text(cell: Cell, decimals: int) -> tuple[str, str]:
    """``("3.21", "[2.90, 3.50]")`` (CI part "" without CI); non-ok cells give ``(status, "")``."""
    if not cell.ok:
        return ("—" if cell.status == "missing" else cell.status), ""
    ci = ""
    if math.isfinite(cell.ci_low) and math.isfinite(cell.ci_high):
        ci = f"[{fmt(cell.ci_low, decimals)}, {fmt(cell.ci_high, decimals)}]"
    return fmt(cell.value, decimals), ci


def legend(board: Board) -> list[str]:
    """The table convention, one sentence per line."""
    corr = ", Holm-corrected over the model pairs of the column" if board.holm else ""
    return [
        f"Cells: value on the full set [{board.level:.0%} prompt-bootstrap interval: percentile, or shifted onto the value for FAD/PRDC].",
        "Bold: best value of the column; ↓ lower is better, ↑ higher is better.",
        f"{DAGGER}: best and significantly better than the runner-up (paired bootstrap over prompts, "
        f"two-sided p < {board.alpha:g}{corr}).",
        "P(rank): fraction of bootstrap replicates in which the model keeps its rank on the sorting column.",
    ]


def table_rows(
    table: LeaderTable,
    escape: Callable[[str], str],
    missing: str,
    bold: Callable[[str], str],
    dagger: str,
    with_ci: Callable[[str, str], str],
) -> list[list[str]]:
    """The body of a text table, one list of cells per model: ``rank, model, n, P(rank), <columns>``.

    The markup is the renderer's: ``escape`` for text, ``missing`` for an absent rank / P(rank),
    ``bold`` for the best value, ``dagger`` after a significant best, ``with_ci(value, ci)``.
    """
    out = []
    for row in table.rows:
        rank = table.rank.get(row)
        held = table.rank_held.get(row, math.nan)
        cells = [str(rank) if rank else missing, escape(row), str(table.n.get(row, 0)),
                 f"{held:.2f}" if math.isfinite(held) else missing]
        for col in table.columns:
            c = table.cell(row, col)
            value, ci = cell_text(c, col.decimals)
            text = escape(value)
            if c.best and c.ok:
                text = bold(text)
            if c.dagger:
                text += dagger
            cells.append(with_ci(text, ci) if ci else text)
        out.append(cells)
    return out
