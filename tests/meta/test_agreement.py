"""`bench agreement`: hand-computed Kendall / Spearman / pairwise accuracy (checked against scipy),
known orderings (oracle > synth > noise), item-level scores, bootstrap intervals, CLI errors."""

from __future__ import annotations

import csv
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.meta import agreement as A
from bench.report.leaderboard import PER_ITEM_COLUMNS, long_frame, write_csv

ORDER = ["oracle", "synth", "noise"]  # best first
PROMPTS = [f"p{i}" for i in range(8)]


def _write_run(root: Path, name: str, values: dict[tuple[str, str, str], float], lower: dict[str, bool],
               per_item: dict[tuple[str, str, str], dict[str, float]] | None = None) -> Path:
    """A run folder with leaderboard_long.csv (+ per_item.csv): values[(model, embedder, metric)]."""
    d = root / name
    d.mkdir(parents=True)
    rows = [{"run_id": name, "model": m, "prompt_set": "ps", "reference_set": "ref", "embedder": e, "metric": k,
             "value": v, "n": len(PROMPTS), "lower_is_better": lower[k], "status": "ok"}
            for (m, e, k), v in values.items()]
    write_csv(long_frame(rows), d / "leaderboard_long.csv")
    items = [{"run_id": name, "model": m, "prompt_set": "ps", "reference_set": "ref", "embedder": e, "metric": k,
              "item_id": iid, "value": v}
             for (m, e, k), per in (per_item or {}).items() for iid, v in per.items()]
    write_csv(pd.DataFrame(items, columns=list(PER_ITEM_COLUMNS)), d / "per_item.csv", PER_ITEM_COLUMNS)
    return d


def _prefs(path: Path, order=ORDER, prompts=PROMPTS, flip: set[tuple[str, str, str]] = frozenset()) -> Path:
    """Every pair of systems on every prompt, the better one (by ``order``) preferred unless in ``flip``;
    which system is listed as a/b alternates, and ``preferred`` alternates between 'a'/'b' and names."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt_id", "system_a", "system_b", "preferred"])
        for k, (p, (x, y)) in enumerate(itertools.product(prompts, itertools.combinations(order, 2))):
            best = y if (p, x, y) in flip else x  # x comes first in `order`
            a, b = (x, y) if k % 2 else (y, x)
            pref = best if k % 3 else ("a" if best == a else "b")
            w.writerow([p, a, b, pref])
    return path


# -- pure statistics ---------------------------------------------------------------------------
def test_hand_computed_kendall_spearman_accuracy_match_scipy():
    h = np.array([4.0, 3.0, 2.0, 1.0])
    m = np.array([3.0, 4.0, 1.0, 2.0])
    # pairs: (0,1) D, (0,2) C, (0,3) C, (1,2) C, (1,3) C, (2,3) D -> tau = (4 - 2) / 6
    assert A.kendall_tau(h, m) == pytest.approx(1 / 3, abs=1e-12)
    assert A.kendall_tau(h, m) == pytest.approx(stats.kendalltau(h, m).statistic, abs=1e-12)
    # ranks differ by (1, -1, 1, -1): rho = 1 - 6 * 4 / (4 * (16 - 1)) = 0.6
    assert A.spearman_rho(h, m) == pytest.approx(0.6, abs=1e-12)
    assert A.spearman_rho(h, m) == pytest.approx(stats.spearmanr(h, m).statistic, abs=1e-12)
    assert A.pairwise_accuracy(h, m) == pytest.approx(4 / 6)
    # a metric tie counts 1/2; human ties are not scored
    assert A.pairwise_accuracy([3, 2, 1], [5, 5, 1]) == pytest.approx((0.5 + 1 + 1) / 3)
    assert A.pairwise_accuracy([2, 2, 1], [1, 3, 0]) == pytest.approx(1.0)
    # with ties, tau-b (scipy) rather than tau-a
    x, y = np.array([1, 2, 2, 3, 4.0]), np.array([2, 1, 3, 3, 5.0])
    assert A.kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert np.isnan(A.kendall_tau([1, 1, 1], [1, 2, 3]))


def test_win_rates_and_mean_scores_by_hand():
    a, b = np.array([0, 0, 1, 2]), np.array([1, 2, 2, 0])
    y = np.array([1, 0, -1, 1])  # 0 beats 1; 0 ties 2; 2 beats 1; 2 beats 0
    w = np.ones(4)
    # system 0: win, tie, loss -> 1.5 / 3; system 1: 0 / 2; system 2: 0.5 + 1 + 1 = 2.5 / 3
    assert np.allclose(A.win_rates(a, b, y, w, 3), [0.5, 0.0, 2.5 / 3])
    assert np.allclose(A.mean_scores(np.array([0, 0, 1]), np.array([1.0, 3.0, 5.0]), np.ones(3), 3)[:2], [2.0, 5.0])
    assert np.isnan(A.mean_scores(np.array([0]), np.array([1.0]), np.ones(1), 2)[1])


# -- system level ----------------------------------------------------------------------------
def test_known_ordering_gives_perfect_and_reversed_agreement(tmp_path):
    values = {
        ("oracle", "musicnn", "fad"): 1.0, ("synth", "musicnn", "fad"): 5.0, ("noise", "musicnn", "fad"): 20.0,
        # higher is better but ranks noise first: perfectly wrong
        ("oracle", "musicnn", "bad"): 0.1, ("synth", "musicnn", "bad"): 0.2, ("noise", "musicnn", "bad"): 0.9,
        # gets the top right, swaps the bottom two
        ("oracle", "musicnn", "half"): 0.9, ("synth", "musicnn", "half"): 0.1, ("noise", "musicnn", "half"): 0.2,
        # an extra repeating its metric's value (like prdc.coverage when PRDC's value is coverage)
        ("oracle", "musicnn", "half.copy"): 0.9, ("synth", "musicnn", "half.copy"): 0.1,
        ("noise", "musicnn", "half.copy"): 0.2,
        ("oracle", "musicnn", "fad.n_frames"): 9, ("synth", "musicnn", "fad.n_frames"): 9,
        ("noise", "musicnn", "fad.n_frames"): 9,
    }
    run = _write_run(tmp_path, "r1", values, {"fad": True, "bad": False, "half": False, "half.copy": False,
                                                   "fad.n_frames": True})
    prefs = _prefs(tmp_path / "prefs.csv")
    j = A.load_judgements(prefs)
    assert j.kind == "pairwise" and len(j.df) == 3 * len(PROMPTS)
    assert (j.df["y"] != 0).all()
    table = A.run_agreement(prefs, [run], tmp_path / "out", n_bootstrap=50)
    sys_t = table[table["level"] == "system"].set_index("metric")
    assert "fad.n_frames" not in sys_t.index  # bookkeeping extras are not metrics
    assert "half.copy" not in sys_t.index  # nor are copies of a metric's own value
    assert sys_t.loc["fad", ["pairwise_accuracy", "kendall_tau", "spearman_rho"]].tolist() == [1.0, 1.0, 1.0]
    assert sys_t.loc["bad", ["pairwise_accuracy", "kendall_tau", "spearman_rho"]].tolist() == [0.0, -1.0, -1.0]
    assert sys_t.loc["half", "pairwise_accuracy"] == pytest.approx(2 / 3)
    assert sys_t.loc["half", "kendall_tau"] == pytest.approx(stats.kendalltau([3, 2, 1], [0.9, 0.1, 0.2]).statistic)
    assert sys_t.loc["half", "spearman_rho"] == pytest.approx(0.5)
    assert list(sys_t.sort_values("rank").index) == ["fad", "half", "bad"]
    # every resample keeps the unanimous ordering: degenerate intervals
    assert sys_t.loc["fad", ["kendall_tau_low", "kendall_tau_high"]].tolist() == [1.0, 1.0]
    out = pd.read_csv(tmp_path / "out" / "agreement.csv")
    assert list(out.columns) == list(A.TABLE_COLUMNS)
    html = (tmp_path / "out" / "agreement.html").read_text()
    assert "Agreement with human judgements" in html and "data:image/png;base64" in html


def test_mos_system_level_against_scipy(tmp_path):
    systems = ["s0", "s1", "s2", "s3"]
    rng = np.random.default_rng(0)
    mos_means = {"s0": 4.0, "s1": 3.0, "s2": 2.0, "s3": 1.0}
    rows = [(s, p, mos_means[s] + d) for s in systems for p, d in zip(PROMPTS, rng.normal(0, 0.01, len(PROMPTS)))]
    path = tmp_path / "mos.csv"
    pd.DataFrame(rows, columns=["system", "prompt_id", "score"]).to_csv(path, index=False)
    metric = {"s0": 3.0, "s1": 4.0, "s2": 1.0, "s3": 2.0}
    # the same ordering stored as a lower-is-better metric must give the same agreement
    values = {**{(s, "e", "m"): v for s, v in metric.items()}, **{(s, "e", "neg"): -v for s, v in metric.items()}}
    run = _write_run(tmp_path, "r", values, {"m": False, "neg": True})
    table = A.run_agreement(path, run, tmp_path / "out", n_bootstrap=20)
    t = table[table["level"] == "system"].set_index("metric")
    h = [np.mean([r[2] for r in rows if r[0] == s]) for s in systems]
    for k in ("m", "neg"):
        assert t.loc[k, "kendall_tau"] == pytest.approx(stats.kendalltau(h, list(metric.values())).statistic)
        assert t.loc[k, "kendall_tau"] == pytest.approx(1 / 3)
        assert t.loc[k, "spearman_rho"] == pytest.approx(0.6)
        assert t.loc[k, "pairwise_accuracy"] == pytest.approx(4 / 6)
        assert t.loc[k, "n"] == 4


# -- item level ------------------------------------------------------------------------------
def test_item_level_pairwise_accuracy_by_hand(tmp_path):
    prompts = PROMPTS[:4]
    # per-clip values (higher is better); the listeners always prefer oracle > synth > noise
    per = {
        "oracle": {"p0": 0.9, "p1": 0.9, "p2": 0.1, "p3": 0.5},
        "synth": {"p0": 0.5, "p1": 0.5, "p2": 0.5, "p3": 0.5},
        "noise": {"p0": 0.1, "p1": 0.1, "p2": 0.9, "p3": 0.1},
    }
    # per prompt: p0, p1 all 3 judgements agree; p2 all 3 disagree; p3: oracle=synth tie (1/2), o>n ok, s>n ok
    expected_acc = (3 + 3 + 0 + 2.5) / 12
    values = {(m, "clap", "clap_score"): float(np.mean(list(v.values()))) for m, v in per.items()}
    per_item = {(m, "clap", "clap_score"): {p if m != "synth" else f"{p}#0": v for p, v in vs.items()}
                for m, vs in per.items()}
    run = _write_run(tmp_path, "r", values, {"clap_score": False}, per_item)
    prefs = _prefs(tmp_path / "prefs.csv", prompts=prompts)
    table = A.run_agreement(prefs, run, tmp_path / "out", n_bootstrap=200, seed=1)
    item = table[table["level"] == "item"].set_index("metric").loc["clap_score"]
    assert item["pairwise_accuracy"] == pytest.approx(expected_acc)
    assert item["kendall_tau"] == pytest.approx(2 * expected_acc - 1)
    assert np.isnan(item["spearman_rho"]) and item["n"] == 12
    # per-item metric: the system value is the mean of the clips, so resamples move it: a real interval
    assert item["pairwise_accuracy_low"] < expected_acc < item["pairwise_accuracy_high"]
    system = table[table["level"] == "system"].set_index("metric").loc["clap_score"]
    assert system["kendall_tau_low"] <= system["kendall_tau"] <= system["kendall_tau_high"]


def test_item_level_mos_matches_scipy_over_items(tmp_path):
    rng = np.random.default_rng(3)
    systems = ["a", "b", "c"]
    human = {(s, p): float(rng.integers(1, 6)) for s in systems for p in PROMPTS}
    metric = {(s, p): human[(s, p)] + rng.normal(0, 1.5) for s in systems for p in PROMPTS}
    path = tmp_path / "mos.csv"
    # two ratings per clip whose mean is the human score
    rows = [(s, p, v + d) for (s, p), v in human.items() for d in (-0.5, 0.5)]
    pd.DataFrame(rows, columns=["system", "prompt_id", "score"]).to_csv(path, index=False)
    values = {(s, "e", "pm"): float(np.mean([metric[(s, p)] for p in PROMPTS])) for s in systems}
    per_item = {(s, "e", "pm"): {p: metric[(s, p)] for p in PROMPTS} for s in systems}
    run = _write_run(tmp_path, "r", values, {"pm": False}, per_item)
    table = A.run_agreement(path, run, tmp_path / "out", n_bootstrap=30)
    item = table[table["level"] == "item"].set_index("metric").loc["pm"]
    keys = sorted(human)
    hv, mv = [human[k] for k in keys], [metric[k] for k in keys]
    assert item["kendall_tau"] == pytest.approx(stats.kendalltau(hv, mv).statistic, abs=1e-12)
    assert item["spearman_rho"] == pytest.approx(stats.spearmanr(hv, mv).statistic, abs=1e-12)
    accs = [A.pairwise_accuracy([human[(s, p)] for s in systems], [metric[(s, p)] for s in systems]) for p in PROMPTS]
    assert item["pairwise_accuracy"] == pytest.approx(np.nanmean(accs))
    assert item["n"] == len(keys)


# -- input errors and the CLI ----------------------------------------------------------------
def test_bad_judgement_files_name_the_problem(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("foo,bar\n1,2\n")
    with pytest.raises(A.AgreementError, match="match neither pairwise"):
        A.load_judgements(p)
    p.write_text("prompt_id,system_a,system_b,preferred\np0,x,y,z\n")
    with pytest.raises(A.AgreementError, match="line 2: preferred='z'"):
        A.load_judgements(p)
    p.write_text("system,prompt_id,score\nx,p0,good\n")
    with pytest.raises(A.AgreementError, match="not a number"):
        A.load_judgements(p)
    with pytest.raises(A.AgreementError, match="does not exist"):
        A.load_judgements(tmp_path / "missing.csv")
    p.write_text("Prompt,Model_A,Model_B,Winner\np0,x,y,tie\n")  # aliases, case
    j = A.load_judgements(p, {"x": "oracle"})
    assert j.kind == "pairwise" and j.df.iloc[0].tolist() == ["p0", "oracle", "y", "tie", 0]


def _bench(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from bench.cli import main; sys.argv = ['bench', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])


def test_cli_runs_and_fails_cleanly(tmp_path):
    values = {("oracle", "e", "fad"): 1.0, ("synth", "e", "fad"): 2.0, ("noise", "e", "fad"): 3.0}
    run = _write_run(tmp_path, "r", values, {"fad": True})
    prefs = _prefs(tmp_path / "prefs.csv")
    ok = _bench("agreement", "-j", str(prefs), str(run), "--out", str(tmp_path / "o"), "--n-bootstrap", "10")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "o" / "agreement.csv").is_file() and "fad" in ok.stdout
    other = _prefs(tmp_path / "other.csv", order=["x", "y", "z"])
    bad = _bench("agreement", "-j", str(other), str(run), "--out", str(tmp_path / "o2"))
    assert bad.returncode == 2 and "--system-map" in bad.stderr and "Traceback" not in bad.stderr
    missing = _bench("agreement", "-j", str(tmp_path / "nope.csv"), str(run))
    assert missing.returncode == 2 and "nope.csv" in missing.stderr


def test_on_a_real_pipeline_run(tmp_path, tiny_audio_dir, helpers, single_thread):
    """A tiny oracle/synth/noise run (FAD@logmel orders them oracle < synth < noise) against listeners who
    prefer oracle > synth > noise: FAD agrees perfectly at system level; per-sample FAD is scored per item."""
    import bench

    run = bench.run(helpers.tiny_run_config(tmp_path, tiny_audio_dir))
    prompts = sorted(pd.read_csv(run / "per_item.csv")["item_id"].map(lambda i: i.split("#")[0]).unique())
    prefs = _prefs(tmp_path / "prefs.csv", prompts=prompts)
    table = bench.agreement(prefs, [run], tmp_path / "agreement", n_bootstrap=50)
    fad = table[table["metric"] == "fad"].set_index("level")
    assert fad.loc["system", ["pairwise_accuracy", "kendall_tau", "spearman_rho"]].tolist() == [1.0, 1.0, 1.0]
    item = fad.loc["item"]
    assert item["n"] == 3 * len(prompts) and 0.0 <= item["pairwise_accuracy"] <= 1.0
    # per-sample FAD is not the mean of FAD: the system value is held fixed on resamples
    assert fad.loc["system", "kendall_tau_low"] == fad.loc["system", "kendall_tau_high"] == 1.0


def test_system_map_renames_judged_systems(tmp_path):
    values = {("oracle", "e", "fad"): 1.0, ("synth", "e", "fad"): 2.0, ("noise", "e", "fad"): 3.0}
    run = _write_run(tmp_path, "r", values, {"fad": True})
    prefs = _prefs(tmp_path / "prefs.csv", order=["Real", "SynthV1", "Noise"])
    (tmp_path / "map.csv").write_text("system,model\nReal,oracle\nSynthV1,synth\nNoise,noise\n")
    table = A.run_agreement(prefs, run, tmp_path / "o", n_bootstrap=5, system_map=tmp_path / "map.csv")
    assert table.set_index("level").loc["system", "kendall_tau"] == 1.0
    (tmp_path / "bad.csv").write_text("name,model\nReal,oracle\n")
    with pytest.raises(A.AgreementError, match="needs columns system,model"):
        A.read_system_map(tmp_path / "bad.csv")
