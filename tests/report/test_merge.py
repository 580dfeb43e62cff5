"""Finding, loading and merging run folders (bench.report.merge)."""

from __future__ import annotations

import json
import logging
import shutil

import pandas as pd
import pytest

from bench.report.leaderboard import LONG_COLUMNS
from bench.report.merge import MERGED_KIND, MixedRunsError, RunNotFound, find_runs, load_run, merge_runs


def test_load_run_reads_every_table(two_runs):
    a, _ = two_runs
    run = load_run(a)
    assert run.run_id == "run_a" and run.config_hash == "cfg-run_a" and run.seed == 0
    assert set(run.long["model"]) == {"alpha", "beta"}
    assert len(run.replicates) == 2 * 2 * 200 and len(run.per_item) == 2 * 2 * 24
    assert run.per_item["item_id"].iloc[0] == "p00"  # ids stay strings
    assert len(run.curves) == 2 * 4 and len(run.errors) == 1
    assert run.audio_path("alpha", "demo", "p03") == a / "audio/alpha/p03.wav"
    assert run.audio_path("alpha", "demo", "p03#0") == a / "audio/alpha/p03.wav"  # falls back to the prompt
    assert run.audio_path("alpha", "demo", "nope") is None
    with pytest.raises(RunNotFound):
        load_run(a / "audio")


def test_find_runs_folders_globs_and_hydra_multirun(tmp_path, two_runs, run_factory):
    a, b = two_runs
    assert find_runs([a.parent]) == [a.resolve(), b.resolve()]
    assert find_runs([str(a.parent / "run_*")]) == [a.resolve(), b.resolve()]
    assert find_runs([a / "leaderboard_long.csv", a]) == [a.resolve()]
    # Hydra multirun: multirun/<name>/<date_time>/<job>/ holding the run folder (or being it)
    sweep = tmp_path / "multirun" / "demo" / "2026-01-01_10-00-00"
    run_factory(sweep / "0", "job0", ["alpha"])
    shutil.copytree(b, sweep / "1", dirs_exist_ok=True)
    found = find_runs([str(tmp_path / "multirun" / "**" / "leaderboard_long.csv")])
    assert found == [(sweep / "0" / "job0").resolve(), (sweep / "1").resolve()]
    assert find_runs([tmp_path / "multirun"]) == found
    with pytest.raises(RunNotFound):
        find_runs([str(tmp_path / "nothing*")])


def test_find_runs_skips_merged_boards(tmp_path, two_runs):
    a, _ = two_runs
    merged = tmp_path / "results" / "leaderboard"
    merged.mkdir()
    shutil.copy(a / "leaderboard_long.csv", merged / "leaderboard_long.csv")
    (merged / "manifest.json").write_text(json.dumps({"kind": MERGED_KIND}))
    assert merged.resolve() not in find_runs([tmp_path / "results"])


def test_merge_two_comparable_runs(two_runs):
    merged = merge_runs([load_run(p) for p in two_runs])
    assert list(merged.long.columns) == list(LONG_COLUMNS)
    assert set(merged.long["model"]) == {"alpha", "beta", "gamma"}
    assert not merged.mixed and merged.notes == []
    assert set(merged.replicates["run_id"]) == {"run_a", "run_b"} and len(merged.replicates) == 3 * 2 * 200
    assert len(merged.errors) == 2 and set(merged.errors["run_id"]) == {"run_a", "run_b"}
    # cells of different runs on the same prompts + seed share resamples, so they pair
    ka = merged.runs["run_a"].resample_key("beta", "demo", "vggish", "ref", "fad")
    kb = merged.runs["run_b"].resample_key("gamma", "demo", "vggish", "ref", "fad")
    assert ka == kb and ka.startswith("seed=0:")


def test_mixed_embedder_id_is_refused_unless_allowed(tmp_path, two_runs, run_factory):
    a, _ = two_runs
    c = run_factory(tmp_path / "other", "run_c", ["delta"], embedder_ids={"vggish": "vggish-OTHERPREP"})
    runs = [load_run(a), load_run(c)]
    with pytest.raises(MixedRunsError) as err:
        merge_runs(runs)
    text = str(err.value)
    assert "'vggish'" in text and "vggish-aaaa" in text and "vggish-OTHERPREP" in text
    assert "run_a" in text and "run_c" in text and "--allow-mixed" in text
    merged = merge_runs(runs, allow_mixed=True)
    assert list(merged.long.columns) == [*LONG_COLUMNS, "mixed"]
    vgg = merged.long[(merged.long["embedder"] == "vggish")]
    assert (vgg["mixed"].str.contains("embedder_id differs")).all()
    assert (merged.long.loc[merged.long["embedder"] == "clap", "mixed"] == "").all()
    assert merged.mixed and any("allow-mixed" in n for n in merged.notes)


def test_mixed_reference_hash_is_refused(tmp_path, two_runs, run_factory):
    a, _ = two_runs
    c = run_factory(tmp_path / "other", "run_c", ["delta"], reference_hash="refhash-2")
    with pytest.raises(MixedRunsError, match=r"reference set 'ref'.*refhash-1.*refhash-2"):
        merge_runs([load_run(a), load_run(c)])


def test_duplicate_cells_keep_the_newest_run_and_warn(tmp_path, two_runs, caplog, run_factory):
    a, b = two_runs
    newer = run_factory(tmp_path / "rerun", "run_a2", ["beta"], finished="2026-02-01T00:00:00+00:00")
    # the re-run changed beta's value: the merged board must use it
    long = pd.read_csv(newer / "leaderboard_long.csv", keep_default_na=False, na_values={"value": [""]})
    long.loc[(long["model"] == "beta") & (long["metric"] == "fad"), "value"] = 4.5
    long.to_csv(newer / "leaderboard_long.csv", index=False)
    with caplog.at_level(logging.WARNING):
        merged = merge_runs([load_run(newer), load_run(a), load_run(b)])
    beta = merged.long[(merged.long["model"] == "beta") & (merged.long["metric"] == "fad")
                       & (merged.long["embedder"] == "vggish")]
    assert len(beta) == 1 and beta["run_id"].item() == "run_a2" and beta["value"].item() == 4.5
    assert merged.notes == [
        "model 'beta' on prompt set 'demo' is in runs run_a, run_a2: keeping run(s) run_a2 (newest, ok rows first) "
        "for 4 cell(s): clap@clap vs ref, fad@mert vs ref, fad@vggish vs ref, fad.n_frames@vggish vs ref"
    ]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == merged.notes
    # replicates / per-item rows of the dropped cell are gone too
    reps = merged.replicates[(merged.replicates["model"] == "beta") & (merged.replicates["metric"] == "fad")]
    assert set(reps["run_id"]) == {"run_a2"} and len(reps) == 200


def test_ok_row_beats_a_newer_failure(tmp_path, two_runs, run_factory):
    a, _ = two_runs
    newer = run_factory(tmp_path / "rerun", "run_a3", ["alpha"], finished="2026-03-01T00:00:00+00:00")
    long = pd.read_csv(newer / "leaderboard_long.csv", keep_default_na=False, na_values={"value": [""]})
    sel = (long["metric"] == "clap")
    long.loc[sel, ["value", "status", "reason"]] = [float("nan"), "error", "RuntimeError: boom"]
    long.to_csv(newer / "leaderboard_long.csv", index=False)
    merged = merge_runs([load_run(a), load_run(newer)])
    clap = merged.long[(merged.long["model"] == "alpha") & (merged.long["metric"] == "clap")]
    assert clap["run_id"].item() == "run_a" and clap["status"].item() == "ok"
    fad = merged.long[(merged.long["model"] == "alpha") & (merged.long["metric"] == "fad")
                      & (merged.long["embedder"] == "vggish")]
    assert fad["run_id"].item() == "run_a3"


def test_row_without_ids_gives_way_to_a_versioned_row(tmp_path, two_runs, run_factory):
    a, _ = two_runs
    newer = run_factory(tmp_path / "rerun", "run_a4", ["alpha"], finished="2026-03-01T00:00:00+00:00")
    long = pd.read_csv(newer / "leaderboard_long.csv", keep_default_na=False, na_values={"value": [""]})
    sel = long["embedder"] == "vggish"  # the embedder failed to load in the newer run: no embedder_id
    long.loc[sel, ["embedder_id", "value", "status", "reason"]] = ["", float("nan"), "unavailable", "no weights"]
    long.to_csv(newer / "leaderboard_long.csv", index=False)
    merged = merge_runs([load_run(a), load_run(newer)])
    fad = merged.long[(merged.long["model"] == "alpha") & (merged.long["metric"] == "fad")
                      & (merged.long["embedder"] == "vggish")]
    assert len(fad) == 1 and fad["run_id"].item() == "run_a" and fad["status"].item() == "ok"


def test_mixed_versions_of_one_cell_both_survive(tmp_path, two_runs, run_factory):
    from bench.report import build_board

    a, _ = two_runs
    other = run_factory(tmp_path / "o", "run_v2", ["alpha"], embedder_ids={"vggish": "vggish-v2"}, with_audio=False)
    merged = merge_runs([load_run(a), load_run(other)], allow_mixed=True)
    fad = merged.long[(merged.long["model"] == "alpha") & (merged.long["metric"] == "fad")
                      & (merged.long["embedder"] == "vggish")]
    assert sorted(fad["embedder_id"]) == ["vggish-aaaa", "vggish-v2"]
    table = build_board(merged).tables[0]
    assert {"alpha [run_a]", "alpha [run_v2]", "beta"} == set(table.rows)
