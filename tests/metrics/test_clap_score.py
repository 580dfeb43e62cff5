from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.metrics.base import EmbeddingSet, MetricInput, MetricUnavailable
from bench.metrics.clap_score import CLAPScore, clap_score, cosine_rows, per_prompt_means


class LookupTextTower:
    """Embedder stand-in whose text tower is a fixed table (golden vectors), not a model."""

    name = "lookup"
    has_text = True

    def __init__(self, table: dict[str, np.ndarray]):
        self.table = table
        self.calls: list[list[str]] = []

    def embed_text(self, texts):
        self.calls.append(list(texts))
        return np.stack([self.table[t] for t in texts])


def test_cosine_matches_torch():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20, 7)), rng.normal(size=(20, 7))
    want = torch.nn.functional.cosine_similarity(torch.as_tensor(a), torch.as_tensor(b), dim=1, eps=1e-8).numpy()
    np.testing.assert_allclose(cosine_rows(a, b), want, rtol=1e-12)


def test_hand_cases_and_scale():
    audio = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [1.0, 1.0]])
    text = np.array([[2.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
    value, cos = clap_score(audio, text)
    np.testing.assert_allclose(cos, [1.0, 0.0, -1.0, np.sqrt(0.5)], atol=1e-12)
    assert value == pytest.approx(np.sqrt(0.5) / 4)
    assert clap_score(audio, text, scale=100)[0] == pytest.approx(100 * np.sqrt(0.5) / 4)
    assert per_prompt_means(np.array([1.0, 3.0, 5.0]), ["a#0", "a#1", "b"]) == {"a": 2.0, "b": 5.0}


def _inp(texts):
    emb = {
        "p1#0": np.array([[1.0, 0.0], [1.0, 0.2]], dtype=np.float32),  # mean (1, 0.1)
        "p1#1": np.array([[0.0, 1.0]], dtype=np.float32),
        "p2": np.array([[-1.0, 0.0]], dtype=np.float32),
    }
    gen = EmbeddingSet("gen", sorted(emb), load=lambda i: {"emb": emb[i]})
    tower = LookupTextTower({"a piano": np.array([1.0, 0.0]), "rain": np.array([1.0, 0.0])})
    return MetricInput(gen=gen, texts=texts, embedder=tower, seed=0), tower


def test_wrapper_per_clip_and_per_prompt():
    inp, tower = _inp({"p1": "a piano", "p2": "rain"})
    c1 = 1.0 / np.hypot(1.0, 0.1)
    res = CLAPScore(n_bootstrap=50)(inp)
    assert res.value == pytest.approx((c1 + 0.0 - 1.0) / 3)
    assert res.per_item == pytest.approx({"p1#0": c1, "p1#1": 0.0, "p2": -1.0})
    assert tower.calls == [["a piano", "rain"]]  # one text per prompt
    assert len(res.replicates) == 50 and res.ci_low <= res.value <= res.ci_high
    by_prompt = CLAPScore(per_item="prompt", scale=100, n_bootstrap=0)(inp)
    assert by_prompt.per_item == pytest.approx({"p1": 100 * c1 / 2, "p2": -100.0})
    assert by_prompt.replicates is None


def test_wrapper_unavailable_without_texts_or_text_tower():
    inp, _ = _inp({"p1": "a piano"})
    with pytest.raises(MetricUnavailable, match="missing"):
        CLAPScore(n_bootstrap=0)(inp)

    class AudioOnly:
        name = "vggish"
        has_text = False

    inp.embedder = AudioOnly()
    with pytest.raises(MetricUnavailable, match="text"):
        CLAPScore()(inp)
