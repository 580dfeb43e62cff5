"""The demo data preparer (bench.demo)."""

from __future__ import annotations

import itertools
import json

import pytest
import soundfile as sf

from bench import demo


def test_clip_positions_are_inside_the_track_and_disjoint():
    pos = demo.clip_positions(120.0)
    assert len(pos) == demo.N_POSITIONS
    assert pos[0] == pytest.approx(6.0) and pos[-1] + demo.CLIP_S == pytest.approx(114.0)
    assert all(b - a >= demo.CLIP_S for a, b in itertools.pairwise(pos))  # reference and held-out clips never overlap
    assert set(demo.REFERENCE_POSITIONS).isdisjoint(demo.HELDOUT_POSITIONS)


def test_prepared_demo_matches_its_record():
    """Checks the demo audio when scripts/setup.sh has prepared it (CI does)."""
    d = demo.demo_dir()
    if not (d / "clips.json").is_file():
        pytest.skip("demo audio not prepared (run scripts/setup.sh)")
    rec = json.loads((d / "clips.json").read_text())
    assert "CC BY-SA 3.0" in rec["license"]
    ref = sorted((d / "reference").glob("*.flac"))
    held = sorted((d / "heldout").glob("demo-*.flac"))
    assert len(ref) == 42 and len(held) == 28
    info = sf.info(str(held[0]))
    assert info.samplerate == 48000 and info.channels == 2 and info.duration == pytest.approx(10.0, abs=0.01)
