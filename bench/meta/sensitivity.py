"""``bench sensitivity``: does each metric x embedder notice controlled degradations?

Design (one ordinary pipeline run, so embedders, the embedding cache, metric objects, bootstrap
and error handling are the pipeline's own):

* source clips: the items of one configured reference set (``sensitivity.source``);
* reference: a seeded half of them (``sensitivity.reference: split``), the other half being the
  clips that are degraded, so severity 0 (the clean half) is a fair baseline; or another
  configured reference set, and then every source clip is degraded;
* "models": one :class:`bench.models.degraded.DegradedClips` per degradation x level plus
  ``clean`` (severity 0), all over the same prompt set (one prompt per degraded clip, paired with
  its clean version, so paired metrics such as KL work too). Prompt ids are shared, hence
  bootstrap replicate ``b`` uses the same clips in every model: differences are paired.

Analysis (:func:`analyse`), per degradation x metric x embedder, with the value ``v_s`` at
severity ``s = 0..K`` (0 = clean) oriented so that larger = worse (``-v`` when higher is better):

* ``rho``: Spearman rank correlation of ``(s, v_s)`` over the K+1 points (1 = monotonically worse);
* ``z``: effect size at the top severity, ``(v_K - v_0) / sd_b(v_0^b)``: the change in units of the
  metric's own bootstrap noise on the clean set (the standard deviation of its prompt-resampled
  replicates; NaN when the metric gives no replicates). ``z_s`` likewise for every severity
  (``sensitivity_levels.csv``). A metric that cannot see a change gets ``|z|`` near 0 however
  small its noise;
* ``verdict``: ``sensitive`` (z >= z_threshold and rho >= rho_threshold), ``sensitive,
  non-monotonic`` (z >= z_threshold, rho lower), ``wrong direction`` (z <= -z_threshold: the metric
  prefers the degraded audio), ``blind`` (|z| < z_threshold), ``no bootstrap`` (no replicates).

Writes into the run folder: the pipeline's files, ``sensitivity_design.json``,
``sensitivity.csv``, ``sensitivity_levels.csv`` and ``sensitivity.html``.
"""

from __future__ import annotations

import csv
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from bench.cache import atomic_write_json
from bench.errors import ConfigError
from bench.meta import degradations as D
from bench.meta.columns import metric_rows

log = logging.getLogger(__name__)

CLEAN = "clean"
PROMPT_SET = "clips"
REF_KEY = "split_reference"
SUMMARY_COLUMNS = (
    "degradation", "embedder", "metric", "lower_is_better", "n_levels", "clean_value", "top_value",
    "top_level", "delta", "sd_boot", "z", "rho", "first_detected_level", "verdict",
)
LEVEL_COLUMNS = ("degradation", "severity", "level", "model", "embedder", "metric", "value", "delta", "z")
DEFAULTS: dict[str, Any] = {
    "source": None, "reference": "split", "max_clips": None, "duration_s": 10.0, "sample_rate": 48000,
    "keep_audio": True, "z_threshold": 2.0, "rho_threshold": 0.8, "degradations": dict(D.LADDERS), "only": None,
}


def model_key(degradation: str, severity: int) -> str:
    return CLEAN if severity == 0 else f"{degradation}_{severity}"


def _settings(node: DictConfig | dict | None) -> dict[str, Any]:
    s = dict(DEFAULTS)
    given = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node or {})
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown sensitivity key(s) {unknown}; valid keys: {sorted(DEFAULTS)}")
    s.update(given)
    degs = s["degradations"] or {}
    for name, levels in degs.items():
        if name not in D.DEGRADATIONS:
            raise ConfigError(
                f"sensitivity.degradations: unknown degradation {name!r}; choose from {sorted(D.DEGRADATIONS)}"
            )
        if not isinstance(levels, (list, tuple)) or not levels:
            raise ConfigError(f"sensitivity.degradations.{name} must be a non-empty list of levels, got {levels!r}")
    if s["only"] is not None:
        only = [s["only"]] if isinstance(s["only"], str) else list(s["only"])
        missing = [d for d in only if d not in degs]
        if missing:
            raise ConfigError(f"sensitivity.only names {missing}, which sensitivity.degradations does not define "
                              f"(defined: {sorted(degs)})")
        degs = {k: degs[k] for k in only}
        s["degradations"] = degs
    if not degs:
        raise ConfigError("sensitivity.degradations is empty: name at least one degradation with its levels")
    return s


def design(degs: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Rows ``{model, degradation, severity, level}``; severity 0 (``clean``) is listed once per degradation."""
    rows = []
    for name, levels in degs.items():
        rows.append({"model": CLEAN, "degradation": name, "severity": 0, "level": None})
        for i, lv in enumerate(levels, start=1):
            rows.append({"model": model_key(name, i), "degradation": name, "severity": i, "level": float(lv)})
    return rows


def _split(ids: list[str], seed: int) -> tuple[list[str], list[str]]:
    """Seeded halves ``(reference, degraded)`` of sorted ids; the degraded half gets the extra clip."""
    order = np.random.default_rng([int(seed), 15]).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    k = len(ids) // 2
    return sorted(shuffled[:k]), sorted(shuffled[k:])


def build_run_config(cfg: DictConfig, run_dir: Path) -> tuple[DictConfig, dict[str, Any]]:
    """The pipeline config of a sensitivity run (writes the clip lists into ``run_dir``)."""
    from bench.config import instantiate_option, locate_target

    s = _settings(cfg.get("sensitivity"))
    base = OmegaConf.masked_copy(cfg, [k for k in cfg if k not in ("sensitivity", "hydra")])
    if base.get("prepare_demo"):
        from bench.demo import prepare

        prepare()
    refs_cfg = base.get("reference") or {}
    if not refs_cfg:
        raise ConfigError("bench sensitivity needs a reference set of real clips to degrade (e.g. reference=[demo])")
    src_key = s["source"] or next(iter(refs_cfg))
    if src_key not in refs_cfg:
        raise ConfigError(f"sensitivity.source={src_key!r} is not a configured reference set; have {list(refs_cfg)}")
    src = instantiate_option("reference", src_key, refs_cfg[src_key])
    if src.is_stats:
        raise ConfigError(f"sensitivity.source={src_key!r} holds statistics only; degradations need audio clips")
    ids = sorted(i for i in src.items if i not in set(src.missing) and Path(src.items[i]).is_file())
    seed = int(base.get("seed", 0))
    if s["max_clips"] is not None and len(ids) > int(s["max_clips"]):
        pick = np.random.default_rng([seed, 16]).choice(len(ids), int(s["max_clips"]), replace=False)
        ids = sorted(ids[i] for i in pick)
    run_dir.mkdir(parents=True, exist_ok=True)
    if s["reference"] == "split":
        if len(ids) < 4:
            raise ConfigError(f"reference set {src_key!r} has {len(ids)} usable clips; the split needs at least 4")
        ref_ids, deg_ids = _split(ids, seed)
        manifest = run_dir / "sensitivity_reference.csv"
        with open(manifest, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["id", "path"])
            w.writerows([[i, str(Path(src.items[i]).resolve())] for i in ref_ids])
        ref_node = {REF_KEY: {"_target_": "bench.references.ReferenceSet.from_manifest", "name": REF_KEY,
                              "path": str(manifest), "license": src.license,
                              "provenance": f"half of reference set {src_key} (seed {seed})"}}
    else:
        if s["reference"] not in refs_cfg or s["reference"] == src_key:
            raise ConfigError(
                f"sensitivity.reference must be 'split' or another configured reference set; got {s['reference']!r} "
                f"(configured: {list(refs_cfg)}, source: {src_key!r})"
            )
        deg_ids = ids
        ref_node = {s["reference"]: OmegaConf.to_container(refs_cfg[s["reference"]], resolve=True)}
    prompts_csv = run_dir / "sensitivity_clips.csv"
    with open(prompts_csv, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "reference"])
        w.writerows([[i, "", str(Path(src.items[i]).resolve())] for i in deg_ids])
    rows = design({k: list(v) for k, v in s["degradations"].items()})
    metrics, skipped = {}, []
    for k, node in (base.get("metric") or {}).items():  # text-audio metrics have no prompt text to compare with
        if getattr(locate_target(str(node.get("_target_", ""))), "needs_text", False):
            skipped.append(str(k))
            log.warning("sensitivity: metric %s needs prompt texts, which degraded clips do not have; skipped", k)
        else:
            metrics[str(k)] = OmegaConf.to_container(node, resolve=True)
    models: dict[str, Any] = {}
    for r in rows:
        if r["model"] in models:
            continue
        models[r["model"]] = {
            "_target_": "bench.models.degraded.DegradedClips",
            "degradation": "none" if r["severity"] == 0 else r["degradation"],
            "level": r["level"],
            "sample_rate": int(s["sample_rate"]),
            "duration_s": float(s["duration_s"]),
            "seed": seed,
        }
    out = OmegaConf.to_container(base, resolve=True)
    out.update({
        "model": models,
        "prompts": {PROMPT_SET: {"_target_": "bench.prompts.PromptSet.from_csv", "name": PROMPT_SET,
                                 "path": str(prompts_csv), "reference_column": "reference",
                                 "license": src.license, "source": f"clips of reference set {src_key}"}},
        "reference": ref_node,
        "metric": metrics,
        "stages": ["gather", "embed", "score"],
        "prepare_demo": False,
    })
    info = {"settings": s, "source": src_key, "reference": next(iter(ref_node)), "n_reference": None,
            "n_degraded": len(deg_ids), "skipped_metrics": skipped, "design": rows}
    if s["reference"] == "split":
        info["n_reference"] = len(ids) - len(deg_ids)
    return OmegaConf.create(out), info


def run_sensitivity(cfg: DictConfig | dict, run_dir: str | Path | None = None) -> Path:
    """Python API of ``bench sensitivity``: run the degraded sets through the pipeline, then :func:`analyse`.

    ``cfg``: a config composed with ``config_name="sensitivity"`` (see ``bench/configs/sensitivity.yaml``).
    Returns the run folder.
    """
    from bench.pipeline import run, run_dir_for

    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(cfg)
    rdir = Path(run_dir) if run_dir else run_dir_for(OmegaConf.masked_copy(cfg, ["run_name", "output_dir", "shard"]))
    pcfg, info = build_run_config(cfg, rdir)
    atomic_write_json(rdir / "sensitivity_design.json", info)
    run(pcfg, run_dir=rdir)
    analyse(rdir)
    if not info["settings"]["keep_audio"]:
        shutil.rmtree(rdir / "audio", ignore_errors=True)
    return rdir


# -- analysis --------------------------------------------------------------------------------
def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rho of severity vs value (average ranks for ties); NaN with < 3 points or a constant side."""
    from bench.meta.agreement import spearman_rho

    return spearman_rho(x, y, min_n=3)


def effect_size(delta: float, replicates: np.ndarray) -> tuple[float, float]:
    """``(delta / sd, sd)`` with ``sd`` the standard deviation (ddof=1) of the clean set's bootstrap replicates."""
    r = np.asarray(replicates, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size < 2:
        return math.nan, math.nan
    sd = float(np.std(r, ddof=1))
    if sd == 0.0:
        return (math.inf if delta > 0 else -math.inf if delta < 0 else 0.0), 0.0
    return float(delta / sd), sd


def verdict(z: float, rho: float, z_threshold: float = 2.0, rho_threshold: float = 0.8) -> str:
    """See the module docstring."""
    if not math.isfinite(z) and not math.isinf(z):
        return "no bootstrap"
    if z >= z_threshold:
        return "sensitive" if (math.isfinite(rho) and rho >= rho_threshold) else "sensitive, non-monotonic"
    if z <= -z_threshold:
        return "wrong direction"
    return "blind"


def analyse(run_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a finished sensitivity run; write ``sensitivity.csv``, ``sensitivity_levels.csv`` and
    ``sensitivity.html``. Returns ``(summary, levels)``."""
    import json

    from bench.report.leaderboard import read_long, write_csv

    rdir = Path(run_dir)
    info = json.loads((rdir / "sensitivity_design.json").read_text())
    s = info["settings"]
    long = read_long(rdir / "leaderboard_long.csv")
    long = metric_rows(long)
    reps_path = rdir / "replicates.csv"
    reps = pd.read_csv(reps_path) if reps_path.is_file() else pd.DataFrame(columns=["model", "embedder", "metric",
                                                                                      "replicate", "value"])
    rep = {k: g.set_index("replicate")["value"].astype(float) for k, g in reps.groupby(["model", "embedder", "metric"])}
    des = pd.DataFrame(info["design"])
    summary, levels = [], []
    for (emb, met), cell in long.groupby(["embedder", "metric"], sort=True):
        val = dict(zip(cell["model"], cell["value"].astype(float)))
        lower = bool(cell["lower_is_better"].iloc[0])
        sign = 1.0 if lower else -1.0
        if CLEAN not in val:
            continue
        for deg, drows in des.groupby("degradation", sort=False):
            drows = drows.sort_values("severity")
            sev, worse, zs, first = [], [], [], None
            top: dict[str, Any] = {}
            for r in drows.itertuples(index=False):
                if r.model not in val:
                    continue
                d = sign * (val[r.model] - val[CLEAN])
                clean_reps = rep.get((CLEAN, emb, met))
                if clean_reps is not None and r.severity > 0:
                    z, sd = effect_size(d, clean_reps.to_numpy())
                else:
                    z, sd = (math.nan, math.nan) if r.severity > 0 else (0.0, math.nan)
                sev.append(r.severity)
                worse.append(sign * val[r.model])
                zs.append(z)
                if r.severity > 0 and first is None and z >= float(s["z_threshold"]):
                    first = r.level
                levels.append({"degradation": deg, "severity": int(r.severity), "level": r.level, "model": r.model,
                               "embedder": emb, "metric": met, "value": val[r.model], "delta": d, "z": z})
                top = {"top_value": val[r.model], "top_level": r.level, "delta": d, "sd_boot": sd, "z": z}
            if len(sev) < 2:
                continue
            rho = spearman(np.array(sev), np.array(worse))
            summary.append({
                "degradation": deg, "embedder": emb, "metric": met, "lower_is_better": lower, "n_levels": len(sev) - 1,
                "clean_value": val[CLEAN], **top, "rho": rho, "first_detected_level": first,
                "verdict": verdict(top["z"], rho, float(s["z_threshold"]), float(s["rho_threshold"])),
            })
    summary_df = pd.DataFrame(summary, columns=list(SUMMARY_COLUMNS))
    levels_df = pd.DataFrame(levels, columns=list(LEVEL_COLUMNS))
    write_csv(summary_df, rdir / "sensitivity.csv", SUMMARY_COLUMNS)
    write_csv(levels_df, rdir / "sensitivity_levels.csv", LEVEL_COLUMNS)
    from bench.meta.report import sensitivity_section, write_page

    write_page(rdir / "sensitivity.html", "Metric sensitivity", sensitivity_section(summary_df, levels_df, info))
    return summary_df, levels_df
