"""bench.prompt_sets helpers: user tables (CSV / JSONL), deterministic subsets, reference pairing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from bench.prompt_sets import attach_references, from_table, select
from bench.prompts import Prompt


def test_select_windows_partition_a_seeded_permutation():
    items = list(range(100))
    assert select(items, 5) == [0, 1, 2, 3, 4] and select(items, 3, offset=98) == [98, 99]
    parts = [select(items, 25, offset=o, sample_seed=7) for o in (0, 25, 50, 75)]
    assert sorted(x for p in parts for x in p) == items and all(p == sorted(p) for p in parts)
    assert parts[0] == sorted(np.random.default_rng(7).permutation(100)[:25].tolist())


def test_csv_and_jsonl_tables(tmp_path):
    (tmp_path / "clips").mkdir()
    sf.write(str(tmp_path / "clips" / "b.wav"), np.zeros(160, np.float32), 16000)
    sf.write(str(tmp_path / "clips" / "c.wav"), np.zeros(160, np.float32), 16000)
    (tmp_path / "p.csv").write_text("id,text,reference,genre\na,first,,rock\nb,second,clips/b.wav,jazz\nc,third,,pop\n")
    ps = from_table(str(tmp_path / "p.csv"), name="mine", reference_dir=str(tmp_path / "clips"), license="CC0")
    assert [p.id for p in ps] == ["a", "b", "c"] and ps.prompts[0].meta == {"genre": "rock"}
    assert ps.prompts[1].reference == str(tmp_path / "clips" / "b.wav")  # relative to the table
    assert ps.prompts[2].reference == str(tmp_path / "clips" / "c.wav")  # via reference_dir
    assert ps.prompts[0].reference is None and ps.license == "CC0"
    with open(tmp_path / "p.jsonl", "w") as f:
        for i, t in [("x y", "one"), ("../z", "two")]:
            f.write(json.dumps({"key": i, "prompt": t}) + "\n")
    js = from_table(str(tmp_path / "p.jsonl"), id_column="key", text_column="prompt", reference_column=None)
    assert [(p.id, p.text) for p in js] == [("x y", "one"), ("../z", "two")]
    with pytest.raises(ValueError, match="needs columns"):
        from_table(str(tmp_path / "p.jsonl"))


def test_attach_references_refuses_paths_outside_the_folder(tmp_path):
    (tmp_path / "refs").mkdir()
    sf.write(str(tmp_path / "secret.wav"), np.zeros(160, np.float32), 16000)
    sf.write(str(tmp_path / "refs" / "a_1.flac"), np.zeros(160, np.float32), 16000)
    prompts = [Prompt("../secret", "x"), Prompt("a", "y"), Prompt("a*", "z")]
    assert attach_references(prompts, tmp_path / "refs", "{id}.wav") == (0, 3)
    assert attach_references(prompts, tmp_path / "refs", "{id}_*.flac") == (1, 2)
    assert prompts[1].reference.endswith("a_1.flac") and prompts[2].reference is None  # "*" in an id is literal
