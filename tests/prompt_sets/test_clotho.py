"""Clotho loader (the caption file is not shipped; the tests use a 12-row excerpt, see tests/golden/prompts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from bench.prompt_sets.clotho import load

EXCERPT = Path(__file__).resolve().parents[1] / "golden" / "prompts" / "clotho-evaluation-head12.csv"


def test_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="zenodo"):
        load(str(tmp_path / "nope.csv"))
    with pytest.raises(FileNotFoundError, match="CLOTHO_CAPTIONS"):
        load(None)


def test_tiny_file_ids_with_spaces_commas_unicode(tmp_path):
    names = ["Santa Motor.wav", "MEN RUNNING, FOREST, BREATHING (1).wav", "caf\u00e9 d\u00f6rr.wav"]
    rows = [{"file_name": n, **{f"caption_{k}": f"{n} caption {k}" for k in range(1, 6)}} for n in names]
    pd.DataFrame(rows).to_csv(tmp_path / "c.csv", index=False)
    sf.write(str(tmp_path / names[1]), np.zeros(160, np.float32), 16000)
    one = load(str(tmp_path / "c.csv"), caption_index=3, reference_dir=str(tmp_path))
    assert [p.id for p in one] == names and one.prompts[0].text == "Santa Motor.wav caption 3"
    assert [p.reference is not None for p in one] == [False, True, False]
    every = load(str(tmp_path / "c.csv"), captions="all")
    assert len(every) == 15 and every.prompts[6].id == f"{names[1]}_caption_2"
    assert "non-commercial" in every.license


def test_real_evaluation_file():
    df = pd.read_csv(EXCERPT, keep_default_na=False)
    ps = load(str(EXCERPT))
    assert len(ps) == 12 and [p.id for p in ps] == df.file_name.tolist()
    assert [p.text for p in ps] == [c.strip() for c in df.caption_1]
    every = load(str(EXCERPT), captions="all")
    assert len(every) == 60 and [p.text for p in every][:5] == [df[f"caption_{k}"][0].strip() for k in range(1, 6)]
