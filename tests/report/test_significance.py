"""Paired bootstrap tests, Holm correction and rank stability against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import rankdata

from bench.report import significance as sig


def test_paired_bootstrap_p_value_by_hand():
    # d = a - b = [1, 0, -2, 3]: P(d <= 0) = 2/4, P(d >= 0) = 3/4 -> p = 2 * 0.5 = 1.0
    t = sig.paired_bootstrap([1, 2, 3, 4], [0, 2, 5, 1])
    assert t.p == 1.0 and t.n == 4
    assert t.diff == pytest.approx(0.5)  # mean of d without a full-set difference
    # d = [1, 1, -1, 2, 3]: P(d <= 0) = 1/5 -> p = 0.4
    t = sig.paired_bootstrap([2, 2, 0, 3, 4], [1, 1, 1, 1, 1], diff=1.7)
    assert t.p == pytest.approx(0.4) and t.diff == 1.7
    # all d > 0 -> p = 0 (i.e. p < 1/B); identical vectors -> p = 1
    assert sig.paired_bootstrap(np.arange(10) + 1.0, np.zeros(10)).p == 0.0
    assert sig.paired_bootstrap(np.ones(7), np.ones(7)).p == 1.0


def test_paired_bootstrap_interval_by_hand_and_nan_handling():
    d = np.arange(1.0, 21.0)  # B = 20; linear interpolation at 19 * 0.025 = 0.475 and 19 * 0.975 = 18.525
    t = sig.paired_bootstrap(d, np.zeros(20))
    assert t.ci_low == pytest.approx(1.475) and t.ci_high == pytest.approx(19.525)
    a = np.array([1.0, np.nan, 3.0, 2.0])
    t = sig.paired_bootstrap(a, [0.0, 0.0, np.inf, 0.0])  # only replicates 0 and 3 are finite in both
    assert t.n == 2 and t.p == 0.0
    empty = sig.paired_bootstrap([np.nan], [1.0])
    assert empty.n == 0 and math.isnan(empty.p)
    with pytest.raises(ValueError):
        sig.paired_bootstrap([1.0, 2.0], [1.0])


def test_holm_by_hand():
    # sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.06, 0.04*1) = 0.06
    got = sig.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(got, [0.03, 0.06, 0.06, 0.02])
    got = sig.holm([0.2, np.nan, 0.01])  # NaN does not count: m = 2
    np.testing.assert_allclose(got, [0.2, np.nan, 0.02])
    assert sig.holm([0.6, 0.7]).max() <= 1.0 and sig.holm([]).size == 0


def test_rank_stability_by_hand():
    values = {"a": 1.0, "b": 2.0, "c": 3.0}  # lower is better: full ranks a=1, b=2, c=3
    reps = {
        "a": [1.0, 1.0, 2.5, 1.0],
        "b": [2.0, 3.5, 2.0, 2.0],
        "c": [3.0, 3.0, 3.0, np.nan],  # replicate 3 is dropped
    }
    st = sig.rank_stability(values, reps, lower_is_better=True).set_index("model")
    # replicate ranks: r0 = (1,2,3), r1 = (1,3,2), r2 = (2,1,3)
    assert st.loc["a", "p_rank_held"] == pytest.approx(2 / 3)
    assert st.loc["b", "p_rank_held"] == pytest.approx(1 / 3)
    assert st.loc["c", "p_rank_held"] == pytest.approx(2 / 3)
    assert st.loc["b", "p_rank_1"] == pytest.approx(1 / 3) and st.loc["b", "p_rank_3"] == pytest.approx(1 / 3)
    assert st.loc["a", "mean_rank"] == pytest.approx(4 / 3)
    assert (st["n_replicates"] == 3).all()
    dist = st[[f"p_rank_{k}" for k in (1, 2, 3)]].sum(axis=1)
    np.testing.assert_allclose(dist, 1.0)
    # higher is better flips the order
    st_hi = sig.rank_stability(values, reps, lower_is_better=False)
    assert list(st_hi["model"]) == ["c", "b", "a"]


def test_full_ranks_competition_ties():
    assert sig.full_ranks({"a": 2.0, "b": 1.0, "c": 2.0, "d": math.nan}, True) == {"b": 1, "a": 2, "c": 2}
    assert sig.full_ranks({"a": 2.0, "b": 1.0, "c": 2.0}, False) == {"a": 1, "c": 1, "b": 3}
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, size=(50, 6)).astype(float)  # many ties
    np.testing.assert_array_equal(sig.min_ranks(x), rankdata(x, method="min", axis=1))


def test_pairwise_orders_best_first_and_marks_significance():
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 1.0, 500)
    reps = {"x": base - 1.0, "y": base + rng.normal(0, 0.1, 500), "z": base + 0.002 + rng.normal(0, 0.1, 500)}
    values = {"x": -1.0, "y": 0.0, "z": 0.002}
    df = sig.pairwise(values, reps, lower_is_better=True, alpha=0.05, use_holm=True)
    assert list(zip(df["model_a"], df["model_b"])) == [("x", "y"), ("x", "z"), ("y", "z")]
    row = df.set_index(["model_a", "model_b"])
    assert row.loc[("x", "y"), "significant"] and row.loc[("x", "y"), "p"] == 0.0
    assert not row.loc[("y", "z"), "significant"] and row.loc[("y", "z"), "p"] > 0.05
    assert row.loc[("x", "y"), "diff"] == pytest.approx(-1.0)
    assert (df["p_holm"] >= df["p"]).all()
    assert sig.best_is_significant(df, "x", "y") and not sig.best_is_significant(df, "y", "z")
    # untestable pairs are reported, not tested
    df2 = sig.pairwise(values, reps, True, untestable={("z", "x"): "not paired"})
    r = df2.set_index(["model_a", "model_b"]).loc[("x", "z")]
    assert r["note"] == "not paired" and math.isnan(r["p"]) and not r["significant"]
    df3 = sig.pairwise(values, {"x": reps["x"]}, True)
    assert (df3["note"] == "no bootstrap replicates").all()


def test_format_p():
    assert sig.format_p(0.0, 200) == "<0.005"
    assert sig.format_p(0.0123) == "0.012"
    assert sig.format_p(0.5) == "0.500"
    assert sig.format_p(math.nan) == "n/a"
    assert sig.p_phrase(0.0, 1000) == "p < 0.001" and sig.p_phrase(0.25) == "p = 0.250"
