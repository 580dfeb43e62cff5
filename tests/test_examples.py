"""The committed example results (results/examples/, written by scripts/make_examples.sh) hold what the
README claims: the demo's expected ordering on every column the claim names, only computable columns in
leaderboard.csv, and a results/examples/README.md whose numbers are the committed run's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "results" / "examples" / "demo"


def _claim() -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(r"Expected ordering[^\n]*(?:\n(?!\n)[^\n]*)*", text)
    assert m, "README lost its demo ordering claim"
    return m.group(0)


def test_readme_ordering_claim_holds_for_every_column_it_names():
    board = pd.read_csv(EXAMPLE / "leaderboard.csv").set_index("model")
    claim = _claim()
    strict = re.search(r"oracle < synth < noise\s+on\s+((?:`[^`]+`(?:,|\s+and|\s+or)?\s*)+)", claim)
    assert strict, claim
    columns = re.findall(r"`([^`]+@[^`]+)`", strict.group(1))
    assert columns, claim
    for col in columns:
        v = pd.to_numeric(board[col])
        assert v["oracle"] < v["synth"] < v["noise"], (col, v.to_dict())
    for col, rest in re.findall(r"`([^`]+@[^`]+)` ranks the oracle first( but noise before synth)?", claim):
        v = pd.to_numeric(board[col])
        assert v.idxmin() == "oracle", (col, v.to_dict())
        if rest:
            assert v["noise"] < v["synth"], (col, v.to_dict())
    named = set(re.findall(r"`([a-z_.]+@[a-z_]+)`", claim))
    assert named <= set(board.columns), named - set(board.columns)


def test_example_board_has_only_computable_columns_and_no_reason_text():
    board = pd.read_csv(EXAMPLE / "leaderboard.csv")
    assert list(board.columns) == [
        "run_id", "model", "prompt_set", "reference_set", "rank", "n_samples", "same_n",
        "fad@musicnn", "kad@musicnn", "mad@musicnn", "kl@musicnn", "fad@vggish", "kad@vggish", "mad@vggish",
        "fad@clap", "kad@clap", "mad@clap",
        "clap_score@clap",
    ]
    cells = board.drop(columns=["run_id", "model", "prompt_set", "reference_set"])
    assert all(pd.api.types.is_numeric_dtype(cells[c]) or cells[c].isna().all() for c in cells.columns)
    long = pd.read_csv(EXAMPLE / "leaderboard_long.csv", keep_default_na=False)
    unavailable = long[long["status"] == "unavailable"]
    assert set(unavailable["embedder"]) == {"vggish", "clap"} and unavailable["reason"].str.len().gt(0).all()
    assert "unavailable for oracle, synth, noise" in (EXAMPLE / "leaderboard.md").read_text()


def test_examples_readme_numbers_are_the_committed_runs():
    text = (REPO / "results" / "examples" / "README.md").read_text()
    assert "scripts/make_examples.sh" in text
    c = json.loads((EXAMPLE / "manifest.json").read_text())["counters"]
    assert f"generated {c['generated']}, embedded {c['embedded']}, scored {c['scored']}" in text
    assert "warm rerun" in text and "generated 0, embedded 0, scored 0" in text
