"""A corpus of bad input: every bad file gets a clear per-file row in errors.csv, the run finishes
with the rest, ``on_error=fail`` stops at the first error, and nothing is written outside the
output and cache folders (hostile prompt ids included)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import bench
from bench.errors import RunFailed

pytestmark = pytest.mark.usefixtures("single_thread")

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

#: file name -> (severity, reason substring); files absent here must produce no row
EXPECTED = {
    "truncated.wav": ("error", "truncated file: the WAV header declares 16000 frames"),
    "corrupt.flac": ("error", "cannot decode"),
    "zero_bytes.wav": ("error", "cannot decode"),
    "header_only.wav": ("error", "empty audio (0 samples)"),
    "nan_inf.wav": ("error", "non-finite samples (NaN/Inf)"),
    "one_ms.wav": ("error", "too short: 1.0 ms"),
    "text.wav": ("error", "cannot decode"),
    "directory.wav": ("error", "reference file listed but not found"),
    "dangling.wav": ("error", "reference file listed but not found"),
    "silent.wav": ("warning", "all-silent (every sample is 0)"),
    "thirty_min.wav": ("warning", "truncated to 600 s (file is 1800.0 s)"),
    "wav_named.flac": ("warning", "extension '.flac' but the content is WAV"),
}
if not IS_ROOT:  # root reads through chmod 000
    EXPECTED["unreadable.wav"] = ("error", "cannot read file (Permission denied)")
GOOD = ["good_a.wav", "good_b.wav", "sr8k.wav", "sr192k.wav", "six_channel.wav"]
HOSTILE_IDS = ["../../x", "a\x00b", "🎵 emoji ✓", "/etc/passwd", "..", "con", "x/../../../y"]


def _write_thirty_minutes(path: Path, sr: int = 8000) -> None:
    """30 min of quiet noise at 8 kHz, written block by block (29 MB)."""
    rng = np.random.default_rng(5)
    block = (0.05 * rng.standard_normal(sr * 60)).astype(np.float32)
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        for _ in range(30):
            f.write(block)


def make_bad_corpus(root: Path, helpers) -> Path:
    """Good and bad files under ``root/bad`` plus ``root/manifest.csv`` listing all of them."""
    d = root / "bad"
    d.mkdir(parents=True)
    rng = np.random.default_rng(3)
    clip = lambda sr, s=1.0: helpers.tone_clip(rng, sr, s)  # noqa: E731
    for name in ("good_a.wav", "good_b.wav"):
        helpers.write_clip(d / name, clip(16000), 16000)
    helpers.write_clip(d / "sr8k.wav", clip(8000), 8000)
    helpers.write_clip(d / "sr192k.wav", np.stack([clip(192000), clip(192000)], axis=1), 192000)
    helpers.write_clip(d / "six_channel.wav", np.stack([clip(16000) for _ in range(6)], axis=1), 16000)
    helpers.write_clip(d / "ok_for_truncation.wav", clip(16000), 16000)
    full = (d / "ok_for_truncation.wav").read_bytes()
    (d / "ok_for_truncation.wav").unlink()
    (d / "truncated.wav").write_bytes(full[: len(full) // 2])
    helpers.write_clip(d / "tmp.flac", clip(16000), 16000)
    (d / "corrupt.flac").write_bytes((d / "tmp.flac").read_bytes()[:3000])
    (d / "tmp.flac").unlink()
    (d / "zero_bytes.wav").write_bytes(b"")
    (d / "header_only.wav").write_bytes(full[:44])
    x = clip(16000)
    x[100], x[200] = np.nan, np.inf
    helpers.write_clip(d / "nan_inf.wav", x, 16000, subtype="FLOAT")
    helpers.write_clip(d / "one_ms.wav", clip(16000, 0.001), 16000)
    (d / "text.wav").write_text("this is not audio\n" * 100)
    (d / "directory.wav").mkdir()
    os.symlink(d / "does_not_exist.wav", d / "dangling.wav")
    helpers.write_clip(d / "silent.wav", np.zeros(16000, np.float32), 16000)
    _write_thirty_minutes(d / "thirty_min.wav")
    sf.write(str(d / "wav_named.flac"), clip(16000), 16000, format="WAV", subtype="PCM_16")
    if not IS_ROOT:
        helpers.write_clip(d / "unreadable.wav", clip(16000), 16000)
        os.chmod(d / "unreadable.wav", 0)
    names = sorted(GOOD + list(EXPECTED))
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "path"])
        for n in names:
            w.writerow([Path(n).stem if n != "wav_named.flac" else "wav_named", f"bad/{n}"])
    return root


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory, helpers, single_thread):
    """One run over the bad corpus (as a reference set and as oracle/paired clips of hostile prompt ids)."""
    tmp = tmp_path_factory.mktemp("bad_input")
    corpus = make_bad_corpus(tmp / "corpus", helpers)
    home = tmp / "home"
    home.mkdir()
    os.environ["GENAUDIO_BENCH_HOME"], old_home = str(home), os.environ.get("GENAUDIO_BENCH_HOME")
    d = corpus / "bad"
    refs = ["good_a.wav", "nan_inf.wav", "silent.wav", "sr192k.wav", "text.wav", "one_ms.wav", "good_b.wav"]
    prompts = [{"id": pid, "text": "calm piano", "reference": str(d / refs[i])} for i, pid in enumerate(HOSTILE_IDS)]
    out = tmp / "out"
    cfg = helpers.tiny_run_config(
        out, corpus,
        prompts={"hostile": {"_target_": "bench.prompts.PromptSet.from_list", "name": "hostile", "prompts": prompts}},
        reference={"bad": {"_target_": "bench.references.ReferenceSet.from_manifest", "name": "bad",
                           "path": str(corpus / "manifest.csv")}},
        run_name="bad/../../run",
    )
    before = helpers.files_under(tmp)
    try:
        run_dir = bench.run(cfg)
        errors_first = (run_dir / "errors.csv").read_text()
        rerun_dir = bench.run(cfg)  # everything embeddable is cached now
    finally:
        if old_home is None:
            os.environ.pop("GENAUDIO_BENCH_HOME", None)
        else:
            os.environ["GENAUDIO_BENCH_HOME"] = old_home
        if not IS_ROOT:
            os.chmod(d / "unreadable.wav", 0o644)
    after = helpers.files_under(tmp)
    return {"tmp": tmp, "out": out, "dir": run_dir, "rerun": rerun_dir, "cfg": cfg, "before": before,
            "after": after, "errors_first": errors_first}


def _rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "errors.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_every_bad_reference_file_has_a_clear_row(bad_run):
    rows = [r for r in _rows(bad_run["dir"]) if r["model"] == "reference"]
    by_file: dict[str, list[dict]] = {}
    for r in rows:
        by_file.setdefault(Path(r["path"]).name, []).append(r)
    for name, (severity, reason) in EXPECTED.items():
        assert name in by_file, f"no errors.csv row for {name}"
        assert any(r["severity"] == severity and reason in r["reason"] for r in by_file[name]), (name, by_file[name])
    for name in GOOD:
        assert name not in by_file, by_file.get(name)
    assert set(by_file) == set(EXPECTED)


def test_the_run_finishes_with_the_good_files(bad_run):
    long = pd.read_csv(bad_run["dir"] / "leaderboard_long.csv")
    fad = long[long.metric == "fad"].set_index("model")
    assert set(fad.index) == {"oracle", "synth", "noise"}
    assert (fad["status"] == "ok").all(), fad[["status", "reason"]]
    assert np.isfinite(fad["value"]).all()
    # oracle: 7 hostile prompts whose paired clips include nan_inf / text / one_ms (errors) -> 4 usable
    m = json.loads((bad_run["dir"] / "manifest.json").read_text())
    cov = m["coverage"]["hostile"]  # coverage=intersect: synth and noise get the prompt ids the oracle produced
    assert cov["covered"]["synth"] == len(HOSTILE_IDS) and cov["n_common"] == cov["covered"]["oracle"] < len(HOSTILE_IDS)
    assert fad.loc["oracle", "n"] == 4 and fad.loc["synth", "n"] == fad.loc["noise", "n"] == cov["n_common"]
    assert m["reference_sets"]["bad"]["n_items"] == len(GOOD) + len(EXPECTED) - 2  # directory + dangling dropped
    n_warn = sum(s == "warning" for s, _ in EXPECTED.values())
    assert m["n_warnings"] >= n_warn and m["n_errors"] >= len(EXPECTED) - n_warn


def test_hostile_prompt_ids_are_reported_with_escaped_ids(bad_run):
    rows = [r for r in _rows(bad_run["dir"]) if r["model"] in ("oracle", "paired")]
    ids = {r["item_id"] for r in rows}
    # paired clips: a\x00b -> nan_inf.wav, 🎵 -> silent.wav (warning), .. -> text.wav, con -> one_ms.wav
    assert ids == {"a\\x00b", "🎵 emoji ✓", "..", "con"}  # the NUL is written escaped
    nan_rows = [r for r in rows if Path(r["path"]).name == "nan_inf.wav"]
    assert {r["model"] for r in nan_rows} == {"oracle", "paired"} and nan_rows[0]["item_id"] == "a\\x00b"


def test_nothing_is_written_outside_the_run_and_cache_folders(bad_run):
    run_dir = bad_run["dir"].resolve()
    cache = (bad_run["out"] / "cache").resolve()
    assert run_dir.parent == (bad_run["out"] / "results").resolve()  # run_name "bad/../../run" was made safe
    new = {p.resolve() if not p.is_symlink() else p for p in bad_run["after"] - bad_run["before"]}
    assert new, "the run wrote nothing?"
    outside = [p for p in new if run_dir not in p.parents and cache not in p.parents]
    assert outside == []
    generated = list((run_dir / "audio").rglob("*.wav"))
    assert len(generated) == 2 * len(HOSTILE_IDS)  # synth + noise; every hostile id got its own file
    for p in generated:
        assert "\x00" not in p.name and ".." not in p.relative_to(run_dir).parts


def test_warnings_survive_a_fully_cached_rerun(bad_run):
    m = json.loads((bad_run["rerun"] / "manifest.json").read_text())
    assert m["counters"]["embedded"] == 0 and m["counters"]["generated"] == 0
    assert (bad_run["rerun"] / "errors.csv").read_text() == bad_run["errors_first"]


def test_fail_policy_stops_at_the_first_bad_file(tmp_path, helpers):
    corpus = make_bad_corpus(tmp_path / "corpus", helpers)
    (corpus / "bad" / "thirty_min.wav").unlink()
    ref = {"bad": {"_target_": "bench.references.ReferenceSet.from_manifest", "name": "bad",
                   "path": str(corpus / "manifest.csv")}}
    cfg = helpers.tiny_run_config(tmp_path / "out", corpus, on_error="fail", model={}, prompts={}, reference=ref)
    try:
        with pytest.raises(RunFailed, match=r"failed for reference/bad item '\w+'"):
            bench.run(cfg)
    finally:
        if not IS_ROOT:
            os.chmod(corpus / "bad" / "unreadable.wav", 0o644)
    assert not (tmp_path / "out" / "results" / "tiny" / "leaderboard.csv").exists()


def test_reference_folder_reports_broken_links_and_folders_named_like_audio(tmp_path, helpers):
    d = tmp_path / "ref"
    d.mkdir()
    helpers.write_clip(d / "good.wav", np.random.default_rng(0).uniform(-0.3, 0.3, 16000).astype(np.float32), 16000)
    (d / "directory.wav").mkdir()
    os.symlink(d / "does_not_exist.wav", d / "dangling.wav")
    cfg = helpers.tiny_run_config(
        tmp_path / "out", helpers.make_tiny_corpus(tmp_path / "corpus"),
        reference={"f": {"_target_": "bench.references.ReferenceSet.from_folder", "name": "f", "path": str(d)}},
    )
    run_dir = bench.run(cfg)
    rows = {r["item_id"]: r for r in _rows(run_dir) if r["set"] == "f"}
    assert set(rows) == {"directory", "dangling"}
    assert all(r["severity"] == "error" and r["reason"] for r in rows.values())
    board = pd.read_csv(run_dir / "leaderboard.csv")
    assert pd.to_numeric(board["fad@logmel"]).notna().all()  # the good clip still scores
