"""``bench agreement``: how well does each metric agree with human judgements?

Inputs (format details in ``docs/meta_evaluation.md``):

* judgements, one CSV, either
  - pairwise preferences ``prompt_id, system_a, system_b, preferred`` (MusicPrefs-style;
    ``preferred`` is ``a`` / ``b`` / the preferred system's name / ``tie``), or
  - per-clip ratings (MOS) ``system, prompt_id, score``;
* one or more finished run folders: ``leaderboard_long.csv`` (system-level values) and
  ``per_item.csv`` (per-clip values of per-item metrics). System names must equal the runs'
  model names (``system_map`` renames them).

Scores, with every metric oriented so that larger = better (``-value`` when lower is better):

* **system level**: the human score of a system is its mean rating (MOS) or its win rate
  ``(wins + ties / 2) / comparisons`` (pairwise). Per metric: *pairwise accuracy* over system
  pairs the humans separate (a metric tie counts 1/2), Kendall tau-b and Spearman rho
  (:mod:`scipy.stats`) between human and metric scores;
* **item level** (metrics with per-clip values; a prompt's ``#k`` samples are averaged):
  pairwise judgements: accuracy over the non-tied judgements where both clips have a value (the
  metric's preference vs the listener's; metric tie = 1/2), and Kendall tau as ``2 acc - 1``
  (concordant minus discordant share; Spearman is undefined and left empty). MOS: Kendall tau-b and
  Spearman rho over all (system, prompt) items, pairwise accuracy over pairs of systems on the same
  prompt whose mean ratings differ;
* intervals: percentile bootstrap over *prompts* (all judgements of a drawn prompt travel together).
  Metrics whose full-set value is the mean of their per-clip values are recomputed on each resample;
  set-level metrics (FAD, KAD, PRDC, ...) are held at their full-set value, so their interval
  reflects the sampling of the judgements only;
* metrics are ranked within each level by Kendall tau (then pairwise accuracy).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.meta.columns import metric_rows
from bench.metrics.base import prompt_of

TABLE_COLUMNS = (
    "rank", "level", "metric", "embedder", "prompt_set", "reference_set", "n",
    "pairwise_accuracy", "pairwise_accuracy_low", "pairwise_accuracy_high",
    "kendall_tau", "kendall_tau_low", "kendall_tau_high",
    "spearman_rho", "spearman_rho_low", "spearman_rho_high",
)
PAIRWISE_COLUMNS = ("prompt_id", "system_a", "system_b", "preferred")
MOS_COLUMNS = ("system", "prompt_id", "score")
_TIES = {"tie", "ties", "equal", "same", "none", "0.5", "both", "neither", ""}
_ALIASES = {"prompt": "prompt_id", "prompt id": "prompt_id", "id": "prompt_id", "model": "system", "mos": "score",
            "rating": "score", "winner": "preferred", "preference": "preferred", "model_a": "system_a",
            "model_b": "system_b"}


class AgreementError(ValueError):
    """Bad judgements file or runs that do not match it; the message names the file and the fix."""


@dataclass
class Judgements:
    """``kind`` "pairwise": columns prompt_id, system_a, system_b, y (+1 a preferred, -1 b, 0 tie);
    ``kind`` "mos": columns system, prompt_id, score."""

    kind: str
    df: pd.DataFrame
    path: str = ""

    @property
    def systems(self) -> list[str]:
        if self.kind == "mos":
            return sorted(set(self.df["system"]))
        return sorted(set(self.df["system_a"]) | set(self.df["system_b"]))


# -- input -------------------------------------------------------------------------------------
def load_judgements(path: str | Path, system_map: dict[str, str] | None = None) -> Judgements:
    """Read a pairwise-preference or MOS CSV (detected from its columns); see the module docstring."""
    p = Path(path)
    if not p.is_file():
        raise AgreementError(f"judgements file {p} does not exist (pass --judgements PATH.csv)")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as exc:
        raise AgreementError(f"cannot read judgements file {p} as CSV: {exc}") from None
    df.columns = [_ALIASES.get(c.strip().lower(), c.strip().lower()) for c in df.columns]
    for c in df.columns:
        df[c] = df[c].str.strip()
    ren = system_map or {}
    if set(PAIRWISE_COLUMNS) <= set(df.columns):
        df = df[list(PAIRWISE_COLUMNS)].copy()
        y = []
        for i, r in enumerate(df.itertuples(index=False), start=2):
            pref = r.preferred.lower()
            if pref in ("a", "system_a", "1", "left") or r.preferred == r.system_a:
                y.append(1)
            elif pref in ("b", "system_b", "2", "right") or r.preferred == r.system_b:
                y.append(-1)
            elif pref in _TIES:
                y.append(0)
            else:
                raise AgreementError(
                    f"{p} line {i}: preferred={r.preferred!r} is none of a, b, tie, {r.system_a!r}, {r.system_b!r}"
                )
        df["y"] = y
        df["system_a"] = df["system_a"].map(lambda s: ren.get(s, s))
        df["system_b"] = df["system_b"].map(lambda s: ren.get(s, s))
        same = df[df["system_a"] == df["system_b"]]
        if len(same):
            raise AgreementError(f"{p}: {len(same)} row(s) compare a system with itself (e.g. {same.iloc[0].to_dict()})")
        kind = "pairwise"
    elif set(MOS_COLUMNS) <= set(df.columns):
        df = df[list(MOS_COLUMNS)].copy()
        score = pd.to_numeric(df["score"], errors="coerce")
        bad = df[~np.isfinite(score)]
        if len(bad):
            raise AgreementError(f"{p} line {int(bad.index[0]) + 2}: score {bad.iloc[0]['score']!r} is not a number")
        df["score"] = score.astype(float)
        df["system"] = df["system"].map(lambda s: ren.get(s, s))
        kind = "mos"
    else:
        raise AgreementError(
            f"{p}: columns {list(df.columns)} match neither pairwise preferences {list(PAIRWISE_COLUMNS)} "
            f"nor per-clip ratings {list(MOS_COLUMNS)} (see docs/meta_evaluation.md)"
        )
    if df.empty:
        raise AgreementError(f"{p} holds no judgements")
    return Judgements(kind, df.reset_index(drop=True), str(p))


def read_system_map(path: str | Path | None) -> dict[str, str]:
    """A CSV ``system,model`` -> ``{system: model}`` (None -> {})."""
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise AgreementError(f"system map {p} does not exist")
    with open(p, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"system", "model"} <= set(rows[0]):
        raise AgreementError(f"system map {p} needs columns system,model; found {sorted(rows[0])}")
    return {r["system"].strip(): r["model"].strip() for r in rows}


# -- pure statistics -------------------------------------------------------------------------------
def _sign(x: np.ndarray) -> np.ndarray:
    return np.sign(np.asarray(x, dtype=np.float64))


def pairwise_accuracy(human: np.ndarray, metric: np.ndarray) -> float:
    """Share of pairs ``i < j`` with ``human[i] != human[j]`` that the metric orders the same way
    (a metric tie counts 1/2); NaN without such pairs. Inputs: scores where larger = better."""
    h, m = np.asarray(human, dtype=np.float64), np.asarray(metric, dtype=np.float64)
    ok = np.isfinite(h) & np.isfinite(m)
    h, m = h[ok], m[ok]
    i, j = np.triu_indices(h.size, k=1)
    dh, dm = _sign(h[i] - h[j]), _sign(m[i] - m[j])
    keep = dh != 0
    if not keep.any():
        return math.nan
    agree = np.where(dm[keep] == 0, 0.5, (dm[keep] == dh[keep]).astype(np.float64))
    return float(agree.mean())


def _finite_pairs(x: np.ndarray, y: np.ndarray, min_n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The finite pairs of ``x``, ``y`` as float64, or None when fewer than ``min_n`` or a side is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < min_n or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return None
    return x[ok], y[ok]


def kendall_tau(x: np.ndarray, y: np.ndarray, min_n: int = 2) -> float:
    """Kendall tau-b (:func:`scipy.stats.kendalltau`); NaN when fewer than ``min_n`` finite pairs or a side is constant."""
    from scipy.stats import kendalltau

    pairs = _finite_pairs(x, y, min_n)
    return math.nan if pairs is None else float(kendalltau(*pairs).statistic)


def spearman_rho(x: np.ndarray, y: np.ndarray, min_n: int = 2) -> float:
    """Spearman rho (:func:`scipy.stats.spearmanr`, average ranks); NaN as for :func:`kendall_tau`."""
    from scipy.stats import spearmanr

    pairs = _finite_pairs(x, y, min_n)
    return math.nan if pairs is None else float(spearmanr(*pairs).statistic)


def win_rates(a: np.ndarray, b: np.ndarray, y: np.ndarray, w: np.ndarray, n_systems: int) -> np.ndarray:
    """Per system ``(wins + ties/2) / comparisons`` with judgement weights ``w``; NaN for unseen systems."""
    wins = np.zeros(n_systems)
    games = np.zeros(n_systems)
    pa = np.where(y > 0, 1.0, np.where(y < 0, 0.0, 0.5))
    np.add.at(wins, a, w * pa)
    np.add.at(wins, b, w * (1.0 - pa))
    np.add.at(games, a, w)
    np.add.at(games, b, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(games > 0, wins / games, np.nan)


def mean_scores(s: np.ndarray, score: np.ndarray, w: np.ndarray, n_systems: int) -> np.ndarray:
    """Weighted mean rating per system; NaN for systems without ratings."""
    tot = np.zeros(n_systems)
    cnt = np.zeros(n_systems)
    np.add.at(tot, s, w * score)
    np.add.at(cnt, s, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / cnt, np.nan)


def judgement_accuracy(y: np.ndarray, ma: np.ndarray, mb: np.ndarray, w: np.ndarray) -> float:
    """Weighted share of non-tied judgements whose preferred clip the metric also prefers (larger =
    better; a metric tie counts 1/2). Judgements lacking a metric value are skipped."""
    ok = (y != 0) & np.isfinite(ma) & np.isfinite(mb) & (w > 0)
    if not ok.any():
        return math.nan
    dm = _sign(ma[ok] - mb[ok])
    agree = np.where(dm == 0, 0.5, (dm == y[ok]).astype(np.float64))
    return float(np.sum(w[ok] * agree) / np.sum(w[ok]))


# -- the metric side -------------------------------------------------------------------------
@dataclass
class MetricView:
    """One metric column: oriented system values and (for per-item metrics) oriented per-prompt values.

    system: ``(S,)``; items: ``(S, P)`` or None; resampleable: the system value is the mean of
    the per-prompt values (then system values are recomputed on bootstrap resamples)."""

    metric: str
    embedder: str
    prompt_set: str
    reference_set: str
    system: np.ndarray
    items: np.ndarray | None
    resampleable: bool


def metric_views(long: pd.DataFrame, per_item: pd.DataFrame, systems: list[str], prompts: list[str]) -> list[MetricView]:
    """Every ok metric column of the runs that covers at least two of ``systems``."""
    sidx = {s: i for i, s in enumerate(systems)}
    pidx = {p: i for i, p in enumerate(prompts)}
    long = metric_rows(long)
    long = long[long["model"].isin(sidx)]
    items_by: dict[tuple, pd.DataFrame] = {}
    if len(per_item):
        pi = per_item[per_item["model"].isin(sidx)].copy()
        pi["prompt_id"] = pi["item_id"].astype(str).map(prompt_of)
        for k, g in pi.groupby(["prompt_set", "reference_set", "embedder", "metric"], sort=False, dropna=False):
            items_by[tuple("" if (isinstance(x, float) and math.isnan(x)) else x for x in k)] = g
    out = []
    for k, g in long.groupby(["prompt_set", "reference_set", "embedder", "metric"], sort=True, dropna=False):
        k = tuple("" if (isinstance(x, float) and math.isnan(x)) else x for x in k)
        sign = -1.0 if bool(g["lower_is_better"].iloc[0]) else 1.0
        sysv = np.full(len(systems), np.nan)
        for m, v in zip(g["model"], g["value"].astype(float)):
            sysv[sidx[m]] = sign * v
        if np.isfinite(sysv).sum() < 2:
            continue
        items, resampleable = None, False
        gi = items_by.get(k)
        if gi is not None and len(gi):
            gi = gi[gi["prompt_id"].isin(pidx)]
            mat = np.full((len(systems), len(prompts)), np.nan)
            agg = gi.groupby(["model", "prompt_id"])["value"].mean()
            for (m, p), v in agg.items():
                mat[sidx[m], pidx[p]] = sign * float(v)
            if np.isfinite(mat).any():
                items = mat
                full = gi.groupby("model")["value"].mean()
                resampleable = all(
                    math.isclose(sign * float(full.get(m, np.nan)), sysv[sidx[m]], rel_tol=1e-6, abs_tol=1e-9)
                    for m in g["model"] if m in full.index
                ) and set(g["model"]) <= set(full.index)
        out.append(MetricView(k[3], k[2], k[0], k[1], sysv, items, resampleable))
    return out


# -- agreement ---------------------------------------------------------------------------------
def _codes(values, index: dict[str, int]) -> np.ndarray:
    return np.array([index[v] for v in values], dtype=np.int64)


def _system_stats(j: Judgements, sys_idx: dict, w: np.ndarray, mv: MetricView, pw: np.ndarray | None) -> tuple:
    n = len(sys_idx)
    if j.kind == "mos":
        h = mean_scores(_codes(j.df["system"], sys_idx), j.df["score"].to_numpy(float), w, n)
    else:
        h = win_rates(_codes(j.df["system_a"], sys_idx), _codes(j.df["system_b"], sys_idx), j.df["y"].to_numpy(),
                      w, n)
    m = mv.system
    if pw is not None and mv.resampleable and mv.items is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            fin = np.isfinite(mv.items)
            num = np.where(fin, mv.items, 0.0) @ pw
            den = fin.astype(np.float64) @ pw
            m = np.where(den > 0, num / den, np.nan)
    ok = np.isfinite(h) & np.isfinite(m)
    return (pairwise_accuracy(h[ok], m[ok]), kendall_tau(h[ok], m[ok]), spearman_rho(h[ok], m[ok]), int(ok.sum()))


def _item_stats(j: Judgements, sys_idx: dict, p_idx: dict, w: np.ndarray, pw: np.ndarray, mv: MetricView) -> tuple:
    """Item-level (accuracy, tau, rho, n) with judgement weights ``w`` and prompt draw counts ``pw``."""
    it = mv.items
    p = _codes(j.df["prompt_id"], p_idx)
    if j.kind == "pairwise":
        a, b = _codes(j.df["system_a"], sys_idx), _codes(j.df["system_b"], sys_idx)
        y = j.df["y"].to_numpy()
        ma, mb = it[a, p], it[b, p]
        acc = judgement_accuracy(y, ma, mb, w)
        n = int(((y != 0) & np.isfinite(ma) & np.isfinite(mb) & (w > 0)).sum())
        return acc, (2 * acc - 1 if math.isfinite(acc) else math.nan), math.nan, n
    s = _codes(j.df["system"], sys_idx)
    tot = np.zeros(it.shape)
    cnt = np.zeros(it.shape)
    np.add.at(tot, (s, p), j.df["score"].to_numpy(float))
    np.add.at(cnt, (s, p), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        h = np.where(cnt > 0, tot / cnt, np.nan)  # mean rating of each (system, prompt) item
    ok = np.isfinite(h) & np.isfinite(it)
    hs, ms, accs = [], [], []
    for k in np.flatnonzero(pw > 0):
        col = ok[:, k]
        if not col.any():
            continue
        reps = int(round(pw[k]))  # a prompt drawn twice enters twice
        hs += [h[col, k]] * reps
        ms += [it[col, k]] * reps
        pa = pairwise_accuracy(h[col, k], it[col, k]) if col.sum() >= 2 else math.nan
        if math.isfinite(pa):
            accs += [pa] * reps
    if not hs:
        return math.nan, math.nan, math.nan, 0
    hv, mvv = np.concatenate(hs), np.concatenate(ms)
    acc = float(np.mean(accs)) if accs else math.nan
    return acc, kendall_tau(hv, mvv), spearman_rho(hv, mvv), int(hv.size)


def agreement_table(j: Judgements, long: pd.DataFrame, per_item: pd.DataFrame, n_bootstrap: int = 1000,
                    seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """The ranked agreement table (:data:`TABLE_COLUMNS`) of every metric in ``long`` / ``per_item``."""
    models = set(long["model"])
    systems = [s for s in j.systems if s in models]
    unknown = sorted(set(j.systems) - models)
    if len(systems) < 2:
        raise AgreementError(
            f"judgements {j.path} name systems {j.systems[:10]}, of which {systems} are models of the runs "
            f"(run models: {sorted(models)[:10]}); pass --system-map system,model to match them"
        )
    keep = (j.df["system"].isin(systems) if j.kind == "mos"
            else j.df["system_a"].isin(systems) & j.df["system_b"].isin(systems))
    jj = Judgements(j.kind, j.df[keep].reset_index(drop=True), j.path)
    prompts = sorted(set(jj.df["prompt_id"]))
    sys_idx = {s: i for i, s in enumerate(systems)}
    p_idx = {p: i for i, p in enumerate(prompts)}
    views = metric_views(long, per_item, systems, prompts)
    jp = _codes(jj.df["prompt_id"], p_idx)
    rng = np.random.default_rng([int(seed), 1517])
    draws = [np.bincount(rng.integers(0, len(prompts), len(prompts)), minlength=len(prompts)).astype(np.float64)
             for _ in range(int(n_bootstrap))]
    alpha = (1.0 - level) / 2.0
    rows = []
    for mv in views:
        levels = [("system", lambda w, pw, mv=mv: _system_stats(jj, sys_idx, w, mv, pw))]
        if mv.items is not None:
            levels.append(("item", lambda w, pw, mv=mv: _item_stats(jj, sys_idx, p_idx, w,
                                                                     np.ones(len(prompts)) if pw is None else pw, mv)))
        for name, fn in levels:
            full = fn(np.ones(len(jj.df)), None)
            if full[3] == 0:
                continue
            reps = np.array([fn(d[jp], d) for d in draws], dtype=np.float64).reshape(-1, 4)
            row = {"level": name, "metric": mv.metric, "embedder": mv.embedder, "prompt_set": mv.prompt_set,
                   "reference_set": mv.reference_set, "n": full[3]}
            for c, col in enumerate(("pairwise_accuracy", "kendall_tau", "spearman_rho")):
                row[col] = full[c]
                r = reps[:, c][np.isfinite(reps[:, c])] if len(reps) else np.array([])
                lo, hi = (np.quantile(r, [alpha, 1 - alpha]) if r.size and math.isfinite(full[c])
                          else (math.nan, math.nan))
                row[f"{col}_low"], row[f"{col}_high"] = float(lo), float(hi)
            rows.append(row)
    table = pd.DataFrame(rows, columns=[c for c in TABLE_COLUMNS if c != "rank"])
    if table.empty:
        table.insert(0, "rank", [])
        return table.reindex(columns=list(TABLE_COLUMNS))
    table["_t"] = table["kendall_tau"].fillna(-np.inf)
    table["_a"] = table["pairwise_accuracy"].fillna(-np.inf)
    table = table.sort_values(["level", "_t", "_a"], ascending=[False, False, False], kind="stable")
    table["rank"] = table.groupby("level").cumcount() + 1
    table.attrs["unknown_systems"] = unknown
    return table.drop(columns=["_t", "_a"]).reindex(columns=list(TABLE_COLUMNS)).reset_index(drop=True)


def run_agreement(judgements: str | Path, runs, out_dir: str | Path, n_bootstrap: int = 1000, seed: int = 0,
                  level: float = 0.95, system_map: str | Path | dict | None = None,
                  allow_mixed: bool = False) -> pd.DataFrame:
    """Python API of ``bench agreement``: writes ``agreement.csv``, ``agreement.html`` and
    ``agreement.json`` (inputs, counts) into ``out_dir``; returns the table."""
    from bench.cache import atomic_write_json
    from bench.meta.report import agreement_section, write_page
    from bench.report.leaderboard import write_csv
    from bench.report.merge import load_merged

    smap = system_map if isinstance(system_map, dict) else read_system_map(system_map)
    j = load_judgements(judgements, smap)
    merged = load_merged([str(r) for r in ([runs] if isinstance(runs, (str, Path)) else runs)],
                         allow_mixed=allow_mixed)
    table = agreement_table(j, merged.long, merged.per_item, n_bootstrap=n_bootstrap, seed=seed, level=level)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(table, out / "agreement.csv", TABLE_COLUMNS)
    info = {"judgements": str(judgements), "kind": j.kind, "n_judgements": len(j.df), "n_systems": len(j.systems),
            "n_prompts": int(j.df["prompt_id"].nunique()), "systems_not_in_runs": table.attrs.get("unknown_systems", []),
            "runs": sorted(merged.runs), "n_bootstrap": int(n_bootstrap), "seed": int(seed), "level_ci": level}
    atomic_write_json(out / "agreement.json", info)
    write_page(out / "agreement.html", "Metric agreement with human judgements", agreement_section(table, info))
    return table


__all__ = ["AgreementError", "Judgements", "agreement_table", "judgement_accuracy", "kendall_tau", "load_judgements",
           "mean_scores", "pairwise_accuracy", "run_agreement", "spearman_rho", "win_rates"]
