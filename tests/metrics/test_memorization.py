from __future__ import annotations

import numpy as np
import pytest

from bench.metrics.base import EmbeddingSet, MetricInput, MetricUnavailable
from bench.metrics.memorization import Memorization, nearest_cosine


def test_nearest_cosine_matches_brute_force():
    rng = np.random.default_rng(0)
    gen, ref = rng.normal(size=(40, 8)), rng.normal(size=(333, 8))
    best, arg = nearest_cosine(gen, ref, block=50)
    cos = (gen / np.linalg.norm(gen, axis=1, keepdims=True)) @ (ref / np.linalg.norm(ref, axis=1, keepdims=True)).T
    np.testing.assert_allclose(best, cos.max(1), rtol=1e-12)
    np.testing.assert_array_equal(arg, cos.argmax(1))


def _sets(gen_emb, ref_emb):
    gen = EmbeddingSet("gen", sorted(gen_emb), load=lambda i: {"emb": gen_emb[i]})
    ref = EmbeddingSet("ref", sorted(ref_emb), load=lambda i: {"emb": ref_emb[i]})
    return MetricInput(gen=gen, ref=ref, seed=0)


def test_flags_near_copies():
    rng = np.random.default_rng(1)
    ref_emb = {f"r{i}": rng.normal(size=(3, 16)) for i in range(30)}
    gen_emb = {f"p{i}": rng.normal(size=(2, 16)) for i in range(9)}
    copy = ref_emb["r7"].mean(0) * 2.5  # a scaled copy of a reference clip's embedding
    gen_emb["p9"] = np.stack([copy + 1e-3, copy - 1e-3])
    res = Memorization(threshold=0.95, n_bootstrap=25)(_sets(gen_emb, ref_emb))
    assert res.per_item["p9"] == pytest.approx(1.0, abs=1e-6)
    assert res.value == pytest.approx(0.1) and res.extras["n_flagged"] == 1
    assert max(v for k, v in res.per_item.items() if k != "p9") < 0.95
    assert len(res.replicates) == 25


def test_needs_reference_embeddings():
    inp = _sets({"p1": np.ones((1, 2))}, {})
    inp.ref = EmbeddingSet("ref", [], stats={"mu": np.zeros(2), "sigma": np.eye(2), "n": 10})
    with pytest.raises(MetricUnavailable, match="not statistics"):
        Memorization()(inp)
