"""``bench verify`` offline: everything except the missing weights.

- the shipped copy of fadtk's ``samples_FAD_scores.csv`` (equal to the installed wheel's) and its parsing;
- fadtk's FMA-Pop statistics file;
- the per-song FAD definition: our numbers against fadtk's OWN ``calc_embd_statistics`` /
  ``calc_frechet_distance`` (its source compiled from the installed wheel, see ``benchmarks.peers``) on the
  same embeddings (real fadtk clips through our loader and a VGGish with random weights);
- fadtk's 16-bit WAV step against libsndfile's actual PCM_16 write/read;
- the comparison at fadtk's tolerance, the report files, and the "not checked" listing of every
  embedder without weights (the real config path, offline, in an empty cache).
"""

from __future__ import annotations

import csv
import filecmp
import math
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from bench import verify as V
from bench.embedders.clap import clap_windows
from bench.metrics.stats import GaussianStats, stats_keys
from benchmarks.peers import _extract_function, _module_file


@pytest.fixture(scope="module")
def fadtk():
    try:
        return V.fadtk_data()
    except Exception as exc:
        pytest.skip(f"fadtk wheel not installed: {exc}")


@pytest.fixture(scope="module")
def fadtk_fns():
    path = _module_file("fadtk", "fad")
    if path is None:
        pytest.skip("fadtk not installed")
    return _extract_function(path, "calc_embd_statistics"), _extract_function(path, "calc_frechet_distance")


@pytest.fixture()
def empty_caches(tmp_path, monkeypatch):
    for var, sub in (("GENAUDIO_BENCH_HOME", "home"), ("TORCH_HOME", "torch"), ("HF_HOME", "hf"), ("HOME", "user")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("GENAUDIO_BENCH_OFFLINE", "1")
    for var in list(os.environ):  # no weights through env vars either
        if var.startswith("GENAUDIO_BENCH_") and var not in ("GENAUDIO_BENCH_HOME", "GENAUDIO_BENCH_OFFLINE"):
            monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def random_vggish(tmp_path_factory):
    from bench.embedders.vggish import VGGishNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vggish") / "random_vggish.pth"  # not the published name: a user file
    torch.save(VGGishNet().state_dict(), path)
    return path


def test_shipped_csv_is_fadtks_and_parses(fadtk):
    wheel_csv = fadtk.stats.parent.parent / "test" / "samples_FAD_scores.csv"
    assert filecmp.cmp(V.PUBLISHED_CSV, wheel_csv, shallow=False)
    pub = V.read_published()
    clips = {V.song_id(c) for c in fadtk.clips}
    assert len(fadtk.clips) == 23
    for m in V.FADTK_MODELS:
        assert set(pub[m.column]) == clips | {V.ALL_ROW}, m.column
    assert pub["FAD_vggish_fma_pop"]["samples/mg-1634"] == pytest.approx(21.1936975843131, rel=1e-12)


def test_stats_file_has_every_mapped_model(fadtk):
    keys = set(stats_keys(fadtk.stats))
    assert {m.fadtk for m in V.FADTK_MODELS} <= keys
    st = GaussianStats.load_npz(fadtk.stats, "vggish")
    assert st.mu.shape == (128,) and st.cov.shape == (128, 128) and np.allclose(st.cov, st.cov.T)


def test_pcm16_roundtrip_is_a_16_bit_wav(tmp_path):
    x = np.random.default_rng(0).uniform(-1.2, 1.2, 4000).astype(np.float32)
    y = V.pcm16_roundtrip(x, 16000)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_array_equal(y * 32768, np.round(y * 32768))  # on the int16 grid, read as int16 / 32768
    assert np.abs(y - np.clip(x, -1, 1)).max() <= 1 / 32768 + 1e-9
    sf.write(tmp_path / "q.wav", x, 16000, subtype="PCM_16")  # what a file written by libsndfile holds
    np.testing.assert_array_equal(y, (sf.read(tmp_path / "q.wav", dtype="int16")[0] / 32768.0).astype(np.float32))


def test_clap_tail_all_is_fadtks_chunking():
    sr, hop, win = 10, 10, 100  # fadtk: chunks [i, i+10 s) for i in range(0, n, 1 s), zero-padded
    for n in (35, 100, 101, 250):
        wav = np.arange(1, n + 1, dtype=np.float32)
        got = clap_windows(wav, win, hop, "all", 1, "pad")
        starts = range(0, n, sr)
        assert got.shape == (len(starts), win)
        for w, s in zip(got, starts, strict=True):
            seg = wav[s : s + win]
            np.testing.assert_array_equal(w, np.pad(seg, (0, win - len(seg))))


def test_per_song_fad_matches_fadtk_code(fadtk, fadtk_fns, random_vggish):
    calc_stats, calc_fd = fadtk_fns
    model = next(m for m in V.FADTK_MODELS if m.fadtk == "vggish")
    emb = V.build_embedder(model, "cpu", str(random_vggish))
    assert emb.audio.resampler == "torchaudio_kaiser_best" and not emb.relu and emb.postprocess == "none"
    frames = V.embed_clips(emb, fadtk.clips[:3])
    ref = GaussianStats.load_npz(fadtk.stats, "vggish")
    per, pooled = V.per_song_fad(frames, ref.mu, ref.cov)
    for f, ours in zip(frames, per, strict=True):
        mu, cov = calc_stats(f)
        theirs = calc_fd(ref.mu, ref.cov, mu, cov)  # fadtk's argument order in score_individual
        assert ours == pytest.approx(float(np.real(theirs)), rel=1e-7)
    allf = np.concatenate(frames)
    mu, cov = calc_stats(allf)
    assert pooled == pytest.approx(float(np.real(calc_fd(ref.mu, ref.cov, mu, cov))), rel=1e-7)


def test_compare_uses_fadtks_criterion():
    model = V.FADTK_MODELS[0]
    pub = {"samples/a": 10.0, "samples/b": 20.0, V.ALL_ROW: 12.0}
    ok = V.compare(model, {"samples/a": 10.5, "samples/b": 19.5, V.ALL_ROW: 12.3}, pub)
    assert ok.status == "pass" and ok.fadtk_error == pytest.approx(0.5 / 15.0)
    bad = V.compare(model, {"samples/a": 11.0, "samples/b": 20.0, V.ALL_ROW: 12.0}, pub)  # 1 / 15.5 = 6.5 %
    assert bad.status == "fail" and bad.fadtk_error == pytest.approx(1.0 / 15.5)
    missing = V.compare(model, {"samples/a": 10.0}, pub)
    assert missing.status == "fail" and "samples/b" in missing.note


def test_verify_run_reports_and_lists_missing_weights(fadtk, fadtk_fns, random_vggish, empty_caches, tmp_path):
    clips = fadtk.clips[:2]
    pub_all = V.read_published()
    small = tmp_path / "published.csv"  # the published table restricted to the clips embedded here
    with open(V.PUBLISHED_CSV, newline="") as fh, open(small, "w", newline="") as out:
        rows = [r for r in csv.DictReader(fh) if r["song_id"] in {V.song_id(c) for c in clips}]
        w = csv.DictWriter(out, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    results = V.verify(
        data=V.FadtkData(clips, fadtk.stats), published_csv=small, device="cpu",
        checkpoints={"vggish": str(random_vggish)},
    )
    by = {r.fadtk: r for r in results}
    vgg = by["vggish"]
    assert vgg.status == "fail"  # random weights cannot reproduce fadtk's numbers ...
    assert vgg.fadtk_error > V.FADTK_TOLERANCE
    calc_stats, calc_fd = fadtk_fns
    ref = GaussianStats.load_npz(fadtk.stats, "vggish")
    emb = V.build_embedder(V.FADTK_MODELS[0], "cpu", str(random_vggish))
    for clip, f in zip(clips, V.embed_clips(emb, clips), strict=True):  # ... but the number is fadtk's FAD
        mu, cov = calc_stats(f)
        assert vgg.ours[V.song_id(clip)] == pytest.approx(float(np.real(calc_fd(ref.mu, ref.cov, mu, cov))), rel=1e-7)
        assert vgg.published[V.song_id(clip)] == pub_all["FAD_vggish_fma_pop"][V.song_id(clip)]
    for m in V.FADTK_MODELS[1:]:  # no weights here: listed with how to provide them
        assert by[m.fadtk].status == "not checked", m.fadtk
        assert f"embedder.{m.embedder}." in by[m.fadtk].note
    assert by["clap-2023"].status == "no backend"

    paths = V.write_report(results, tmp_path / "out")
    md = paths["markdown"].read_text()
    assert "| vggish | vggish | fail |" in md and md.count("| not checked |") == len(V.FADTK_MODELS) - 1
    with open(paths["per_song"], newline="") as fh:
        per = [r for r in csv.DictReader(fh) if r["fadtk_model"] == "vggish"]
    assert len(per) == 2 and all(math.isfinite(float(r["rel_diff"])) for r in per)
    table = V.console_table(results)
    assert "FAIL" in table and "not checked (weights not found)" in table and "embedder.clap.checkpoint" in table


def test_cli_exit_codes(fadtk, empty_caches, capsys, tmp_path):
    assert V.main(["--models", "nope"]) == 2
    assert "unknown fadtk model" in capsys.readouterr().err
    assert V.main(["--models", "encodec-emb", "--out", str(tmp_path / "o"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "encodec-emb" in out and "not checked" in out and (tmp_path / "o" / "verify.md").is_file()


def test_a_failing_model_is_reported_and_the_rest_still_run(fadtk):
    from bench.audio import AudioSpec
    from bench.checkpoints import CheckpointUnavailable

    class Broken:
        audio = AudioSpec(sample_rate=16000)

        def embed_batch(self, wavs):
            raise RuntimeError("out of memory")

    def factory(m):
        if m.fadtk == "vggish":
            return Broken()
        raise CheckpointUnavailable(f"no weights for {m.embedder}")

    res = V.verify(V.FADTK_MODELS[:2], data=V.FadtkData(fadtk.clips[:1], fadtk.stats), factory=factory)
    assert [r.status for r in res[:2]] == ["error", "not checked"]
    assert "out of memory" in res[0].note and "no weights for encodec" in res[1].note
    assert "ERROR" in V.console_table(res)
