"""Built-in baselines: oracle, noise and the prompt-following synth."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from bench.errors import ErrorLog, RunFailed
from bench.models.base import item_seed
from bench.models.baselines import NoiseModel, OracleModel, SynthModel, parse_prompt
from bench.prompts import Prompt


def _spectral_centroid(x: np.ndarray, sr: int) -> float:
    mag = np.abs(np.fft.rfft(x))
    f = np.fft.rfftfreq(x.size, 1 / sr)
    return float((mag * f).sum() / mag.sum())


def _pulse_period(x: np.ndarray, sr: int) -> float:
    """Dominant period (s) of the amplitude envelope between 0.1 and 4 s (autocorrelation peak)."""
    hop = sr // 100
    env = np.sqrt(np.convolve(x.astype(np.float64) ** 2, np.ones(5 * hop) / (5 * hop), mode="same"))[::hop]
    env = env - env.mean()
    ac = np.correlate(env, env, mode="full")[env.size - 1 :]
    lo, hi = 10, min(400, ac.size - 1)
    return (lo + int(np.argmax(ac[lo:hi]))) / 100


def test_parse_prompt_reads_tempo_instrument_and_mood():
    c = parse_prompt("A sad slow piano ballad at 64 bpm")
    assert c["bpm"] == 64 and c["minor"] and c["families"] == ["piano"]
    c = parse_prompt("Energetic techno with a driving kick drum and synth bass")
    assert c["bpm"] >= 120 and not c["minor"] and c["drums"]
    assert {"synth", "bass"} <= set(c["families"])
    assert parse_prompt("a string quartet")["families"] == ["strings"]


def test_synth_is_deterministic_and_follows_the_prompt():
    m = SynthModel(duration_s=4.0, sample_rate=16000)
    a = m.render("slow calm flute melody", 1)
    assert a.dtype == np.float32 and a.shape == (64000,) and np.abs(a).max() <= 1.0
    np.testing.assert_array_equal(a, m.render("slow calm flute melody", 1))
    assert not np.array_equal(a, m.render("slow calm flute melody", 2))
    m8 = SynthModel(duration_s=8.0, sample_rate=16000)
    fast = m8.render("fast energetic drum and bass with drums, 174 bpm", 1)
    slow = m8.render("laid-back hip hop beat with drums", 1)  # tempo word "hip hop" -> 90 bpm
    # the envelope repeats with the 4-beat chord cycle: 1.38 s at 174 bpm, 2.67 s at 90 bpm
    assert _pulse_period(fast, 16000) == pytest.approx(4 * 60 / 174, abs=0.05)
    assert _pulse_period(slow, 16000) == pytest.approx(4 * 60 / 90, abs=0.05)
    # bright brass vs mellow flute: spectral centroid moves with the instrument family
    assert _spectral_centroid(m.render("bright brass fanfare", 3), 16000) > _spectral_centroid(
        m.render("soft flute", 3), 16000
    )


def test_noise_level_and_colour():
    w = NoiseModel(duration_s=2.0, level_db=-20.0).generate([Prompt("a", "x")], [0])[0]
    assert abs(20 * np.log10(np.sqrt(np.mean(w.astype(np.float64) ** 2))) + 20.0) < 0.2
    p = NoiseModel(duration_s=2.0, color="pink").generate([Prompt("a", "x")], [0])[0]
    spec = np.abs(np.fft.rfft(p)) ** 2
    lo, hi = spec[20:200].mean(), spec[-2000:].mean()
    assert lo > 10 * hi  # pink: power falls with frequency; white would be flat
    with pytest.raises(ValueError, match="white or pink"):
        NoiseModel(color="blue")


def test_generator_gather_resumes_and_seeds_per_item(tmp_path):
    prompts = [Prompt("p1", "piano"), Prompt("../../evil", "drums"), Prompt("p3", "flute")]
    m = SynthModel(duration_s=0.5, sample_rate=8000, n_samples_per_prompt=2, batch_size=2)
    errors = ErrorLog()
    out = m.gather(prompts, tmp_path / "out", errors, "set", progress=False)
    assert sorted(out) == sorted(f"{p.id}#{k}" for p in prompts for k in range(2))
    assert m.n_generated == 6 and not errors.rows
    for path in out.values():  # ids never escape the output folder
        assert (tmp_path / "out") in path.resolve().parents
    x, sr = sf.read(out["p1#1"])
    assert sr == 8000 and x.shape == (4000,)
    np.testing.assert_allclose(x, m.render("piano", item_seed(0, "p1", 1)), atol=1 / 32768)
    # second gather keeps everything; a deleted file is regenerated alone
    out["p3#0"].unlink()
    again = m.gather(prompts, tmp_path / "out", errors, "set", progress=False)
    assert m.n_generated == 1 and again.keys() == out.keys()
    # changed parameters: old outputs moved aside, not reused
    m2 = SynthModel(duration_s=0.25, sample_rate=8000, n_samples_per_prompt=2)
    m2.gather(prompts, tmp_path / "out", errors, "set", progress=False)
    assert m2.n_generated == 6
    assert any(p.name.startswith("out.stale-") for p in tmp_path.iterdir())


def test_failing_prompt_is_logged_and_others_go_on(tmp_path):
    class Flaky(SynthModel):
        def generate(self, prompts, seeds):
            if any("boom" in p.text for p in prompts):
                raise RuntimeError("CUDA out of memory (simulated by this test model)")
            return super().generate(prompts, seeds)

    m = Flaky(duration_s=0.2, sample_rate=8000, batch_size=4)
    errors = ErrorLog()
    out = m.gather([Prompt("a", "piano"), Prompt("b", "boom"), Prompt("c", "flute")], tmp_path, errors, "s", False)
    assert sorted(out) == ["a", "c"]
    assert len(errors.rows) == 1 and errors.rows[0].item_id == "b" and "out of memory" in errors.rows[0].reason
    with pytest.raises(RunFailed):
        Flaky(duration_s=0.2, sample_rate=8000).gather(
            [Prompt("b", "boom")], tmp_path / "x", ErrorLog("fail"), "s", False
        )


def test_oracle_returns_paired_reference_and_reports_missing(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(800, dtype=np.float32), 8000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF garbage")
    prompts = [
        Prompt("a", "x", str(good)),
        Prompt("b", "x", str(tmp_path / "missing.wav")),
        Prompt("c", "x", str(bad)),
        Prompt("d", "x"),
    ]
    errors = ErrorLog()
    out = OracleModel().gather(prompts, tmp_path / "o", errors, "s", False)
    assert out == {"a": good}
    reasons = {r.item_id: r.reason for r in errors.rows}
    assert reasons == {
        "b": "paired reference clip not found",
        "c": "paired reference clip does not decode",
        "d": "prompt has no paired reference clip",
    }
