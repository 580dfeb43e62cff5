from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.metrics.base import EmbeddingSet, MetricInput, MetricUnavailable
from bench.metrics.kl import KL, kl_rows, paired_kl


def _probs(rng, n, c, zeros=False):
    p = rng.dirichlet(np.ones(c) * 0.5, size=n)
    if zeros:
        p[:, 0] = 0.0
        p /= p.sum(1, keepdims=True)
    return p


def test_directions_match_audiocraft_and_stable_audio_metrics():
    rng = np.random.default_rng(0)
    gen, ref = _probs(rng, 10, 527, zeros=True), _probs(rng, 10, 527)
    kls = paired_kl(gen, ref)
    g, r = torch.as_tensor(gen), torch.as_tensor(ref)
    # AudioCraft kld.py: kl_divergence(pred_probs=gen, target_probs=ref) = kl_div((gen + eps).log(), ref).sum(-1)
    audiocraft = F.kl_div((g + 1e-6).log(), r, reduction="none").sum(-1).numpy()
    np.testing.assert_allclose(kls["ref||gen"], audiocraft, rtol=1e-10)
    # stable-audio-metrics passt_kld: kl_div((ref + 1e-6).log(), gen, reduction="sum") per pair
    sam = np.array([F.kl_div((r[i] + 1e-6).log(), g[i], reduction="sum").item() for i in range(10)])
    np.testing.assert_allclose(kls["gen||ref"], sam, rtol=1e-10)


def test_kl_rows_closed_form():
    p = np.array([[0.5, 0.5, 0.0]])
    q = np.array([[0.25, 0.25, 0.5]])
    assert kl_rows(p, q, eps=0.0)[0] == pytest.approx(np.log(2.0))
    assert abs(kl_rows(q, q)[0]) < 1e-5  # identical distributions: only the eps term remains


def _inp(gen_p, ref_p):
    gen = EmbeddingSet("gen", sorted(gen_p), load=lambda i: {"emb": np.zeros((1, 2)), "probs": gen_p[i]})
    paired = EmbeddingSet("paired", sorted(ref_p), load=lambda i: {"emb": np.zeros((1, 2)), "probs": ref_p[i]})

    class Classifier:
        name = "passt"
        class_names = ("a", "b", "c")

    return MetricInput(gen=gen, paired=paired, embedder=Classifier(), seed=0)


def test_wrapper_pairs_samples_with_their_prompt():
    rng = np.random.default_rng(1)
    ref_p = {"p1": _probs(rng, 1, 3)[0], "p2": _probs(rng, 1, 3)[0]}
    gen_p = {
        "p1#0": _probs(rng, 1, 3)[0],
        "p1#1": _probs(rng, 1, 3)[0],
        "p2": _probs(rng, 1, 3)[0],
        "p9": _probs(rng, 1, 3)[0],
    }
    inp = _inp(gen_p, ref_p)
    res = KL(n_bootstrap=30)(inp)
    ids = ["p1#0", "p1#1", "p2"]
    want = [kl_rows(ref_p[i.split("#")[0]][None], gen_p[i][None])[0] for i in ids]
    assert res.value == pytest.approx(np.mean(want))
    assert res.extras["n_unpaired"] == 1 and res.n == 3
    assert res.per_item == pytest.approx(dict(zip(ids, want)))
    back = [kl_rows(gen_p[i][None], ref_p[i.split("#")[0]][None])[0] for i in ids]
    assert KL(direction="gen||ref", n_bootstrap=0)(inp).value == pytest.approx(np.mean(back))
    assert KL(direction="both", n_bootstrap=0)(inp).value == pytest.approx(np.mean(want) + np.mean(back))
    assert len(res.replicates) == 30


def test_wrapper_unavailable_cases():
    rng = np.random.default_rng(2)
    inp = _inp({"p1": _probs(rng, 1, 3)[0]}, {"p2": _probs(rng, 1, 3)[0]})
    with pytest.raises(MetricUnavailable, match="paired"):
        KL()(inp)
    with pytest.raises(ValueError):
        KL(direction="sideways")
