"""Building the board: marks, CIs, significance and rank stability (bench.report)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from bench.report import Cell, build_board, cell_text, decimals_for, write_reports
from bench.report.merge import load_run, merge_runs


def _board(paths, **kw):
    return build_board(merge_runs([load_run(p) for p in paths]), **kw)


def _hand_p(d: list[float]) -> float:
    le = sum(1 for x in d if x <= 0) / len(d)
    ge = sum(1 for x in d if x >= 0) / len(d)
    return min(1.0, 2 * min(le, ge))


def test_merged_table_has_cis_and_marks_in_the_right_places(two_runs_shared):
    two_runs = two_runs_shared
    board = _board(two_runs)
    assert len(board.tables) == 1
    t = board.tables[0]
    assert (t.prompt_set, t.reference_set, t.sort_by) == ("demo", "ref", "fad@vggish")
    assert t.rows == ["alpha", "beta", "gamma"]  # lower FAD first; gamma = beta + 0.01
    # fad.n_frames is bookkeeping; fad@mert has no ok cell: dropped from the table, kept in a note
    assert [c.label for c in t.columns] == ["fad@vggish", "clap@clap"]
    fad, clap = t.columns
    assert fad.lower_is_better and not clap.lower_is_better
    a = t.cell("alpha", fad)
    assert a.best and a.dagger and a.ci_low < a.value < a.ci_high
    assert t.cell("alpha", clap).best and t.cell("alpha", clap).dagger
    for row in ("beta", "gamma"):
        for col in (fad, clap):
            assert not t.cell(row, col).best and not t.cell(row, col).dagger
    assert t.notes == ["fad@mert unavailable for alpha, beta, gamma: embedder unavailable: MERT weights not found"]
    assert t.rank == {"alpha": 1, "beta": 2, "gamma": 3}
    assert t.runs == {"alpha": "run_a", "beta": "run_a", "gamma": "run_b"}
    assert t.rank_held["alpha"] == 1.0 and 0.0 < t.rank_held["beta"] < 1.0


def test_pairwise_p_values_match_a_hand_computation(two_runs_shared):
    two_runs = two_runs_shared
    board = _board(two_runs)
    reps = pd.concat([pd.read_csv(p / "replicates.csv") for p in two_runs])

    def vec(model, metric):
        r = reps[(reps["model"] == model) & (reps["metric"] == metric)].sort_values("replicate")
        return r["value"].tolist()

    pw = board.pairwise.set_index(["column", "model_a", "model_b"])
    for column, metric, a, b in [("fad@vggish", "fad", "beta", "gamma"), ("clap@clap", "clap", "gamma", "beta"),
                                 ("fad@vggish", "fad", "alpha", "gamma")]:
        d = [x - y for x, y in zip(vec(a, metric), vec(b, metric))]
        row = pw.loc[(column, a, b)]
        assert row["p"] == pytest.approx(_hand_p(d)) and row["n_replicates"] == len(d) == 200
        assert row["note"] == ""
    # the clear difference is significant, the tie is not (in both metrics)
    assert pw.loc[("fad@vggish", "alpha", "beta"), "significant"]
    assert pw.loc[("fad@vggish", "alpha", "beta"), "p"] == 0.0
    assert not pw.loc[("fad@vggish", "beta", "gamma"), "significant"]
    assert pw.loc[("fad@vggish", "beta", "gamma"), "p"] > 0.2
    assert not pw.loc[("clap@clap", "gamma", "beta"), "significant"]
    # full-set difference and its interval
    r = pw.loc[("fad@vggish", "alpha", "beta")]
    assert r["diff"] == pytest.approx(-2.0) and r["diff_ci_low"] < -2.0 < r["diff_ci_high"] < 0


def test_no_dagger_when_the_top_two_tie(tmp_path, run_factory):
    run = run_factory(tmp_path, "tie", ["gamma", "beta"])
    t = _board([run]).tables[0]
    fad, clap = t.columns[:2]
    assert t.cell("beta", fad).best and not t.cell("beta", fad).dagger
    assert t.cell("gamma", clap).best and not t.cell("gamma", clap).dagger


def test_holm_changes_the_family_not_the_clear_result(two_runs_shared):
    two_runs = two_runs_shared
    board = _board(two_runs, holm=True)
    pw = board.pairwise
    assert (pw["p_holm"] >= pw["p"]).all()
    assert board.tables[0].cell("alpha", board.tables[0].columns[0]).dagger


def test_runs_with_other_resamples_are_not_paired(two_runs):
    _, b = two_runs
    man = json.loads((b / "manifest.json").read_text())
    man["config"]["seed"] = 7
    (b / "manifest.json").write_text(json.dumps(man))
    board = _board(two_runs)
    pw = board.pairwise.set_index(["column", "model_a", "model_b"])
    r = pw.loc[("fad@vggish", "alpha", "gamma")]
    assert math.isnan(r["p"]) and "not paired" in r["note"] and not r["significant"]
    assert not math.isnan(pw.loc[("fad@vggish", "alpha", "beta"), "p"])  # same run: still paired
    st = board.stability[board.stability["column"] == "fad@vggish"]
    assert set(st["model"]) == {"alpha", "beta"}  # rank stability only over paired rows
    assert math.isnan(board.tables[0].rank_held["alpha"])  # not the table's ranks: no P(rank) column value


def test_rank_stability_rows_sum_to_one(two_runs_shared):
    two_runs = two_runs_shared
    st = _board(two_runs).stability
    dist = st[[c for c in st.columns if c.startswith("p_rank_") and c != "p_rank_held"]]
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    held = st[(st["column"] == "fad@vggish")].set_index("model")["p_rank_held"]
    assert held["alpha"] == 1.0 and held["beta"] == held["gamma"]  # beta keeps 2 exactly when gamma keeps 3


def test_cell_text_and_decimals():
    assert decimals_for([3.21, 4.5]) == 2 and decimals_for([0.43, 0.28]) == 3
    assert decimals_for([1234.0]) == 0 and decimals_for([0.0012]) == 4 and decimals_for([]) == 2
    assert decimals_for([7.0, 130.0, 161.0]) == 1  # 2 significant digits for the smallest value
    assert decimals_for([1e-9, 3.34, 2.05]) == 2  # a near-zero oracle does not force 4 decimals
    assert cell_text(Cell(-1e-9, -2e-9, 0.001, status="ok"), 2) == ("0.00", "[0.00, 0.00]")
    assert cell_text(Cell(3.2149, 2.9, 3.5, status="ok"), 2) == ("3.21", "[2.90, 3.50]")
    assert cell_text(Cell(3.2, status="ok"), 1) == ("3.2", "")
    assert cell_text(Cell(status="unavailable", reason="x"), 2) == ("unavailable", "")
    assert cell_text(Cell(), 2) == ("—", "")


def test_write_reports_in_a_run_folder(two_runs):
    a, _ = two_runs
    written = write_reports(a, formats=("md", "tex", "html", "csv"))
    assert [p.name for p in written] == ["leaderboard.md", "leaderboard.tex", "report.html", "significance.csv",
                                         "rank_stability.csv"]
    assert all(p.parent == a and p.stat().st_size > 0 for p in written)
    sig = pd.read_csv(a / "significance.csv")
    assert set(sig["column"]) == {"fad@vggish", "clap@clap"} and len(sig) == 2
    with pytest.raises(ValueError, match="unknown report format"):
        write_reports(a, formats=("pdf",))


def test_minimal_and_empty_run_folders(two_runs_shared, tmp_path):
    only_long = tmp_path / "only_long"
    only_long.mkdir()
    long = pd.read_csv(two_runs_shared[0] / "leaderboard_long.csv", keep_default_na=False)
    long.to_csv(only_long / "leaderboard_long.csv", index=False)
    write_reports(only_long, formats=("md", "html"))
    md = (only_long / "leaderboard.md").read_text()
    assert "Significance not tested: no paired bootstrap replicates." in md and "†" not in md.split("_Cells")[0]
    assert "| 1 | alpha | 24 | — | **3.04** [2.56, 3.53] |" in md  # CIs from the long table, no P(rank)
    empty = tmp_path / "empty"
    empty.mkdir()
    long.iloc[:0].to_csv(empty / "leaderboard_long.csv", index=False)
    write_reports(empty, formats=("md", "tex", "html"))
    assert "No metric rows in these runs." in (empty / "leaderboard.md").read_text()
    assert "<table class=\"leaderboard\"" not in (empty / "report.html").read_text()
