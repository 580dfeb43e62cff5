"""bench.errors: the per-item error log, its policies and the errors.csv format."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from bench.errors import ERROR_COLUMNS, ErrorLog, RunFailed, escape_control


def test_skip_policy_collects_rows_once():
    log = ErrorLog("skip")
    log.add("embed", "reference", "ref", "r1", "/x/r1.wav", "cannot decode")
    log.add("embed", "reference", "ref", "r1", "/x/r1.wav", "cannot decode")  # duplicate
    log.warn("embed", "synth", "demo", "p1", "/x/p1.wav", "all-silent (every sample is 0)")
    assert len(log.rows) == 2 and log.n_errors == 1 and log.n_warnings == 1
    assert [r.severity for r in log.rows] == ["error", "warning"]


def test_fail_policy_raises_on_errors_not_warnings():
    log = ErrorLog("fail")
    log.warn("embed", "m", "s", "p", "/p.wav", "truncated to 600 s (file is 1800.0 s)")
    with pytest.raises(RunFailed, match=r"embed failed for m/s item 'q' \(/q.wav\): cannot decode"):
        log.add("embed", "m", "s", "q", "/q.wav", "cannot decode")
    assert log.n_errors == 1  # recorded before raising


def test_bad_policy_and_severity():
    with pytest.raises(ValueError, match="skip"):
        ErrorLog("ignore")
    with pytest.raises(ValueError, match="severity"):
        ErrorLog().add("embed", "m", "s", "q", "/q.wav", "x", severity="fatal")


def test_csv_round_trips_nasty_ids_through_csv_and_pandas(tmp_path):
    log = ErrorLog()
    ids = ["../../x", "a\x00b", "🎵 emoji", 'quote"comma,', "new\nline"]
    for i in ids:
        log.add("gather", "synth", "set", i, f"/out/{i}.wav", "generation failed: boom")
    p = tmp_path / "errors.csv"
    log.write(p)
    with open(p, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == ERROR_COLUMNS
    assert [r["item_id"] for r in rows] == [escape_control(i) for i in sorted(ids)]  # stable order
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    assert sorted(df["item_id"]) == sorted(["../../x", "a\\x00b", "🎵 emoji", 'quote"comma,', "new\\nline"])
    assert set(df["severity"]) == {"error"}


def test_empty_log_file_has_header_only(tmp_path):
    ErrorLog().write(tmp_path / "e.csv")
    assert (tmp_path / "e.csv").read_text() == ",".join(ERROR_COLUMNS) + "\n"


def test_escape_control():
    assert escape_control("plain ../x 🎵") == "plain ../x 🎵"
    assert escape_control("a\x00b\tc\x7f\x85") == "a\\x00b\\tc\\x7f\\x85"
