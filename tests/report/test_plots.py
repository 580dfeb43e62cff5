"""Report figures decode as images of plausible size; empty inputs give no figure."""

from __future__ import annotations

import io

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from bench.report import build_board, plots
from bench.report.merge import load_run, merge_runs


def _decode(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return mpimg.imread(io.BytesIO(png), format="png")


@pytest.fixture(scope="module")
def board(two_runs_shared):
    return build_board(merge_runs([load_run(p) for p in two_runs_shared]))


def test_metric_bars_and_rank_heatmap(board):
    img = _decode(plots.metric_bars(board.tables[0]))
    assert img.shape[1] > img.shape[0] > 100  # two panels side by side (fad@mert has no ok value)
    best_red = (img[..., 0] > 0.75) & (img[..., 1] < 0.3) & (img[..., 2] < 0.3)
    assert best_red.mean() > 0.005  # the best model's bars are drawn in red
    st = board.stability[board.stability["column"] == "fad@vggish"]
    assert _decode(plots.rank_heatmap(st)).shape[0] > 100
    assert plots.rank_heatmap(pd.DataFrame()) is None


def test_distributions_and_curves(board):
    assert _decode(plots.item_distributions(board.merged.per_item)).shape[0] > 100
    assert _decode(plots.fad_curves(board.merged.curves)).shape[0] > 100
    assert plots.item_distributions(board.merged.per_item.iloc[:0]) is None
    assert plots.fad_curves(board.merged.curves.iloc[:0]) is None
    nan_curves = board.merged.curves.assign(value=np.nan)
    assert plots.fad_curves(nan_curves) is None
