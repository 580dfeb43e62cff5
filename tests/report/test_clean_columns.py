"""Publishable wide tables: never-computable metric x embedder pairs are no columns (decided from the classes,
no weights loaded), KL direction variants only on request."""

from __future__ import annotations

import numpy as np
import pytest

import bench
from bench.config import never_computable
from bench.errors import ConfigError
from bench.metrics.base import EmbeddingSet, MetricInput
from bench.metrics.kl import KL


def test_demo_config_drops_exactly_the_impossible_pairs():
    never = never_computable(bench.compose([]))  # the demo: musicnn, vggish, clap x fad, kad, kl, clap_score
    assert never == {
        ("musicnn", "clap_score"): "musicnn has no text tower",
        ("vggish", "kl"): "vggish gives no class probabilities",
        ("vggish", "clap_score"): "vggish has no text tower",
        ("clap", "kl"): "clap gives no class probabilities",
    }


def test_a_metric_no_embedder_can_serve_is_a_config_error():
    with pytest.raises(ConfigError, match=r"metric kl cannot be computed with embedder=\['vggish'\].*classifier"):
        never_computable(bench.compose(["embedder=[vggish]", "metric=[fad,kl]"]))
    with pytest.raises(ConfigError, match="joint text-audio embedder"):
        never_computable(bench.compose(["embedder=[musicnn]", "metric=[clap_score]"]))


def test_kl_reports_directions_only_when_asked():
    probs = np.random.default_rng(0).dirichlet(np.ones(5), size=4)
    ids = ["a", "b", "c", "d"]

    def load(i):
        return {"emb": np.zeros((1, 2)), "probs": probs[ids.index(i)][::-1].copy()}

    gen = EmbeddingSet("g", ids, load=lambda i: {"emb": np.zeros((1, 2)), "probs": probs[ids.index(i)]})
    inp = MetricInput(gen=gen, ref=None, paired=EmbeddingSet("p", ids, load=load), texts={}, embedder=None, seed=0)
    plain = KL(n_bootstrap=0).compute(inp)
    both = KL(n_bootstrap=0, report_directions=True).compute(inp)
    assert set(plain.extras) == {"n_unpaired"}
    assert both.extras["kl_ref_gen"] == pytest.approx(plain.value) and "kl_gen_ref" in both.extras
