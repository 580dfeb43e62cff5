"""AudioLDM / AudioLDM2 adapters on tiny random components assembled into the real diffusers pipelines
(component configs from diffusers' own fast tests; tests/tiny_generators.py), loaded through the adapter."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from bench.errors import ErrorLog  # noqa: E402
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
def test_generate_gather_and_seeds(kind, request, tmp_path):
    path = request.getfixturevalue(f"tiny_{kind}")
    cls = AudioLDMModel if kind == "audioldm" else AudioLDM2Model
    steps = 2 if kind == "audioldm" else 1  # the AudioLDM2 UNet is slow on CPU even when tiny
    m = cls(local_path=str(path), device="cpu", duration_s=0.016, num_inference_steps=steps, batch_size=2, seed=1)
    assert m.sample_rate == 16000 and m.params()["pipeline"] == cls.pipeline_class
    a, b = m.generate(P, [5, 6])
    assert a.shape == b.shape == (256,) and a.dtype == np.float32 and np.all(np.isfinite(a))
    (b_alone,) = m.generate(P[1:], [6])  # per-item generators: batch composition does not matter
    np.testing.assert_allclose(b_alone, b, atol=1e-5)
    (a_other_seed,) = m.generate(P[:1], [7])
    assert np.abs(a_other_seed - a).max() > 1e-6

    errors = ErrorLog()
    out = m.gather(P, tmp_path / kind, errors, "set", progress=False)
    assert sorted(out) == ["a", "b/../c"] and not errors.rows
    assert out["b/../c"].parent == (tmp_path / kind).resolve()  # sanitised id stays inside the output folder
    wav, sr = sf.read(str(out["a"]))
    assert sr == 16000 and wav.shape == (256,)
    assert len(m.checkpoints()) >= 4  # unet, vae, text encoder(s), vocoder weights with sha256


def test_offline_without_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(ModelUnavailable, match=r"cvssp/audioldm2.*model\.audioldm2\.checkpoint"):
        AudioLDM2Model(device="cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["audioldm", "audioldm2"])
def test_generates_on_cuda(kind, request):
    path = request.getfixturevalue(f"tiny_{kind}")
    cls = AudioLDMModel if kind == "audioldm" else AudioLDM2Model
    m = cls(local_path=str(path), device="cuda", duration_s=0.016, num_inference_steps=2, batch_size=2, seed=1)
    a, b = m.generate(P, [5, 6])
    assert a.shape == b.shape == (256,) and a.dtype == np.float32 and np.all(np.isfinite(a))
    (b_alone,) = m.generate(P[1:], [6])
    np.testing.assert_allclose(b_alone, b, atol=1e-2)
