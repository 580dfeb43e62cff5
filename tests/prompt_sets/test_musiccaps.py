"""MusicCaps loader against pandas' reading of the shipped (and shared) caption files."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from bench.prompt_sets.musiccaps import load

REPO = Path(__file__).resolve().parents[2]
CSV = REPO / "bench" / "datasets" / "musiccaps" / "musiccaps-public.csv"
REFINED = REPO / "bench" / "datasets" / "musiccaps" / "musiccaps-refined-fadtk.csv"
SHARED_OPENAI = REPO.parent / "shared" / "data" / "prompts" / "musiccaps-public-openai.csv"


@pytest.fixture(scope="module")
def df():
    return pd.read_csv(CSV, keep_default_na=False)


def test_full_set_matches_pandas(df):
    ps = load(str(CSV))
    assert len(ps) == len(df) == 5521
    assert [p.id for p in ps] == df.ytid.tolist()
    assert [p.text for p in ps] == [c.strip() for c in df.caption]
    assert sum(p.id.startswith("-") for p in ps) == 107  # raw ids keep their leading dashes
    p0 = ps.prompts[0]
    assert p0.id == "-0Gj8-vB1q4" and p0.meta["row"] == 0 and p0.reference is None
    assert p0.meta["aspects"] == ast.literal_eval(df.aspect_list[0])
    assert "CC BY-SA 4.0" in ps.license and ps.provenance()["n_prompts"] == 5521


@pytest.mark.parametrize(
    ("split", "column", "value"),
    [
        ("eval", "is_audioset_eval", True),
        ("train", "is_audioset_eval", False),
        ("balanced", "is_balanced_subset", True),
    ],
)
def test_splits(df, split, column, value):
    ps = load(str(CSV), split=split)
    want = df[df[column].astype(str) == str(value)]
    assert [p.id for p in ps] == want.ytid.tolist()
    assert [p.meta["row"] for p in ps] == want.index.tolist()
    assert len(ps) == {"eval": 2858, "train": 2663, "balanced": 1000}[split]


def test_refined_and_aspects_texts(df):
    ref = pd.read_csv(REFINED, keep_default_na=False)
    ps = load(str(CSV), text="refined", refined_path=str(REFINED))
    keep = ~ref.openai_refine.str.strip().isin(["", "None"])  # fadtk wrote 3 empty and 2 "None" prompts
    assert len(ps) == 5516 and [p.id for p in ps] == ref.ytid[keep].tolist()
    assert [p.text for p in ps] == [t.strip() for t in ref.openai_refine[keep]]
    assert "MIT" in ps.license
    asp = load(str(CSV), text="aspects", limit=3)
    assert asp.prompts[0].text == ", ".join(ast.literal_eval(df.aspect_list[0]))
    with pytest.raises(FileNotFoundError, match="refined_path"):
        load(str(CSV), text="refined")


@pytest.mark.skipif(not SHARED_OPENAI.is_file(), reason="../shared is absent")
def test_refined_file_is_fadtks_column_unchanged():
    fadtk = pd.read_csv(SHARED_OPENAI, keep_default_na=False)
    direct = load(str(SHARED_OPENAI), text="refined")  # fadtk's own file carries the column
    shipped = load(str(CSV), text="refined", refined_path=str(REFINED))
    assert [p.text for p in direct] == [p.text for p in shipped]
    assert len(direct) == int((~fadtk.openai_refine.str.strip().isin(["", "None"])).sum()) == 5516


def test_subsets_are_deterministic_and_ordered():
    first = load(str(CSV), split="eval", limit=5)
    assert [p.id for p in first] == [p.id for p in load(str(CSV), split="eval")][:5]
    a = load(str(CSV), split="eval", limit=50, sample_seed=0)
    b = load(str(CSV), split="eval", limit=50, sample_seed=0, offset=50)
    assert [p.id for p in a] == [p.id for p in load(str(CSV), split="eval", limit=50, sample_seed=0)]
    assert not {p.id for p in a} & {p.id for p in b}
    rows = [p.meta["row"] for p in a]
    assert rows == sorted(rows) and rows != list(range(rows[0], rows[0] + 50))


def test_reference_dir_pairs_existing_clips(tmp_path):
    for ytid in ("-0Gj8-vB1q4", "-0vPFx-wRRI"):
        sf.write(str(tmp_path / f"{ytid}.wav"), np.zeros(160, np.float32), 16000)
    ps = load(str(CSV), limit=3, reference_dir=str(tmp_path))
    assert [Path(p.reference).name if p.reference else None for p in ps] == ["-0Gj8-vB1q4.wav", None, "-0vPFx-wRRI.wav"]
    with pytest.raises(ValueError, match="split"):
        load(str(CSV), split="test")
