"""Long/wide leaderboard tables (bench.report.leaderboard)."""

from __future__ import annotations

import math

import pandas as pd

from bench.report import leaderboard as lb


def _rows():
    base = {"run_id": "r", "config_hash": "h", "prompt_set": "p", "reference_set": "ref", "embedder": "e",
            "embedder_id": "e-1", "reference_hash": "rh", "lower_is_better": True}
    return [
        {**base, "model": "a", "metric": "fad", "value": 2.0, "n": 10, "status": "ok", "reason": ""},
        {**base, "model": "b", "metric": "fad", "value": 1.0, "n": 10, "status": "ok", "reason": ""},
        {**base, "model": "c", "metric": "fad", "value": math.nan, "n": 0, "status": "unavailable",
         "reason": "no checkpoint"},
        {**base, "model": "a", "metric": "fad.n_frames", "value": 100.0, "n": 10, "status": "ok", "reason": ""},
        {**base, "model": "a", "metric": "kl", "embedder": "", "value": 0.5, "n": 10, "status": "ok", "reason": "",
         "lower_is_better": True},
    ]


def test_long_frame_has_the_documented_columns(tmp_path):
    df = lb.long_frame(_rows())
    assert tuple(df.columns) == lb.LONG_COLUMNS
    lb.write_csv(df, tmp_path / "l.csv")
    back = lb.read_long(tmp_path / "l.csv")
    assert tuple(back.columns) == lb.LONG_COLUMNS
    assert back.loc[back["model"] == "c", "reason"].item() == "no checkpoint"
    assert back.loc[back["metric"] == "kl", "embedder"].item() == ""


def test_wide_frame_ranks_and_marks_unavailable():
    wide = lb.wide_frame(lb.long_frame(_rows()))
    assert list(wide["model"]) == ["b", "a", "c"]  # lower FAD first, unavailable last
    assert list(wide["rank"]) == [1, 2, 3]
    assert "fad.n_frames@e" not in wide.columns  # bookkeeping stays in the long table
    assert pd.isna(wide.loc[wide["model"] == "c", "fad@e"].item())  # empty cell; the reason is in the long table
    assert list(wide.columns[:7]) == ["run_id", "model", "prompt_set", "reference_set", "rank", "n_samples", "same_n"]
    assert wide.loc[wide["model"] == "a", "kl"].item() == 0.5
    assert isinstance(wide, pd.DataFrame) and wide.attrs["sorted_by"] == "fad@e"
