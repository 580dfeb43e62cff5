"""The pipelined embed stage (bench.stages.embed.embed_all) against the legacy sequential path: the same cache
entries bit for bit, the same error rows and keys, whatever the worker count, executor or batching;
decode once per file across embedders; bounded waiting memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import bench.audio as audio_mod
from bench.audio import AudioError, AudioSpec, load_audio_multi, load_audio_report
from bench.cache import ArrayCache
from bench.embedders.base import Embedder
from bench.errors import ErrorLog
from bench.stages.embed import EmbedIO, EmbedState, embed_all


class StatsEmbedder(Embedder):
    """Per-0.25-s-frame mean, RMS and peak in float64 (a deterministic function of the clip); records batches."""

    name = "stats"

    def __init__(self, audio=None, batch_size=3):
        super().__init__(audio=audio, device="cpu", batch_size=batch_size)
        self.batches: list[int] = []

    def embed(self, wav):
        x = np.asarray(wav, np.float64)
        hop = self.audio.sample_rate // 4
        n = max(1, len(x) // hop)
        fr = np.array_split(x[: n * hop] if len(x) >= hop else x, n)
        return {"emb": np.array([[f.mean(), np.sqrt((f**2).mean()), np.abs(f).max()] for f in fr], np.float32)}

    def embed_batch(self, wavs):
        self.batches.append(len(wavs))
        return [self.embed(w) for w in wavs]


SPECS = {
    "a": AudioSpec(sample_rate=16000, resampler="kaiser_best_polyphase"),
    "b": AudioSpec(sample_rate=16000, resampler="kaiser_best_polyphase", normalize="peak"),  # shares the resample
    "c": AudioSpec(sample_rate=8000, mono="first", resampler="torchaudio_sinc", max_duration_s=0.5),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, list[tuple[str, str, str]]]:
    d = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    files = {}
    for i in range(11):
        sr = (44100, 48000, 22050)[i % 3]
        n = int(sr * (0.4 + 0.13 * i))
        x = 0.3 * rng.standard_normal((n, 2 if i % 2 else 1)).astype(np.float32)
        p = d / f"clip{i:02d}.{'flac' if i % 4 == 0 else 'wav'}"
        sf.write(p, x, sr)
        files[str(p)] = [("m", "set", f"i{i}")]
    sf.write(d / "silent.wav", np.zeros(8000, np.float32), 16000)
    files[str(d / "silent.wav")] = [("m", "set", "silent")]
    (d / "broken.wav").write_bytes(b"RIFF....WAVEnot audio")
    files[str(d / "broken.wav")] = [("m", "set", "broken")]
    sf.write(d / "tiny.wav", np.ones(10, np.float32) * 0.1, 16000)  # too short for every spec
    files[str(d / "tiny.wav")] = [("m", "set", "tiny")]
    dup = d / "dup.wav"  # same content as clip01: one cache entry, two owners
    dup.write_bytes((d / "clip01.wav").read_bytes())
    files[str(dup)] = [("reference", "ref", "dup")]
    return files


def _run(tmp: Path, files, io: EmbedIO, batch_size=3):
    st = EmbedState(ArrayCache(tmp / "cache"), ErrorLog("skip"))
    embs = [(k, StatsEmbedder(audio=s, batch_size=batch_size)) for k, s in SPECS.items()]
    embed_all(st, embs, files, progress=False, io=io)
    entries = {}
    for (ekey, path), key in st.emb_keys.items():
        entries[(ekey, path)] = (key, st.cache.path(key).read_bytes())
    rows = sorted((r.stage, r.item_id, r.reason, r.severity) for r in st.errors.rows)
    return entries, rows, st, embs


@pytest.fixture(scope="module")
def legacy(corpus, tmp_path_factory):
    entries, rows, _, _ = _run(tmp_path_factory.mktemp("legacy"), corpus, EmbedIO(legacy=True))
    return entries, rows


@pytest.mark.parametrize(
    "io",
    [
        EmbedIO(num_workers=0),
        EmbedIO(num_workers=2),
        EmbedIO(num_workers=3, prefetch=1, prefetch_mb=0.05),  # budget smaller than a batch: early flushes
        EmbedIO(num_workers=2, executor="process"),
    ],
    ids=["inline", "threads", "tiny-budget", "processes"],
)
def test_same_entries_errors_and_keys_as_legacy(corpus, legacy, tmp_path, io):
    legacy, legacy_rows = legacy
    new, rows, st, _ = _run(tmp_path / "new", corpus, io)
    assert new.keys() == legacy.keys()
    for k in legacy:  # same cache key and the same npz bytes (embedding, checksum, meta notes)
        assert new[k] == legacy[k], k
    assert rows == legacy_rows
    assert any("broken" in r[1] for r in rows) and any("too short" in r[2] for r in rows)
    assert any("silent" in r[2] for r in rows if r[3] == "warning")
    assert st.counters["embedded"] == len({v[0] for v in new.values()})


def test_batches_by_count_or_audio_length_and_rerun_hits_cache(corpus, legacy, tmp_path):
    _, _, _, embs = _run(tmp_path / "count", corpus, EmbedIO(num_workers=2), batch_size=4)
    assert max(embs[0][1].batches) == 4
    entries, _, _, embs = _run(tmp_path / "len", corpus, EmbedIO(num_workers=2, batch_audio_s=2.0))
    ref = legacy[0]
    assert {k: v[0] for k, v in entries.items()} == {k: v[0] for k, v in ref.items()}
    assert embs[0][1].batches != [3] * len(embs[0][1].batches)
    for k in ref:  # batch composition does not change this embedder's values
        assert entries[k][1] == ref[k][1]
    st = EmbedState(ArrayCache(tmp_path / "len" / "cache"), ErrorLog("skip"))
    again = [(k, StatsEmbedder(audio=s)) for k, s in SPECS.items()]
    embed_all(st, again, corpus, progress=False, io=EmbedIO(num_workers=2))
    assert st.counters["embedded"] == 0 and st.counters["embed_cache_hits"] > 0
    assert all(not e.batches for _, e in again)


def test_each_file_is_decoded_once_for_all_embedders(corpus, tmp_path, monkeypatch):
    calls: list[str] = []
    real = audio_mod._decode_signals

    def counting(path, *a, **k):
        calls.append(str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(audio_mod, "_decode_signals", counting)
    _run(tmp_path, corpus, EmbedIO(num_workers=2))
    assert sorted(calls) == sorted(set(calls))  # once per file (3 embedders), duplicates by content skipped
    assert not any(c.endswith("dup.wav") for c in calls)


def test_load_audio_multi_equals_load_audio_report(corpus):
    specs = [*SPECS.values(), AudioSpec(sample_rate=22050, mono="none", resampler="torchaudio_kaiser_best"),
             AudioSpec(sample_rate=16000, resampler="resampy_kaiser_best", pad_to_s=3.0, normalize="rms:-20")]
    for path in corpus:
        got = load_audio_multi(path, specs)
        for spec, g in zip(specs, got):
            try:
                ref = load_audio_report(path, spec)
            except AudioError as exc:
                assert isinstance(g, AudioError) and str(g) == str(exc)
                continue
            assert not isinstance(g, AudioError), (path, spec, g)
            assert g.wav.dtype == ref.wav.dtype and g.wav.shape == ref.wav.shape
            assert g.wav.tobytes() == ref.wav.tobytes()
            assert (g.notes, g.format, g.source_rate) == (ref.notes, ref.format, ref.source_rate)


def test_embed_io_config_errors():
    with pytest.raises(ValueError, match="unknown embed_io"):
        EmbedIO.from_config({"workers": 2})
    with pytest.raises(ValueError, match="executor"):
        EmbedIO(executor="gpu")
    assert EmbedIO.from_config(None).workers >= 1


def test_host_to_device_on_cpu_is_the_same_values():
    import torch

    from bench.embedders.base import host_to_device

    x = np.arange(7, dtype=np.float32)[::2]  # non-contiguous input
    t = host_to_device(x, "cpu")
    assert t.device == torch.device("cpu") and t.dtype == torch.float32
    np.testing.assert_array_equal(t.numpy(), x)
