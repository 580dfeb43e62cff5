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
#: fadtk's musiccaps-public-openai.csv (MIT): ytid + openai_refine of every 50th row and of the 5 empty/"None" rows
OPENAI_EXCERPT = REPO / "tests" / "golden" / "prompts" / "musiccaps-openai-refine-excerpt.csv"


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


def test_refined_file_is_fadtks_column_unchanged(tmp_path):
    fadtk = pd.read_csv(OPENAI_EXCERPT, keep_default_na=False)
    shipped = pd.read_csv(REFINED, keep_default_na=False).set_index("ytid")
    assert shipped.loc[fadtk.ytid, "openai_refine"].tolist() == fadtk.openai_refine.tolist()
    # a file in fadtk's own layout (MusicCaps columns + openai_refine) loads to the same prompts
    public = pd.read_csv(CSV, keep_default_na=False).set_index("ytid").loc[fadtk.ytid].reset_index()
    public["openai_refine"] = fadtk.openai_refine.values
    public.to_csv(tmp_path / "fadtk-layout.csv", index=False)
    direct = load(str(tmp_path / "fadtk-layout.csv"), text="refined")
    bad = fadtk.openai_refine.str.strip().isin(["", "None"])
    assert [p.id for p in direct] == fadtk.ytid[~bad].tolist() and int(bad.sum()) == 5
    by_id = {p.id: p.text for p in load(str(CSV), text="refined", refined_path=str(REFINED))}
    assert [p.text for p in direct] == [by_id[p.id] for p in direct]


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
