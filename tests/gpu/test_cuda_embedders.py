"""device=cuda for every embedder (random-init real architectures, benchmarks/random_embedders.py) against
the same weights on CPU, and the pipelined embed stage feeding CUDA models. Skipped without CUDA
(tests/conftest.py); scripts/gpu_check.sh runs them on a GPU machine."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import random_embedders  # noqa: E402

from bench.cache import ArrayCache  # noqa: E402
from bench.embedders.base import EmbedderUnavailable  # noqa: E402
from bench.errors import ErrorLog  # noqa: E402
from bench.stages.embed import (  # noqa: E402
    EmbedIO,
    EmbedState,
    embed_all,
)

pytestmark = pytest.mark.gpu

#: max |cuda - cpu| / max |cpu| per output (cuDNN convolutions may use TF32 on Ampere and later)
REL_TOL = 2e-2


def _clips(sr: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(int(sr * 4.3)) / sr
    a = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    b = (0.2 * rng.standard_normal(int(sr * 1.7))).astype(np.float32)
    return [a, b]


def _build(name, device, tmp):
    try:
        return random_embedders.build(name, device, tmp, batch_size=4)
    except (ImportError, EmbedderUnavailable) as exc:
        pytest.skip(f"{name}: {exc}")


@pytest.mark.parametrize("name", sorted(random_embedders.BUILDERS))
def test_embedder_on_cuda_matches_cpu(name, tmp_path):
    import torch

    cpu = _build(name, "cpu", tmp_path / "cpu")
    gpu = _build(name, "cuda", tmp_path / "cuda")
    assert gpu.id == cpu.id  # same weights, same identity
    wavs = _clips(cpu.audio.sample_rate)
    ref, out = cpu.embed_batch(wavs), gpu.embed_batch(wavs)
    torch.cuda.synchronize()
    assert len(out) == len(ref)
    for r, o in zip(ref, out):
        assert r.keys() == o.keys()
        for k in r:
            assert o[k].shape == r[k].shape and o[k].dtype == np.float32
            scale = max(float(np.abs(r[k]).max()), 1e-6)
            assert float(np.abs(o[k] - r[k]).max()) / scale < REL_TOL, (name, k)


def test_pipelined_stage_feeds_cuda_models(tmp_path):
    files = {}
    rng = np.random.default_rng(1)
    for i in range(12):
        p = tmp_path / f"c{i}.wav"
        sf.write(p, (0.2 * rng.standard_normal((44100 * (1 + i % 4), 2))).astype(np.float32), 44100)
        files[str(p)] = [("m", "s", f"i{i}")]
    res = {}
    for dev in ("cpu", "cuda"):
        st = EmbedState(ArrayCache(tmp_path / dev), ErrorLog("skip"))
        embs = [(n, _build(n, dev, tmp_path / f"w{dev}")) for n in ("vggish", "clap")]
        embed_all(st, embs, files, progress=False, io=EmbedIO(num_workers=4, batch_audio_s=16.0))
        assert not st.errors.rows and st.counters["embedded"] == 24
        res[dev] = {k: st.cache.get(v)["emb"] for k, v in st.emb_keys.items()}
    assert res["cpu"].keys() == res["cuda"].keys()
    for k, r in res["cpu"].items():
        assert np.abs(res["cuda"][k] - r).max() / max(float(np.abs(r).max()), 1e-6) < REL_TOL
