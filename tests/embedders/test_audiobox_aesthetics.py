"""Audiobox Aesthetics: our inference path vs the package's own ``AesPredictor`` on shared random weights.

One random checkpoint (the released format: ``state_dict`` with ``model.`` prefixes, ``model_cfg``,
``target_transform``) is written to disk and loaded by both sides; both score the same real audio
(CC0 Sonic Pi clips concatenated to 14 s, so that it spans a full and a partial 10 s window).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("audiobox_aesthetics.model.aes", reason="pip install --no-deps audiobox-aesthetics==0.0.4")

from bench.checkpoints import CheckpointUnavailable
from bench.embedders.audiobox_aesthetics import AXES, AudioboxAesthetics, window_batch
from bench.embedders.base import EmbedderUnavailable
from bench.metrics.aesthetics import AestheticsCE, AestheticsPQ
from bench.metrics.base import EmbeddingSet, MetricInput, MetricUnavailable
from bench.metrics.bootstrap import clip_weights

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "melody"


@pytest.fixture(scope="module")
def checkpoint(tiny_embedder_checkpoint):
    return tiny_embedder_checkpoint("audiobox_aesthetics")  # random AesMultiOutput, released layout


@pytest.fixture(scope="module")
def clips():
    a, _ = sf.read(GOLDEN / "guit_harmonics.flac", dtype="float32")
    b, _ = sf.read(GOLDEN / "ambi_glass_rub.flac", dtype="float32")
    return {"long": np.concatenate([a, b, a, b, a])[: 14 * 16000]}


@pytest.mark.slow
def test_scores_equal_the_packages_predictor(checkpoint, clips):
    from audiobox_aesthetics.infer import AesPredictor

    ours = AudioboxAesthetics(checkpoint=str(checkpoint), device="cpu", batch_size=2)
    theirs = AesPredictor(checkpoint_pth=str(checkpoint))
    assert theirs.device.type == "cpu"
    rows = theirs.forward([{"path": torch.from_numpy(w)[None], "sample_rate": 16000} for w in clips.values()])
    outs = ours.embed_batch(list(clips.values()))
    for row, out in zip(rows, outs):
        want = np.array([row[a] for a in AXES])
        np.testing.assert_allclose(out["aes"], want, rtol=1e-5, atol=1e-5)
        print("max abs difference vs AesPredictor:", float(np.abs(out["aes"] - want).max()), want)
    assert outs[0]["emb"].shape == (2, 4)  # a full and a partial (masked, weight 0.4) window
    assert ours.checkpoints()["audiobox_aesthetics"]["sha256"] == ours.params()["checkpoint_sha256"]


def test_window_batch_matches_make_inference_batch():
    from audiobox_aesthetics.infer import make_inference_batch

    wav = np.random.default_rng(0).normal(size=25 * 16000 + 123).astype(np.float32)
    wins, masks, weights = window_batch(wav)
    ref_w, ref_m, ref_weights, _ = make_inference_batch([torch.from_numpy(wav)[None]], 10, 10, sample_rate=16000)
    np.testing.assert_array_equal(wins, torch.cat(ref_w).numpy())
    np.testing.assert_array_equal(masks, torch.cat(ref_m).numpy())
    np.testing.assert_allclose(weights, ref_weights)


def test_missing_checkpoint_offline_names_the_ways_to_provide_it(monkeypatch, tmp_path):
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path))
    monkeypatch.setenv("GENAUDIO_BENCH_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("GENAUDIO_BENCH_AUDIOBOX_AESTHETICS_CHECKPOINT", raising=False)
    with pytest.raises((CheckpointUnavailable, EmbedderUnavailable)) as exc:
        AudioboxAesthetics(device="cpu")
    msg = str(exc.value)
    assert "embedder.audiobox_aesthetics.checkpoint" in msg and "GENAUDIO_BENCH_AUDIOBOX_AESTHETICS_CHECKPOINT" in msg


def test_axis_metrics_average_clip_scores_with_bootstrap():
    rng = np.random.default_rng(0)
    aes = {f"p{i}#{k}": rng.uniform(1, 10, size=4).astype(np.float32) for i in range(8) for k in range(2)}
    gen = EmbeddingSet("g", sorted(aes), load=lambda i: {"emb": aes[i][None], "aes": aes[i]})

    class E:
        feature, name = "aesthetics", "audiobox_aesthetics"

    res = AestheticsPQ(n_bootstrap=25)(MetricInput(gen=gen, embedder=E(), seed=2))
    pq = np.array([aes[i][3] for i in sorted(aes)], dtype=np.float64)
    assert res.value == pytest.approx(pq.mean()) and res.per_item["p3#1"] == pytest.approx(aes["p3#1"][3])
    w = clip_weights(sorted(aes), 25, 2)
    assert res.replicates[7] == pytest.approx((w[7] @ pq) / w[7].sum())
    ce = AestheticsCE(n_bootstrap=0)(MetricInput(gen=gen, embedder=E()))
    assert ce.value == pytest.approx(np.mean([aes[i][0] for i in sorted(aes)]), rel=1e-6)
    assert AestheticsCE().id != AestheticsPQ().id

    class Other:
        feature, name = None, "musicnn"

    with pytest.raises(MetricUnavailable, match="audiobox_aesthetics embedder"):
        AestheticsPQ()(MetricInput(gen=gen, embedder=Other()))
