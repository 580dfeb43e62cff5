"""bench.paths: untrusted ids become safe, distinct file names; nothing escapes the output folder."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.paths import inside, safe_id

NASTY = ["../../x", "..", ".", "", "/etc/passwd", "a/b", "a_b", "a\x00b", "🎵 song", "con", "x" * 300, "\\..\\win",
         " lead space", "é", "e\u0301", ".hidden", "a:b*c?d", "line\nbreak"]


@pytest.mark.parametrize("raw", NASTY)
def test_safe_id_is_a_plain_file_name(raw, tmp_path):
    name = safe_id(raw)
    assert name and name not in (".", "..") and not name.startswith(".")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert len(name) <= 80 + 9
    assert name.isascii()
    (tmp_path / name).write_text("ok")  # the OS accepts it
    assert (tmp_path / name).parent == tmp_path


def test_safe_id_keeps_clean_ids_and_separates_lookalikes():
    assert safe_id("demo-00") == "demo-00" and safe_id("p_1.x") == "p_1.x"
    names = [safe_id(r) for r in NASTY]
    assert len(set(names)) == len(NASTY)  # "a/b" vs "a_b", "é" vs "e\u0301", ...


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=40), min_size=2, max_size=8, unique=True))
def test_safe_id_is_injective_and_safe(raws):
    names = [safe_id(r) for r in raws]
    assert len(set(names)) == len(raws)
    for n in names:
        assert n and "/" not in n and "\x00" not in n and n not in (".", "..") and not n.startswith(".")


def test_inside_refuses_escapes(tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    assert inside(root, "audio", "x.wav") == (root / "audio" / "x.wav").resolve()
    assert inside(root) == root.resolve()
    for parts in [("..", "x"), ("a", "..", "..", "x"), ("/etc/passwd",)]:
        with pytest.raises(ValueError, match="escapes"):
            inside(root, *parts)
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", root / "link")
    with pytest.raises(ValueError, match="escapes"):
        inside(root, "link", "x.wav")  # a symlink inside the folder pointing out of it


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=30))
def test_inside_with_safe_id_never_escapes(tmp_path_factory, raw):
    root = tmp_path_factory.getbasetemp() / "inside_root"
    p = inside(root, "audio", safe_id(raw), safe_id(raw) + ".wav")
    assert root.resolve() in p.parents
