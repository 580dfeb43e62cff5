"""Stable Audio Open adapter on tiny random components (diffusers' fast-test configs) in the real
``StableAudioPipeline``, saved and loaded back through the adapter."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from bench.models.base import ModelUnavailable  # noqa: E402
from bench.models.stable_audio import StableAudioOpenModel  # noqa: E402
from bench.prompts import Prompt  # noqa: E402
from tests.tiny_generators import STABLE_AUDIO_SR  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")

SR = STABLE_AUDIO_SR  # tiny Oobleck VAE: 2x downsampling, 4 latent frames -> 8 samples = 0.02 s
P = [Prompt("x", "rain on a car"), Prompt("y", "a man speaks")]


@pytest.fixture(scope="module")
def tiny_stable_audio(tiny_checkpoint):
    return tiny_checkpoint("stable_audio")


def test_generates_stereo_at_the_vae_rate(tiny_stable_audio):
    m = StableAudioOpenModel(
        checkpoint=str(tiny_stable_audio),
        device="cpu",
        duration_s=0.015,
        num_inference_steps=2,
        negative_prompt="Low quality.",
    )
    assert m.sample_rate == SR
    a, b = m.generate(P, [1, 2])
    assert a.shape == b.shape == (6, 2) and a.dtype == np.float32 and np.all(np.isfinite(a))
    (a_other,) = m.generate(P[:1], [3])
    assert np.abs(a_other - a).max() > 1e-6


def test_scheduler_needing_a_missing_package(tiny_stable_audio, tmp_path):
    """A repo whose scheduler needs torchsde: unavailable with a pip hint, unless `scheduler` overrides it."""
    if importlib.util.find_spec("torchsde") is not None:
        pytest.skip("torchsde is installed")
    repo = tmp_path / "repo"
    shutil.copytree(tiny_stable_audio, repo)
    index = json.loads((repo / "model_index.json").read_text())
    index["scheduler"] = ["diffusers", "CosineDPMSolverMultistepScheduler"]
    (repo / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelUnavailable, match="pip install torchsde"):
        StableAudioOpenModel(checkpoint=str(repo), device="cpu")
    m = StableAudioOpenModel(
        checkpoint=str(repo),
        device="cpu",
        duration_s=0.015,
        num_inference_steps=2,
        scheduler="EDMDPMSolverMultistepScheduler",
    )
    (w,) = m.generate(P[:1], [1])
    assert w.shape == (6, 2) and type(m.load().scheduler).__name__ == "EDMDPMSolverMultistepScheduler"


@pytest.mark.gpu
def test_generates_on_cuda(tiny_stable_audio):
    m = StableAudioOpenModel(checkpoint=str(tiny_stable_audio), device="cuda", duration_s=0.015, num_inference_steps=2)
    a, b = m.generate(P, [1, 2])
    assert a.shape == (6, 2) and a.dtype == np.float32 and np.all(np.isfinite(a))
    (b_alone,) = m.generate(P[1:], [2])
    np.testing.assert_allclose(b_alone, b, atol=1e-2)
