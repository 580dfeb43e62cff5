"""Melody agreement: chroma cosine (MusicGen) and CREPE raw pitch accuracy.

Pure functions against reference implementations (librosa's chroma_stft for the chromagram,
mir_eval for RPA / RCA), the wrappers' pairing / aggregation, and a validation on real audio
(CC0 Sonic Pi clips in tests/golden/melody): a clip vs itself, vs pitch-shifted copies
(librosa.effects.pitch_shift: +25 cents, +1 semitone, +-1 octave) and vs a different clip must order
as expected, and CREPE must measure the applied shifts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.embedders.chroma import ChromaEmbedder
from bench.metrics import build_metric
from bench.metrics.base import EmbeddingSet, MetricInput, MetricUnavailable
from bench.metrics.bootstrap import clip_weights
from bench.metrics.melody import ChromaCosine, PitchAccuracy, frame_cosines, pitch_agreement

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "melody"
SR = 16000


def _load(name: str) -> np.ndarray:
    y, sr = sf.read(GOLDEN / f"{name}.flac", dtype="float32")
    assert sr == SR
    return y


# -- chromagram ------------------------------------------------------------------------------
def test_chromagram_equals_librosa_chroma_stft():
    import librosa

    y = _load("guit_harmonics")
    emb = ChromaEmbedder(device="cpu", radix2_exp=12, audio={"sample_rate": SR})
    mine = emb.embed(y)["emb"]
    ref = librosa.feature.chroma_stft(
        y=y.astype(np.float64), sr=SR, n_fft=4096, hop_length=1024, win_length=4096, window="hann", center=True,
        pad_mode="reflect", tuning=0.0, n_chroma=12, norm=np.inf,
    ).T
    assert mine.shape == (int(np.ceil(len(y) / 1024)), 12)
    loud = ref.max(1) > 0
    np.testing.assert_allclose(mine[loud], ref[: len(mine)][loud], atol=2e-4)
    assert emb.params()["n_fft"] == 4096 and emb.params()["hop"] == 1024


def test_chroma_defaults_are_musicgens_and_short_clips_are_padded():
    emb = ChromaEmbedder(device="cpu")
    assert (emb.audio.sample_rate, emb.n_fft, emb.hop) == (32000, 16384, 4096)
    out = emb.embed(np.sin(2 * np.pi * 440 * np.arange(2000) / 32000).astype(np.float32))["emb"]
    assert out.shape == (1, 12) and int(out[0].argmax()) == 9  # A
    with pytest.raises(ValueError, match="radix2_exp"):
        ChromaEmbedder(device="cpu", radix2_exp=30)


# -- pitch agreement vs mir_eval -------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_rpa_and_rca_equal_mir_eval(seed):
    melody = pytest.importorskip("mir_eval.melody")
    rng = np.random.default_rng(seed)
    t = 300
    ref = 110 * 2 ** (rng.integers(0, 24, size=t) / 12)
    ref_v = rng.random(t) > 0.2
    est = ref * 2 ** (rng.choice([0, 0, 0.3, 1, 12, -12, 0.6], size=t) / 12) * 2 ** (rng.normal(0, 0.2, t) / 12)
    est_v = rng.random(t) > 0.1
    rpa, rca, n = pitch_agreement(ref, ref_v, est, est_v)
    rc, ec = melody.hz2cents(ref), melody.hz2cents(est)
    want_rpa = melody.raw_pitch_accuracy(ref_v.astype(float), rc, est_v.astype(float), ec * est_v)
    want_rca = melody.raw_chroma_accuracy(ref_v.astype(float), rc, est_v.astype(float), ec * est_v)
    assert n == ref_v.sum()
    assert rpa == pytest.approx(want_rpa, abs=1e-12)
    assert rca == pytest.approx(want_rca, abs=1e-12)


def test_frame_cosines_argmax_and_lengths():
    a = np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.9], [0.3, 0.3, 1.0]])
    b = np.array([[0.9, 1.0, 0.0], [0.0, 1.0, 0.2]])
    np.testing.assert_allclose(frame_cosines(a, b, argmax=True), [0.0, 1.0])
    raw = frame_cosines(a, b)
    assert raw[0] == pytest.approx((0.9 + 0.2) / (np.hypot(1, 0.2) * np.hypot(0.9, 1)))


# -- wrappers --------------------------------------------------------------------------------
class _Emb:
    def __init__(self, feature):
        self.feature, self.name = feature, feature


def _set(name, emb):
    return EmbeddingSet(name, sorted(emb), load=lambda i: {"emb": emb[i]})


def test_chroma_cosine_wrapper_aggregates_frames_like_audiocraft():
    rng = np.random.default_rng(0)
    ref = {f"p{i}": rng.random((int(rng.integers(5, 12)), 12)) for i in range(6)}
    gen = {f"p{i}#{k}": rng.random((int(rng.integers(5, 12)), 12)) for i in range(5) for k in range(2)}
    gen["x9"] = rng.random((5, 12))  # no paired clip: skipped
    inp = MetricInput(gen=_set("g", gen), paired=_set("p", ref), embedder=_Emb("chroma"), seed=1)
    res = ChromaCosine(n_bootstrap=20)(inp)
    ids = sorted(k for k in gen if k != "x9")
    cos = [frame_cosines(ref[i.split("#")[0]], gen[i], True) for i in ids]
    assert res.value == pytest.approx(sum(c.sum() for c in cos) / sum(len(c) for c in cos), rel=1e-12)
    assert res.per_item[ids[3]] == pytest.approx(cos[3].mean())
    assert res.extras["n_unpaired"] == 1 and res.n == 10
    w = clip_weights(ids, 20, 1)
    s, c = np.array([x.sum() for x in cos]), np.array([len(x) for x in cos])
    assert res.replicates[4] == pytest.approx((w[4] @ s) / (w[4] @ c))
    with pytest.raises(MetricUnavailable, match="chroma embedder"):
        ChromaCosine()(MetricInput(gen=_set("g", gen), paired=_set("p", ref), embedder=_Emb("pitch")))


def test_pitch_accuracy_wrapper_skips_unvoiced_references():
    f0 = np.full(50, 220.0)
    ref = {"a": np.stack([f0, np.ones(50)], 1), "b": np.stack([f0, np.zeros(50)], 1)}
    gen = {"a": np.stack([f0 * 2 ** (np.r_[np.zeros(40), np.ones(10)] / 12), np.ones(50)], 1), "b": ref["a"]}
    res = PitchAccuracy(n_bootstrap=0)(MetricInput(gen=_set("g", gen), paired=_set("p", ref), embedder=_Emb("pitch")))
    assert res.value == pytest.approx(0.8) and res.extras["n_unvoiced"] == 1 and res.n == 1
    assert build_metric("pitch_accuracy").params()["cent_tolerance"] == 50.0


# -- validation on real audio ----------------------------------------------------------------
@pytest.fixture(scope="module")
def shifted():
    import librosa

    a = _load("guit_harmonics")
    return {
        "self": a,
        "+25c": librosa.effects.pitch_shift(a, sr=SR, n_steps=0.25),
        "+1st": librosa.effects.pitch_shift(a, sr=SR, n_steps=1),
        "+12st": librosa.effects.pitch_shift(a, sr=SR, n_steps=12),
        "-12st": librosa.effects.pitch_shift(a, sr=SR, n_steps=-12),
        "other": _load("ambi_glass_rub"),
    }


@pytest.fixture(scope="module")
def crepe_tracks(shifted):
    pytest.importorskip("torchcrepe")
    from bench.embedders.crepe import CrepeEmbedder

    emb = CrepeEmbedder(model="tiny", device="cpu")
    return {k: emb.embed(v)["emb"] for k, v in shifted.items()}


def test_crepe_measures_the_applied_pitch_shifts(crepe_tracks):
    ref = crepe_tracks["self"]
    assert (ref[:, 1] >= 0.5).mean() > 0.8  # a clearly pitched clip
    for key, ratio, tol in (("+1st", 2 ** (1 / 12), 0.005), ("+12st", 2.0, 0.01), ("-12st", 0.5, 0.01)):
        g = crepe_tracks[key]
        t = min(len(ref), len(g))
        v = (ref[:t, 1] >= 0.5) & (g[:t, 1] >= 0.5)
        assert np.median(g[:t][v, 0] / ref[:t][v, 0]) == pytest.approx(ratio, rel=tol), key


def test_pitch_accuracy_orders_self_shift_and_other_clip(crepe_tracks):
    r = crepe_tracks["self"]
    acc = {}
    for k, g in crepe_tracks.items():
        acc[k] = pitch_agreement(r[:, 0], r[:, 1] >= 0.5, g[:, 0], g[:, 1] >= 0.5)[:2]
    assert acc["self"] == (1.0, 1.0)
    assert acc["self"][0] > acc["+25c"][0] > 0.8 > 0.1 > acc["other"][0]
    assert acc["+1st"][0] < 0.1 and acc["+1st"][1] < 0.1  # a semitone off: no pitch match, no chroma match
    for k in ("+12st", "-12st"):  # octave errors: wrong pitch, right pitch class
        assert acc[k][0] < 0.1 and acc[k][1] > 0.85


def test_chroma_cosine_orders_self_shift_and_other_clip(shifted):
    emb = ChromaEmbedder(device="cpu", audio={"sample_rate": SR})
    c = {k: emb.embed(v)["emb"] for k, v in shifted.items()}
    raw = {k: frame_cosines(c["self"], v).mean() for k, v in c.items()}
    hot = {k: frame_cosines(c["self"], v, argmax=True).mean() for k, v in c.items()}
    assert raw["self"] == pytest.approx(1.0) and hot["self"] == 1.0
    assert raw["self"] > raw["+25c"] > raw["+1st"] > raw["other"]
    assert min(hot["+25c"], hot["+12st"], hot["-12st"]) > 0.9 > 0.2 > max(hot["+1st"], hot["other"])
