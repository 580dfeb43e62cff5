"""MusicGen adapter on a tiny random ``MusicgenForConditionalGeneration`` (tests/tiny_generators.py) loaded from disk.

References: transformers' own greedy CFG generation (token-exact) and its logits warpers.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from bench.models.base import ModelUnavailable  # noqa: E402
from bench.models.musicgen import MusicGenModel, filter_logits, make_seeded_sampler  # noqa: E402
from bench.prompts import Prompt  # noqa: E402
from tests.tiny_generators import MUSICGEN_SR  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")

SR = MUSICGEN_SR


@pytest.fixture(scope="module")
def tiny_musicgen(tiny_checkpoint):
    return tiny_checkpoint("musicgen")


P = [Prompt("-0Gj8-vB1q4", "slow sad piano song"), Prompt("b", "fast techno beat with drums and bass")]


def make(path, **kw):
    kw = {"checkpoint": str(path), "device": "cpu", "duration_s": 0.1, "seed": 3, **kw}
    return MusicGenModel(**kw)


def test_generate_length_rate_and_per_item_seeds(tiny_musicgen):
    m = make(tiny_musicgen)
    assert m.sample_rate == SR
    a, b = m.generate(P, [11, 22])
    assert a.dtype == np.float32 and a.shape == (round(0.1 * SR),) and np.all(np.isfinite(a))
    # item b alone (batch of 1, no padding partner) draws the same tokens as inside the batch
    (b_alone,) = m.generate(P[1:], [22])
    np.testing.assert_allclose(b_alone, b, atol=1e-5)
    (a_again,) = m.generate(P[:1], [11])
    np.testing.assert_allclose(a_again, a, atol=1e-5)
    (a_other,) = m.generate(P[:1], [12])
    assert np.abs(a_other - a).max() > 1e-4


def test_greedy_matches_transformers_cfg(tiny_musicgen):
    """With do_sample=False our processor (CFG + argmax) must give transformers' own CFG greedy output."""
    m = make(tiny_musicgen, do_sample=False, guidance_scale=3.0)
    ours = m.generate(P, [0, 1])
    processor, model = m.load()
    inputs = processor(text=[p.text for p in P], padding=True, return_tensors="pt")
    with torch.inference_mode():
        ref = model.generate(**inputs, do_sample=False, guidance_scale=3.0, max_new_tokens=m.max_new_tokens())
    for o, r in zip(ours, ref.numpy()):
        np.testing.assert_allclose(o, r[0, : o.shape[0]], atol=1e-6)


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"), [(1.0, 250, None), (0.7, 5, None), (1.3, None, 0.8), (1.0, 20, 0.5)]
)
def test_filter_logits_matches_transformers_warpers(temperature, top_k, top_p):
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    scores = torch.randn(6, 64, generator=torch.Generator().manual_seed(0)) * 3
    ref = TemperatureLogitsWarper(temperature)(None, scores.clone())
    if top_k:
        ref = TopKLogitsWarper(top_k)(None, ref)
    if top_p:
        ref = TopPLogitsWarper(top_p)(None, ref)
    ours = filter_logits(scores.clone(), temperature, top_k, top_p)
    assert torch.equal(torch.isinf(ours), torch.isinf(ref))
    torch.testing.assert_close(ours.softmax(-1), ref.softmax(-1))


def test_sampler_draws_from_the_filtered_distribution():
    """Empirical token frequencies of the one-hot sampler follow softmax(filtered logits)."""
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -5.0]])
    want = filter_logits(logits, 1.0, 3, None).softmax(-1)[0].numpy()
    counts = np.zeros(5)
    for s in range(2000):
        out = make_seeded_sampler([s], 1, None, True, 1.0, 3, None)(None, logits.clone())
        counts[int(out.argmax())] += 1
    np.testing.assert_allclose(counts / counts.sum(), want, atol=0.03)
    assert counts[3] == counts[4] == 0


def test_a_checkpoint_path_that_is_no_folder_is_named(tmp_path):
    with pytest.raises(ModelUnavailable, match="not a folder"):
        MusicGenModel(checkpoint=str(tmp_path / "nope"))


@pytest.mark.gpu
def test_generates_on_cuda(tiny_musicgen):
    m = make(tiny_musicgen, device="cuda")
    a, b = m.generate(P, [11, 22])
    assert a.dtype == np.float32 and a.shape == (round(0.1 * SR),) and np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    (a_again,) = m.generate(P[:1], [11])
    np.testing.assert_allclose(a_again, a, atol=1e-2)
