"""bench.audio: resamplers against analytic signals and reference implementations, mixdown,
normalisation, AudioSpec validation and the per-file checks of load_audio_report."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from bench.audio import (
    AudioError,
    AudioSpec,
    extension_note,
    load_audio,
    load_audio_report,
    mixdown,
    normalize,
    prepare,
    read_audio,
    resample,
    wav_declared_frames,
)


def _tones(sr: int, seconds: float = 1.0, freqs=((440.0, 0.5), (3000.0, 0.3))) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return sum(a * np.sin(2 * np.pi * f * t) for f, a in freqs)


# -- resampling -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "tol"), [("torchaudio_sinc", 1e-3), ("torchaudio_kaiser_best", 5e-5), ("resampy_kaiser_best", 2e-4)]
)
@pytest.mark.parametrize(("sr_in", "sr_out"), [(44100, 16000), (8000, 16000), (192000, 48000)])
def test_resample_matches_the_analytic_signal(method, tol, sr_in, sr_out):
    freqs = ((440.0, 0.5), (0.15 * min(sr_in, sr_out), 0.3))  # well inside both pass bands
    x = _tones(sr_in, 0.25, freqs).astype(np.float32)
    y = resample(x, sr_in, sr_out, method)
    assert y.dtype == np.float32 and y.shape == (math.ceil(x.size * sr_out / sr_in),)
    gold = _tones(sr_out, 0.25, freqs)
    edge = sr_out // 50  # filters ring at the clip edges
    np.testing.assert_allclose(y[edge:-edge], gold[edge : y.size - edge], atol=tol)


def test_kaiser_best_matches_librosa_and_sinc_matches_scipy():
    import librosa
    from scipy.signal import resample_poly

    x = _tones(44100).astype(np.float32)
    ours = resample(x, 44100, 16000, "torchaudio_kaiser_best")
    ref = librosa.resample(x, orig_sr=44100, target_sr=16000, res_type="kaiser_best")  # resampy under the hood
    np.testing.assert_allclose(ours[300:-300], ref[300:-300], atol=2e-4)
    poly = resample_poly(x, 160, 441)
    np.testing.assert_allclose(resample(x, 44100, 16000, "torchaudio_sinc")[300:-300], poly[300:-300], atol=2e-3)


def test_resampy_option_is_resampy():
    import resampy

    x = _tones(22050).astype(np.float32)
    np.testing.assert_array_equal(
        resample(x, 22050, 16000, "resampy_kaiser_best"), resampy.resample(x, 22050, 16000, filter="kaiser_best")
    )


def test_resample_multichannel_is_per_channel_and_identity_at_same_rate():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4410, 3)).astype(np.float32) * 0.1
    y = resample(x, 44100, 16000)
    for c in range(3):
        np.testing.assert_allclose(y[:, c], resample(np.ascontiguousarray(x[:, c]), 44100, 16000), atol=1e-6)
    assert resample(x, 16000, 16000) is x or np.array_equal(resample(x, 16000, 16000), x)
    with pytest.raises(ValueError, match="unknown resampler"):
        resample(x, 44100, 16000, "linear")


# -- mixdown / normalisation --------------------------------------------------------------------
def test_mixdown_options():
    x = np.array([[1.0, 0.0, -1.0, 0.5], [0.2, 0.4, 0.6, 0.8]], dtype=np.float32)
    np.testing.assert_allclose(mixdown(x, "mean"), x.mean(axis=1))
    np.testing.assert_array_equal(mixdown(x, "first"), x[:, 0])
    assert mixdown(x, "none") is x
    assert mixdown(x[:, 0], "mean") is not None and mixdown(x[:, 0], "mean").shape == (2,)
    with pytest.raises(ValueError, match="mixdown"):
        mixdown(x, "sum")


def test_normalize_peak_and_rms():
    x = (0.1 * _tones(8000)).astype(np.float32)
    assert np.max(np.abs(normalize(x, "peak"))) == pytest.approx(1.0, abs=1e-6)
    y = normalize(x, "rms:-20")
    assert 20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2))) == pytest.approx(-20.0, abs=1e-4)
    z = np.zeros(100, np.float32)
    np.testing.assert_array_equal(normalize(z, "peak"), z)
    np.testing.assert_array_equal(normalize(z, "rms:-20"), z)
    assert normalize(x, None) is x


# -- AudioSpec ------------------------------------------------------------------------------------
def test_audiospec_round_trip():
    spec = AudioSpec(sample_rate=32000, mono="first", resampler="resampy_kaiser_best", normalize="rms:-23",
                     min_duration_s=0.1, max_duration_s=30.0, pad_to_s=1.0)
    assert AudioSpec.from_dict(spec.to_dict()) == spec
    assert AudioSpec.from_dict(None) == AudioSpec()
    assert AudioSpec.from_dict({"sample_rate": 16000.0}).sample_rate == 16000


def test_audiospec_unknown_key_lists_valid_fields():
    with pytest.raises(ValueError, match=r"unknown AudioSpec field\(s\) \['sampel_rate'\]") as exc:
        AudioSpec.from_dict({"sampel_rate": 16000})
    msg = str(exc.value)
    assert "sample_rate" in msg and "resampler" in msg and "did you mean 'sample_rate'" in msg


@pytest.mark.parametrize(
    "bad", [{"mono": "avg"}, {"resampler": "linear"}, {"normalize": "loud"}, {"sample_rate": 0},
            {"sample_rate": 22050.5}, {"max_duration_s": 0}]
)
def test_audiospec_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="AudioSpec"):
        AudioSpec.from_dict(bad)


# -- loading --------------------------------------------------------------------------------------
def test_load_audio_equals_prepare_of_the_decoded_file(tmp_path):
    rng = np.random.default_rng(1)
    x = (0.2 * rng.standard_normal((22050, 2))).astype(np.float32)
    p = tmp_path / "a.wav"
    sf.write(p, x, 22050, subtype="FLOAT")
    spec = AudioSpec(sample_rate=16000)
    data, sr = read_audio(p)
    assert data.shape == (22050, 2) and sr == 22050
    np.testing.assert_array_equal(load_audio(p, spec), prepare(data, sr, spec))
    np.testing.assert_allclose(load_audio(p, AudioSpec(sample_rate=22050)), x.mean(axis=1), atol=1e-7)
    np.testing.assert_array_equal(load_audio(p, AudioSpec(sample_rate=22050, mono="first")), x[:, 0])
    assert load_audio(p, AudioSpec(sample_rate=22050, mono="none")).shape == (22050, 2)


def test_six_channels_are_mixed_down_blockwise(tmp_path, monkeypatch):
    import bench.audio as audio

    monkeypatch.setattr(audio, "_BLOCK", 1000)  # force several blocks
    rng = np.random.default_rng(2)
    x = (0.1 * rng.standard_normal((8000, 6))).astype(np.float32)
    p = tmp_path / "six.wav"
    sf.write(p, x, 8000, subtype="FLOAT")
    got = load_audio_report(p, AudioSpec(sample_rate=8000))
    np.testing.assert_allclose(got.wav, x.mean(axis=1), atol=1e-7)
    assert got.notes == [] and got.format == "WAV" and got.source_rate == 8000


def test_generator_layout_channels_first_is_transposed():
    x = np.stack([np.ones(1000), -np.ones(1000)]).astype(np.float32)  # (2, 1000)
    np.testing.assert_array_equal(prepare(x, 16000, AudioSpec()), np.zeros(1000, np.float32))


def test_long_file_is_truncated_with_a_note(tmp_path):
    p = tmp_path / "long.wav"
    sf.write(p, (0.1 * _tones(8000, 5.0)).astype(np.float32), 8000)
    got = load_audio_report(p, AudioSpec(sample_rate=8000, max_duration_s=2.0))
    assert got.wav.shape == (16000,)
    assert got.notes == ["truncated to 2 s (file is 5.0 s)"]
    assert load_audio_report(p, AudioSpec(sample_rate=8000, max_duration_s=None)).wav.shape == (40000,)


def test_silence_and_padding(tmp_path):
    p = tmp_path / "silent.wav"
    sf.write(p, np.zeros(4000, np.float32), 8000)
    got = load_audio_report(p, AudioSpec(sample_rate=8000, pad_to_s=1.0, normalize="peak"))
    assert got.notes == ["all-silent (every sample is 0)"]
    assert got.wav.shape == (8000,) and not got.wav.any()
    q = tmp_path / "quiet.wav"
    sf.write(q, np.full(4000, 1e-5, np.float32), 8000, subtype="FLOAT")
    assert load_audio_report(q, AudioSpec(sample_rate=8000)).notes == ["near-silent (peak -100.0 dBFS)"]


def test_unusable_files_raise_audio_error_with_a_reason(tmp_path):
    sr = 16000
    x = (0.3 * _tones(sr)).astype(np.float32)
    cases = {}
    sf.write(tmp_path / "ok.wav", x, sr)
    full = (tmp_path / "ok.wav").read_bytes()
    (tmp_path / "truncated.wav").write_bytes(full[: len(full) // 2])
    cases["truncated.wav"] = "truncated file: the WAV header declares 16000 frames"
    (tmp_path / "header_only.wav").write_bytes(full[:44])
    cases["header_only.wav"] = "empty audio"
    (tmp_path / "zero.wav").write_bytes(b"")
    cases["zero.wav"] = "cannot decode"
    (tmp_path / "junk.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    cases["junk.wav"] = "cannot decode"
    y = x.copy()
    y[10], y[20], y[30] = np.nan, np.inf, -np.inf
    sf.write(tmp_path / "nan.wav", y, sr, subtype="FLOAT")
    cases["nan.wav"] = "3 non-finite samples"
    sf.write(tmp_path / "short.wav", x[:16], sr)
    cases["short.wav"] = "too short: 1.0 ms"
    sf.write(tmp_path / "ok.flac", x, sr)
    (tmp_path / "truncated.flac").write_bytes((tmp_path / "ok.flac").read_bytes()[:3000])
    cases["truncated.flac"] = "cannot decode"
    for name, reason in cases.items():
        with pytest.raises(AudioError, match=reason.replace("(", r"\(")):
            load_audio_report(tmp_path / name, AudioSpec())
    assert wav_declared_frames(tmp_path / "truncated.wav", 2) == 16000
    assert wav_declared_frames(tmp_path / "ok.flac", 2) is None


def test_extension_notes():
    assert extension_note("a.wav", "WAV") is None
    assert extension_note("a.FLAC", "FLAC") is None
    assert extension_note("a.flac", "WAV") == "extension '.flac' but the content is WAV; decoded as WAV"
    assert extension_note("a.bin", "WAV") == "unrecognised extension '.bin'; decoded as WAV"
    assert extension_note("noext", "FLAC") == "unrecognised extension '(none)'; decoded as FLAC"
    assert extension_note("a.flac", None) is None


@pytest.mark.parametrize(
    ("ext", "fmt", "subtype", "min_corr"),
    [
        (".wav", "WAV", "PCM_16", 0.9999),
        (".flac", "FLAC", "PCM_24", 0.9999),
        (".ogg", "OGG", "VORBIS", 0.99),
        (".opus", "OGG", "OPUS", 0.95),
        (".mp3", "MP3", "MPEG_LAYER_III", 0.95),
    ],
)
def test_codecs_decode_through_soundfile(tmp_path, ext, fmt, subtype, min_corr):
    """wav/flac/ogg/opus/mp3 all decode via libsndfile and land at the spec's rate, mono."""
    sr = 48000
    t = np.arange(2 * sr) / sr
    x = (0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t)).astype(np.float32)
    stereo = np.stack([x, 0.5 * x], axis=1)
    path = tmp_path / f"clip{ext}"
    try:
        sf.write(str(path), stereo, sr, format=fmt, subtype=subtype)
    except (sf.LibsndfileError, TypeError, ValueError) as exc:  # an old libsndfile without this codec
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} cannot write {fmt}/{subtype}: {exc}")
    y = load_audio(path, AudioSpec(sample_rate=16000, mono="mean"))
    ref = prepare(stereo, sr, AudioSpec(sample_rate=16000, mono="mean"))
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - len(ref)) <= 0.02 * len(ref)  # codec padding/priming at most a few ms
    n = min(len(y), len(ref))
    # lossy codecs may delay the signal: compare at the best lag within 50 ms
    lags = range(-800, 801, 8)
    corr = max(np.corrcoef(np.roll(y[:n], lag)[1000:-1000], ref[:n][1000:-1000])[0, 1] for lag in lags)
    assert corr >= min_corr
