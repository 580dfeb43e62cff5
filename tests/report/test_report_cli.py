"""``bench leaderboard`` (bench.report.cli.main): merging runs into one board on disk."""

from __future__ import annotations

import json

import pandas as pd

from bench.report.cli import main
from bench.report.leaderboard import LONG_COLUMNS
from bench.report.merge import MERGED_KIND


def test_merge_two_runs_into_one_board(two_runs, tmp_path, capsys):
    out = tmp_path / "board"
    rc = main([str(two_runs[0].parent), "--out", str(out), "--formats", "md", "csv"])
    assert rc == 0
    long = pd.read_csv(out / "leaderboard_long.csv", keep_default_na=False)
    assert list(long.columns) == list(LONG_COLUMNS) and set(long["model"]) == {"alpha", "beta", "gamma"}
    wide = pd.read_csv(out / "leaderboard.csv")
    assert list(wide["model"]) == ["alpha", "beta", "gamma"]  # one row per model, runs joined
    assert list(wide["run_id"]) == ["run_a", "run_a", "run_b"]
    assert "fad@vggish" in wide.columns and "fad.n_frames@vggish" not in wide.columns
    assert len(pd.read_csv(out / "replicates.csv")) == 3 * 2 * 200
    assert len(pd.read_csv(out / "per_item.csv", dtype={"item_id": str})) == 3 * 2 * 24
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == MERGED_KIND and set(manifest["runs"]) == {"run_a", "run_b"}
    md = (out / "leaderboard.md").read_text()
    assert "**3.04**† [2.56, 3.53]" in md and "`run_b`" in md
    sig = pd.read_csv(out / "significance.csv")
    assert len(sig) == 2 * 3 and sig["significant"].sum() == 4  # alpha vs beta/gamma in both metrics
    assert not (out / "report.html").exists()
    assert "merged 2 run(s)" in capsys.readouterr().out
    # the merged board is skipped when its parent folder is globbed again
    rc = main([str(tmp_path / "**" / "leaderboard_long.csv"), "--out", str(tmp_path / "again"), "--formats", "md"])
    assert rc == 0 and "merged 2 run(s)" in capsys.readouterr().out


def test_refuses_mixed_runs_with_a_clear_message(two_runs, tmp_path, capsys, run_factory):
    run_factory(tmp_path / "results", "run_c", ["delta"], embedder_ids={"clap": "clap-OTHER"}, with_audio=False)
    out = tmp_path / "board"
    rc = main([str(tmp_path / "results" / "*"), "--out", str(out), "--formats", "md"])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert "embedder 'clap' / metric 'clap'" in err and "clap-bbbb" in err and "clap-OTHER" in err
    assert "run_a, run_b" in err and "run_c" in err and "--allow-mixed" in err
    rc = main([str(tmp_path / "results" / "*"), "--out", str(out), "--formats", "md", "csv", "--allow-mixed"])
    assert rc == 0
    long = pd.read_csv(out / "leaderboard_long.csv", keep_default_na=False)
    assert list(long.columns) == [*LONG_COLUMNS, "mixed"]
    assert (long.loc[long["embedder"] == "clap", "mixed"] == "embedder_id differs across runs").all()
    assert (long.loc[long["embedder"] == "vggish", "mixed"] == "").all()
    md = (out / "leaderboard.md").read_text()
    assert "Merge notes" in md and "allow-mixed" in md
    # clap values of delta (other embedder) are not tested against the others
    sig = pd.read_csv(out / "significance.csv", keep_default_na=False)
    mixed_pairs = sig[(sig["column"] == "clap@clap") & ((sig["model_a"] == "delta") | (sig["model_b"] == "delta"))]
    assert len(mixed_pairs) == 3 and mixed_pairs["note"].str.contains("embedder_id differs").all()


def test_bad_input_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "no run folder" in capsys.readouterr().err
