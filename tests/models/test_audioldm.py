"""AudioLDM / AudioLDM2 adapters on tiny random components assembled into the real diffusers pipelines
(component configs from diffusers' own fast tests; tests/tiny_generators.py), loaded through the adapter."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from bench.models.audioldm import AudioLDM2Model, AudioLDMModel  # noqa: E402
from bench.models.base import ModelUnavailable  # noqa: E402
from bench.prompts import Prompt  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")

P = [Prompt("a", "a dog barks in the rain"), Prompt("b/../c", "a hammer hits wood")]


@pytest.fixture(scope="module")
def tiny_audioldm(tiny_checkpoint):
    return tiny_checkpoint("audioldm")


@pytest.fixture(scope="module")
def tiny_audioldm2(tiny_checkpoint):
    return tiny_checkpoint("audioldm2")


@pytest.mark.parametrize("kind", ["audioldm", "audioldm2"])
def test_rate_from_the_vocoder_and_length_cut_to_duration(kind, request):
    """16 kHz from vocoder/config.json; the pipelines round the latent length up, the adapter cuts back."""
    path = request.getfixturevalue(f"tiny_{kind}")
    cls = AudioLDMModel if kind == "audioldm" else AudioLDM2Model
    m = cls(checkpoint=str(path), device="cpu", duration_s=0.016, num_inference_steps=1, seed=1)
    assert m.sample_rate == 16000 and m.params()["pipeline"] == cls.pipeline_class
    assert m.params()["audio_length_in_s"] == 0.016
    (a,) = m.generate(P[:1], [5])
    assert a.shape == (256,) and a.dtype == np.float32 and np.all(np.isfinite(a))
    (a_other_seed,) = m.generate(P[:1], [7])
    assert np.abs(a_other_seed - a).max() > 1e-6


def test_audioldm2_conditioning_length_reaches_the_pipeline(tiny_audioldm2, monkeypatch):
    base = dict(checkpoint=str(tiny_audioldm2), device="cpu", duration_s=0.016, num_inference_steps=1)
    default, short = AudioLDM2Model(**base), AudioLDM2Model(**base, max_new_tokens=2)
    assert "max_new_tokens" not in default.params() and short.params()["max_new_tokens"] == 2
    pipe_cls = type(short.load())
    seen, call = [], pipe_cls.__call__
    monkeypatch.setattr(pipe_cls, "__call__", lambda pipe, **kw: seen.append(kw) or call(pipe, **kw))
    short.generate(P[:1], [5])
    default.generate(P[:1], [5])
    assert seen[0]["max_new_tokens"] == 2 and "max_new_tokens" not in seen[1]


def test_audioldm2_refuses_transformers5_with_an_old_diffusers(tiny_audioldm2, monkeypatch):
    """diffusers < 0.37 cannot read transformers 5's CLAP text outputs: one message at load, not a
    TypeError in the middle of generation (seen with transformers 5.17 + diffusers 0.35.2)."""
    import bench.models.audioldm as mod

    real = mod.release
    monkeypatch.setattr(mod, "release", lambda d: {"transformers": (5, 17), "diffusers": (0, 35)}[d])
    m = AudioLDM2Model(checkpoint=str(tiny_audioldm2), device="cpu", duration_s=0.016, num_inference_steps=1)
    with pytest.raises(ModelUnavailable, match=r"transformers 5 needs diffusers >= 0\.37 .*diffusers 0\.35\)"):
        m.load()
    monkeypatch.setattr(mod, "release", lambda d: {"transformers": (5, 17), "diffusers": (0, 42)}[d])
    mod.check_audioldm2_stack()  # a new enough diffusers passes
    assert real("diffusers") >= (0, 31)


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["audioldm", "audioldm2"])
def test_generates_on_cuda(kind, request):
    path = request.getfixturevalue(f"tiny_{kind}")
    cls = AudioLDMModel if kind == "audioldm" else AudioLDM2Model
    m = cls(checkpoint=str(path), device="cuda", duration_s=0.016, num_inference_steps=2, batch_size=2, seed=1)
    a, b = m.generate(P, [5, 6])
    assert a.shape == b.shape == (256,) and a.dtype == np.float32 and np.all(np.isfinite(a))
    (b_alone,) = m.generate(P[1:], [6])
    np.testing.assert_allclose(b_alone, b, atol=1e-2)
