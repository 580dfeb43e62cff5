"""AudioCaps loader against pandas' reading of the shipped caption file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from bench.prompt_sets.audiocaps import load

CSV = Path(__file__).resolve().parents[2] / "bench" / "datasets" / "audiocaps" / "audiocaps-test.csv"


@pytest.fixture(scope="module")
def df():
    return pd.read_csv(CSV, keep_default_na=False)


def test_one_caption_per_clip(df):
    ps = load(str(CSV))
    clips = df.drop_duplicates("youtube_id").youtube_id.tolist()  # order of first appearance
    first = df.sort_values("audiocap_id").groupby("youtube_id").first()
    assert len(ps) == 975 and [p.meta["youtube_id"] for p in ps] == clips
    assert [p.id for p in ps] == [str(first.audiocap_id[y]) for y in clips]
    assert [p.text for p in ps] == [first.caption[y].strip() for y in clips]
    assert all(len(p.meta["captions"]) == 5 for p in ps)
    assert "MIT" in ps.license and "academic" in ps.license


def test_all_captions(df):
    ps = load(str(CSV), captions="all", limit=10)
    assert len(ps) == 50 and len({p.id for p in ps}) == 50
    yid = ps.prompts[0].meta["youtube_id"]
    caps = df[df.youtube_id == yid].sort_values("audiocap_id").caption.str.strip().tolist()
    assert [p.text for p in ps.prompts[:5]] == caps
    assert [p.id for p in ps.prompts[:5]] == [f"{yid}_{k}" for k in range(1, 6)]
    assert len(load(str(CSV), captions="all")) == 4875


def test_reference_pattern_with_meta_fields(tmp_path, df):
    yid = df.youtube_id[0]
    sf.write(str(tmp_path / f"Y{yid}.wav"), np.zeros(160, np.float32), 16000)
    ps = load(str(CSV), limit=2, reference_dir=str(tmp_path), reference_pattern="Y{youtube_id}.wav")
    assert ps.prompts[0].reference == str(tmp_path / f"Y{yid}.wav") and ps.prompts[1].reference is None
    with pytest.raises(ValueError, match="unknown field"):
        load(str(CSV), limit=1, reference_dir=str(tmp_path), reference_pattern="{ytid}.wav")
