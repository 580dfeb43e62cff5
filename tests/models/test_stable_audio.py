"""Stable Audio Open adapter on tiny random components (diffusers' fast-test configs) in the real
``StableAudioPipeline``, saved and loaded back through the adapter."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from bench.errors import ErrorLog  # noqa: E402
from bench.models.base import ModelUnavailable  # noqa: E402
from bench.models.stable_audio import StableAudioOpenModel  # noqa: E402
from bench.prompts import Prompt  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")

SR = 400  # tiny Oobleck VAE: 2x downsampling, 4 latent frames -> 8 samples = 0.02 s
P = [Prompt("x", "rain on a car"), Prompt("y", "a man speaks")]


@pytest.fixture(scope="module")
def tiny_stable_audio(tmp_path_factory, t5_tokenizer):
    from diffusers import (
        AutoencoderOobleck,
        EDMDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    transformer = StableAudioDiTModel(
        sample_size=4,
        in_channels=3,
        num_layers=2,
        attention_head_dim=4,
        num_key_value_attention_heads=2,
        out_channels=3,
        cross_attention_dim=4,
        time_proj_dim=8,
        global_states_input_dim=8,
        cross_attention_input_dim=4,
    )
    # the released CosineDPMSolverMultistepScheduler needs torchsde; its EDM sibling has the same interface
    scheduler = EDMDPMSolverMultistepScheduler(
        solver_order=2, prediction_type="v_prediction", sigma_data=1.0, sigma_schedule="exponential"
    )
    torch.manual_seed(0)
    vae = AutoencoderOobleck(
        encoder_hidden_size=6,
        downsampling_ratios=[1, 2],
        decoder_channels=3,
        decoder_input_channels=3,
        audio_channels=2,
        channel_multiples=[2, 4],
        sampling_rate=SR,
    )
    torch.manual_seed(0)
    text_encoder = T5EncoderModel(T5Config(vocab_size=64, d_model=32, d_ff=37, d_kv=8, num_heads=2, num_layers=2))
    torch.manual_seed(0)
    projection = StableAudioProjectionModel(text_encoder_dim=32, conditioning_dim=4, min_value=0, max_value=32)
    pipe = StableAudioPipeline(
        transformer=transformer,
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=t5_tokenizer,
        projection_model=projection,
    )
    path = tmp_path_factory.mktemp("stable_audio")
    pipe.save_pretrained(path)
    return path


def test_generate_stereo_seeded_and_gather(tiny_stable_audio, tmp_path):
    m = StableAudioOpenModel(
        local_path=str(tiny_stable_audio),
        device="cpu",
        duration_s=0.015,
        num_inference_steps=2,
        negative_prompt="Low quality.",
    )
    assert m.sample_rate == SR
    a, b = m.generate(P, [1, 2])
    assert a.shape == (6, 2) and a.dtype == np.float32 and np.all(np.isfinite(a))
    (b_alone,) = m.generate(P[1:], [2])
    np.testing.assert_allclose(b_alone, b, atol=1e-5)
    (a_other,) = m.generate(P[:1], [3])
    assert np.abs(a_other - a).max() > 1e-6

    errors = ErrorLog()
    out = m.gather(P, tmp_path / "sao", errors, "s", progress=False)
    assert sorted(out) == ["x", "y"] and not errors.rows
    info = sf.info(str(out["x"]))
    assert (info.samplerate, info.channels, info.frames) == (SR, 2, 6)


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
        StableAudioOpenModel(local_path=str(repo), device="cpu")
    m = StableAudioOpenModel(
        local_path=str(repo),
        device="cpu",
        duration_s=0.015,
        num_inference_steps=2,
        scheduler="EDMDPMSolverMultistepScheduler",
    )
    (w,) = m.generate(P[:1], [1])
    assert w.shape == (6, 2) and type(m.load().scheduler).__name__ == "EDMDPMSolverMultistepScheduler"


@pytest.mark.gpu
def test_generates_on_cuda(tiny_stable_audio):
    m = StableAudioOpenModel(local_path=str(tiny_stable_audio), device="cuda", duration_s=0.015, num_inference_steps=2)
    a, b = m.generate(P, [1, 2])
    assert a.shape == (6, 2) and a.dtype == np.float32 and np.all(np.isfinite(a))
    (b_alone,) = m.generate(P[1:], [2])
    np.testing.assert_allclose(b_alone, b, atol=1e-2)
