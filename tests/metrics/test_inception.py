from __future__ import annotations

import numpy as np
import pytest

from bench.metrics.base import EmbeddingSet, MetricInput
from bench.metrics.bootstrap import clip_weights, resample_indices
from bench.metrics.inception import (
    InceptionScore,
    inception_score,
    inception_score_replicates,
    inception_score_splits,
)


def test_closed_forms():
    assert inception_score(np.eye(7)) == pytest.approx(7.0)  # confident and diverse: number of classes
    assert inception_score(np.tile([0.2, 0.3, 0.5], (9, 1))) == pytest.approx(1.0)  # identical predictions
    # two classes, half the clips certain of each, the rest uniform: exp(0.5 log 2)
    p = np.array([[1, 0], [0, 1], [0.5, 0.5], [0.5, 0.5]])
    assert inception_score(p) == pytest.approx(np.sqrt(2.0))


def test_torch_fidelity_style_splits():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(100, 10)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    perm = np.random.RandomState(5).permutation(100)
    q = p[perm]
    chunks = [q[i * 10 : (i + 1) * 10] for i in range(10)]
    scores = []
    for c in chunks:  # torch-fidelity: exp(mean_i sum_c p (log p - log mean p))
        py = c.mean(0, keepdims=True)
        scores.append(np.exp((c * (np.log(c) - np.log(py))).sum(1).mean()))
    assert inception_score_splits(p, 10, seed=5) == pytest.approx((np.mean(scores), np.std(scores)))


def test_replicates_equal_expanded_sets():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(5), size=12)
    ids = [f"p{i // 2}#{i % 2}" for i in range(12)]
    w = clip_weights(ids, 20, 0)
    want = [inception_score(p[resample_indices(row)]) for row in w]
    np.testing.assert_allclose(inception_score_replicates(p, w), want, rtol=1e-10)


def test_wrapper():
    rng = np.random.default_rng(2)
    probs = {f"p{i}": rng.dirichlet(np.ones(4)) * 0.7 for i in range(20)}  # unnormalised (sigmoid-like)
    gen = EmbeddingSet("gen", sorted(probs), load=lambda i: {"emb": np.zeros((1, 2)), "probs": probs[i]})

    class Classifier:
        name = "passt"
        class_names = ("a", "b", "c", "d")

    res = InceptionScore(n_bootstrap=40)(MetricInput(gen=gen, embedder=Classifier()))
    p = np.stack([probs[k] for k in sorted(probs)])
    assert res.value == pytest.approx(inception_score(p / p.sum(1, keepdims=True)))
    assert len(res.replicates) == 40 and res.ci_low <= res.value <= res.ci_high
    res10 = InceptionScore(splits=2, n_bootstrap=10)(MetricInput(gen=gen, embedder=Classifier()))
    assert "is_std" in res10.extras and res10.replicates is None
