"""CallableModel: a researcher's own function as a model."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from bench.errors import ErrorLog
from bench.models.base import item_seed
from bench.models.callable import CallableModel, example_tone
from bench.prompts import Prompt

P = [Prompt("p0", "a calm piano"), Prompt("p1", "loud drums")]


def test_dotted_path_example_writes_the_functions_output(tmp_path):
    m = CallableModel(fn="bench.models.callable.example_tone", duration_s=0.5, sample_rate=16000, batch_size=8)
    errors = ErrorLog()
    out = m.gather(P, tmp_path / "o", errors, "s", progress=False)
    assert sorted(out) == ["p0", "p1"] and not errors.rows and m.n_generated == 2
    data, sr = sf.read(str(out["p0"]))
    assert sr == 16000 and data.shape == (8000,)  # duration_s reached the function
    ref, _ = example_tone([P[0].text], [item_seed(0, "p0", 0)], 0.5)
    np.testing.assert_allclose(data, ref[0], atol=1 / 32768)  # the file holds the function's output (16-bit)


def test_returned_rate_is_resampled_and_torch_channels_first_accepted(tmp_path):
    torch = pytest.importorskip("torch")

    def stereo_48k(prompts, seeds):
        return [torch.ones(2, 4800) * 0.1 for _ in prompts], 48000  # (channels, samples) tensors at 48 kHz

    m = CallableModel(fn=stereo_48k, sample_rate=16000)
    a, _ = m.generate(P, [0, 1])
    assert a.shape == (1600, 2)
    np.testing.assert_allclose(a[200:1400], 0.1, atol=1e-3)
    assert "stereo_48k" in m.params()["fn"]


def test_wrong_count_is_a_per_item_error(tmp_path):
    def broken(prompts, seeds):
        return [np.zeros(100, np.float32)] if len(prompts) > 1 else [np.full(100, np.nan, np.float32)]

    errors = ErrorLog()
    out = CallableModel(fn=broken, batch_size=2).gather(P, tmp_path / "o", errors, "s", progress=False)
    assert out == {} and len(errors.rows) == 2 and "non-finite" in errors.rows[0].reason
