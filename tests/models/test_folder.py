"""FolderModel: matching pre-generated files to prompt ids (patterns, manifests, samples, extras)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from bench.errors import ErrorLog, RunFailed
from bench.models.folder import FilePattern, FolderModel
from bench.paths import safe_id
from bench.prompts import Prompt

IDS = ["-0Gj8-vB1q4", "Santa Motor.wav", "caf\u00e9, b\u00e4r [1]*"]
PROMPTS = [Prompt(i, f"text {n}") for n, i in enumerate(IDS)]


def wav(path, seconds=0.05, sr=8000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(seconds * sr), np.float32), sr)
    return path


def snapshot(root):
    return sorted((p.relative_to(root).as_posix(), p.stat().st_mtime_ns) for p in root.rglob("*"))


def test_pattern_ids_with_dashes_spaces_unicode_and_glob_characters(tmp_path):
    root = tmp_path / "suno"
    files = {i: wav(root / f"{i}.wav") for i in IDS}
    wav(root / "unrelated.wav")
    before = snapshot(root)
    errors = ErrorLog()
    m = FolderModel(path=str(root), pattern="{id}.wav", name="suno")
    out = m.gather(PROMPTS, tmp_path / "out", errors, "musiccaps", progress=False)
    assert out == {i: files[i].resolve() for i in IDS} and not errors.rows
    assert m.extra_files == [(root / "unrelated.wav").resolve()]
    assert (tmp_path / "out" / "extra_files.txt").read_text().strip().endswith("unrelated.wav")
    assert snapshot(root) == before  # the user's folder is never written to


def test_missing_undecodable_ambiguous_and_extra_rows(tmp_path):
    root = tmp_path / "gen"
    wav(root / "a.wav")
    (root / "b.wav").write_bytes(b"not audio at all")
    wav(root / "c.wav")
    wav(root / "c.flac")
    wav(root / "zzz.ogg", sr=8000)
    prompts = [Prompt(x, x) for x in ("a", "b", "c", "d")]
    errors = ErrorLog()
    m = FolderModel(path=str(root), pattern="{id}.*", report_extra="error")
    out = m.gather(prompts, tmp_path / "o", errors, "set", progress=False)
    assert list(out) == ["a"]
    reasons = {r.item_id: r.reason for r in errors.rows if r.item_id}
    assert reasons["b"] == "file does not decode"
    assert reasons["c"].startswith("ambiguous: 2 files match")
    assert m.missing == ["d"]  # missing prompts: one summary row, the ids on the model (missing.csv in a run)
    summary = [r for r in errors.rows if r.reason.startswith("no file for")]
    assert len(summary) == 1 and summary[0].reason.startswith("no file for 1 of 4 prompts") and "'d'" in summary[0].reason
    extra = [r for r in errors.rows if r.reason == "extra file not matched to any prompt"]
    assert [r.path for r in extra] == [str((root / "zzz.ogg").resolve())]
    with pytest.raises(RunFailed):  # on_error=fail stops at the first bad item
        m.gather(prompts, tmp_path / "o", ErrorLog("fail"), "set", progress=False)


def test_samples_index_subfolders_and_safe_id(tmp_path):
    root = tmp_path / "f"
    for n, i in enumerate(IDS):
        for k in (1, 2):
            wav(root / f"batch{n % 2}" / f"{safe_id(i)}_take{k}.wav")
    m = FolderModel(path=str(root), pattern="**/{safe_id}_take{k}.wav", n_samples_per_prompt=2, first_k=1)
    errors = ErrorLog()
    out = m.gather(PROMPTS, tmp_path / "o", errors, "s", progress=False)
    assert sorted(out) == sorted(f"{i}#{k}" for i in IDS for k in (0, 1)) and not errors.rows
    assert out[f"{IDS[1]}#1"].name == f"{safe_id(IDS[1])}_take2.wav"

    # position in the set, or a metadata field (fadtk's samples are named by the MusicCaps row)
    for n in range(3):
        wav(tmp_path / "pos" / f"clip{n:03d}.wav")
        wav(tmp_path / "fadtk" / f"mg-{10 * n}.flac")
    m = FolderModel(path=str(tmp_path / "pos"), pattern="clip{index:03d}.wav")
    assert sorted(m.gather(PROMPTS, tmp_path / "o2", ErrorLog(), "s", progress=False)) == sorted(IDS)
    rows = [Prompt(i, "t", meta={"row": 10 * n}) for n, i in enumerate(IDS)]
    m = FolderModel(path=str(tmp_path / "fadtk"), pattern="mg-{row}.flac")
    assert m.gather(rows, tmp_path / "o3", ErrorLog(), "s", progress=False)[IDS[2]].name == "mg-20.flac"
    with pytest.raises(ValueError, match="available"):
        FolderModel(path=str(tmp_path / "fadtk"), pattern="mg-{nope}.flac").gather(rows, tmp_path / "o4", ErrorLog())
    with pytest.raises(ValueError, match=r"\{k\}"):
        FolderModel(path=str(root), pattern="{id}.wav", n_samples_per_prompt=2)


def test_manifest_with_relative_paths_samples_and_unknown_ids(tmp_path):
    d = tmp_path / "m"
    wav(d / "audio" / "x0.wav")
    wav(d / "audio" / "x1.wav")
    wav(d / "audio" / "other.wav")
    (d / "manifest.csv").write_text(
        "id,sample,path\n-0Gj8-vB1q4,0,audio/x0.wav\n-0Gj8-vB1q4,1,audio/x1.wav\nnot-a-prompt,0,audio/other.wav\n"
    )
    m = FolderModel(manifest=str(d / "manifest.csv"), n_samples_per_prompt=2)
    errors = ErrorLog()
    out = m.gather(PROMPTS[:1], tmp_path / "o", errors, "s", progress=False)
    assert out == {"-0Gj8-vB1q4#0": (d / "audio/x0.wav").resolve(), "-0Gj8-vB1q4#1": (d / "audio/x1.wav").resolve()}
    assert m.extra_files == [(d / "audio" / "other.wav").resolve()] and not errors.rows


def test_keep_restricts_items_and_traversal_ids_find_nothing(tmp_path):
    root = tmp_path / "r"
    wav(root / "a.wav")
    wav(root / "b.wav")
    wav(tmp_path / "secret.wav")
    prompts = [Prompt("a", "a"), Prompt("b", "b"), Prompt("../secret", "x")]
    errors = ErrorLog()
    m = FolderModel(path=str(root))
    out = m.gather(prompts, tmp_path / "o", errors, "s", progress=False, keep=lambda iid: iid != "b")
    assert list(out) == ["a"] and m.extra_files == []  # b's file is matched (by another shard), not extra
    assert m.missing == ["../secret"] and len(errors.rows) == 1  # one summary row
    assert errors.rows[0].reason.startswith("no file for 1 of 2 prompts")  # of this shard's 2 items


def test_output_inside_audio_folder_writes_nothing(tmp_path):
    root = tmp_path / "r"
    wav(root / "a.wav")
    before = snapshot(root)
    FolderModel(path=str(root)).gather([Prompt("a", "a")], root / "results", ErrorLog(), "s", progress=False)
    assert snapshot(root) == before


def test_pattern_validation_and_literal_prefix():
    with pytest.raises(ValueError, match="bad field"):
        FilePattern("{0}.wav")
    with pytest.raises(ValueError, match="must contain"):
        FilePattern("*_{k}.wav")
    prefix, rx = FilePattern("sub/{id}_*.wav").render({"id": "a*b", "safe_id": "", "k": 0, "index": 0})
    assert prefix == "sub/a*b_" and rx.match("sub/a*b_x.wav") and not rx.match("sub/aXb_x.wav")
    assert FilePattern("{index:04d}.wav").render({"id": "", "safe_id": "", "k": 0, "index": 7}) == ("0007.wav", None)
