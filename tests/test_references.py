"""Reference sets: folders, manifests, statistics, content hashes."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from bench.references import ReferenceSet


def _wav(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.random.default_rng(seed).uniform(-0.5, 0.5, 1600).astype(np.float32), 16000)
    return path


def test_folder_lists_audio_recursively_with_relative_ids(tmp_path):
    _wav(tmp_path / "a.wav")
    _wav(tmp_path / "sub" / "b.flac", 1)
    (tmp_path / "notes.txt").write_text("not audio")
    ref = ReferenceSet.from_folder("r", str(tmp_path), license="CC0")
    assert sorted(ref.items) == ["a", "sub/b"]
    assert ref.provenance_dict()["license"] == "CC0" and ref.provenance_dict()["n_items"] == 2
    assert len(ReferenceSet.from_folder("r", str(tmp_path), limit=1)) == 1
    with pytest.raises(FileNotFoundError, match=r"reference\.r\.path"):
        ReferenceSet.from_folder("r", str(tmp_path / "nope"))


def test_content_hash_changes_with_content_only(tmp_path):
    a = _wav(tmp_path / "x" / "a.wav")
    h1 = ReferenceSet.from_folder("r", str(tmp_path / "x")).content_hash()
    assert ReferenceSet.from_folder("other-name", str(tmp_path / "x")).content_hash() == h1
    _wav(a, seed=5)
    assert ReferenceSet.from_folder("r", str(tmp_path / "x")).content_hash() != h1


def test_manifest_resolves_relative_paths_and_reports_missing(tmp_path):
    _wav(tmp_path / "clips" / "a.wav")
    (tmp_path / "m.csv").write_text("id,path\nA,clips/a.wav\nB,clips/missing.wav\n")
    ref = ReferenceSet.from_manifest("m", str(tmp_path / "m.csv"))
    assert ref.items["A"] == tmp_path / "clips" / "a.wav"
    assert ref.missing == ["B"]


def test_stats_reference(tmp_path):
    p = tmp_path / "s.npz"
    np.savez(p, mu=np.zeros(3), cov=np.eye(3), n=10)
    ref = ReferenceSet.from_stats("s", str(p), embedder="vggish")
    assert ref.is_stats and ref.stats_embedder == "vggish" and len(ref) == 0
    assert len(ref.content_hash()) == 16


def test_broken_link_and_folder_named_like_audio_are_kept_for_error_reporting(tmp_path):
    _wav(tmp_path / "ok.wav")
    (tmp_path / "dangling.wav").symlink_to(tmp_path / "nowhere.wav")
    (tmp_path / "folder.flac").mkdir()
    ref = ReferenceSet.from_folder("r", str(tmp_path))
    assert sorted(ref.items) == ["dangling", "folder", "ok"]
