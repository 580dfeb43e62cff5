"""coverage: intersect | each | error - models in one table are scored on the same prompt ids by default."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import bench
from bench.coverage import apply_coverage
from bench.errors import ConfigError

AUDIO = {"mg": {"a": Path("mg/a"), "b": Path("mg/b"), "c": Path("mg/c")},
         "mlm": {"b": Path("mlm/b"), "c": Path("mlm/c"), "d#0": Path("mlm/d0"), "d#1": Path("mlm/d1")}}
IDS = ["a", "b", "c", "d", "e"]


def test_intersect_keeps_common_prompt_ids_and_lists_the_rest():
    cov = apply_coverage("s", IDS, AUDIO)
    assert cov.common == {"b", "c"} and cov.covered == {"mg": 3, "mlm": 3}
    assert {m: sorted(v) for m, v in cov.kept.items()} == {"mg": ["b", "c"], "mlm": ["b", "c"]}
    rows = {(r["model"], r["item_id"], r["status"]) for r in cov.rows}
    assert rows == {("mg", "d", "missing"), ("mg", "e", "missing"), ("mlm", "a", "missing"), ("mlm", "e", "missing"),
                    ("mg", "a", "excluded"), ("mlm", "d", "excluded")}
    assert cov.summary() == "prompts s: mg 3, mlm 3 of 5 prompts; scoring the 2 common ids (coverage=intersect; " \
                            "lists in missing.csv)"


def test_each_and_error_modes():
    cov = apply_coverage("s", IDS, AUDIO, "each")
    assert cov.common is None and cov.kept == AUDIO
    with pytest.raises(ConfigError, match="models cover different prompt ids"):
        apply_coverage("s", IDS, AUDIO, "error")
    same = {"x": {"a": Path("x")}, "y": {"a": Path("y")}}
    assert apply_coverage("s", IDS, same, "error").common == {"a"}
    with pytest.raises(ConfigError, match="no prompt id is covered by every model"):
        apply_coverage("s", IDS, {"x": {"a": Path("x")}, "y": {"b": Path("y")}})
    with pytest.raises(ConfigError, match="coverage must be one of"):
        apply_coverage("s", IDS, AUDIO, "union")


def _partial_run(tmp_path, helpers, corpus, coverage):
    out = tmp_path / "gen"
    import numpy as np

    rng = np.random.default_rng(1)
    for i in ("p0", "p1", "p2"):
        helpers.write_clip(out / f"{i}.wav", helpers.tone_clip(rng, 16000, 1.0), 16000)
    cfg = helpers.tiny_run_config(tmp_path, corpus, coverage=coverage, report_formats=["md", "html"],
                                  stages=["gather", "embed", "score", "report"], model={
        "synth": {"_target_": "bench.models.baselines.SynthModel", "sample_rate": 16000, "duration_s": 1.0, "seed": 0},
        "folder": {"_target_": "bench.models.folder.FolderModel", "path": str(out), "pattern": "%id.wav"}})
    return bench.run(cfg)


def test_each_mode_says_n_differs_in_csv_markdown_and_html(tmp_path, tiny_audio_dir, helpers):
    d = _partial_run(tmp_path, helpers, tiny_audio_dir, "each")
    board = pd.read_csv(d / "leaderboard.csv").set_index("model")
    assert board.loc["folder", "n_samples"] == 3 and board.loc["synth", "n_samples"] == 6
    assert not board["same_n"].any()
    for name in ("leaderboard.md", "report.html"):
        assert "n differs between rows" in (d / name).read_text(), name
    d2 = _partial_run(tmp_path / "i", helpers, tiny_audio_dir, "intersect")
    board = pd.read_csv(d2 / "leaderboard.csv")
    assert (board["n_samples"] == 3).all() and board["same_n"].all()
    assert "n differs" not in (d2 / "leaderboard.md").read_text()
    assert bench.run.__doc__  # the API is the same function the CLI runs
    with pytest.raises(ConfigError, match="coverage=error"):
        _partial_run(tmp_path / "e", helpers, tiny_audio_dir, "error")


def test_run_audio_restricted_per_prompt_set_in_place(caplog):
    from bench.coverage import restrict_run_audio

    audio = {("mg", "s"): dict(AUDIO["mg"]), ("mlm", "s"): dict(AUDIO["mlm"]), ("mg", "t"): {"a": Path("xa")}}
    out = restrict_run_audio(audio, {"s": IDS, "t": ["a"]}, ["mg", "mlm"], "intersect")
    assert set(audio[("mg", "s")]) == set(audio[("mlm", "s")]) == {"b", "c"} == set(out["s"].kept["mg"])
    assert out["t"].covered == {"mg": 1} and audio[("mg", "t")] == {"a": Path("xa")}
    assert out["s"].manifest_entry("intersect")["n_common"] == len(out["s"].common)
    assert "coverage: prompts s" in caplog.text and "prompts t" not in caplog.text
