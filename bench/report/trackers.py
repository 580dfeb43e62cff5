"""Optional logging of a leaderboard to Weights & Biases or MLflow (off by default).

Neither package is a dependency: each is imported only when asked for. A tracker that is not
installed is skipped with a warning (:class:`TrackerUnavailable` when ``strict``). What is logged:

* W&B: one run (``job_type="leaderboard"``) whose config holds the run ids and config hashes,
  the long and wide tables and the significance table as ``wandb.Table`` s, every ok cell in the
  summary as ``<prompt_set>/<reference_set>/<metric@embedder>/<model>``, and the written report
  files as an artifact. Honours ``WANDB_MODE=offline`` like any W&B run.
* MLflow: one run with the run ids / config hashes as tags, every ok cell as a metric (name
  sanitised to MLflow's character set), and the report files as artifacts.
"""

from __future__ import annotations

import importlib
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.report.board import Board

log = logging.getLogger(__name__)

TRACKERS: tuple[str, ...] = ("wandb", "mlflow")
_MLFLOW_BAD = re.compile(r"[^A-Za-z0-9_\-. /]+")


class TrackerUnavailable(RuntimeError):
    """The tracker's package is not installed (``pip install wandb`` / ``pip install mlflow``)."""


def metric_values(board: Board) -> dict[str, float]:
    """``{"<prompt_set>/<reference_set>/<metric@embedder>/<model>": value}`` of every ok cell."""
    out: dict[str, float] = {}
    for t in board.tables:
        for row in t.rows:
            for col in t.columns:
                c = t.cell(row, col)
                if c.ok:
                    parts = [t.prompt_set, t.reference_set or "noref", col.label, row]
                    out["/".join(parts)] = float(c.value)
    return out


def mlflow_name(name: str) -> str:
    """An MLflow-legal metric / param name (alphanumerics, ``_ - . /`` and spaces)."""
    return _MLFLOW_BAD.sub("_", name.replace("@", "_at_"))[:250]


def _import(name: str, strict: bool) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        msg = f"tracker {name!r} requested but not installed ({exc}); `pip install {name}` to enable it"
        if strict:
            raise TrackerUnavailable(msg) from exc
        log.warning(msg)
        return None


def _run_info(board: Board) -> dict[str, Any]:
    return {
        "run_ids": sorted(board.merged.runs),
        "config_hashes": {rid: r.config_hash for rid, r in board.merged.runs.items()},
        "alpha": board.alpha,
        "holm": board.holm,
        "mixed": board.merged.mixed,
    }


def log_wandb(board: Board, files: Sequence[Path] = (), project: str = "genaudio-bench", name: str | None = None,
              strict: bool = False, **init_kwargs: Any) -> bool:
    """Log ``board`` (and ``files``) as one W&B run; False when wandb is not installed."""
    wandb = _import("wandb", strict)
    if wandb is None:
        return False
    from bench.report.leaderboard import wide_frame

    run = wandb.init(project=project, name=name, job_type="leaderboard", config=_run_info(board), **init_kwargs)
    try:
        long = board.long.copy()
        run.log({
            "leaderboard_long": wandb.Table(dataframe=long.astype({"lower_is_better": str})),
            "leaderboard": wandb.Table(dataframe=wide_frame(board.long).astype(str)),
            "significance": wandb.Table(dataframe=board.pairwise.astype(str)),
        })
        for k, v in metric_values(board).items():
            run.summary[k] = v
        existing = [Path(f) for f in files if Path(f).is_file()]
        if existing:
            art = wandb.Artifact("leaderboard", type="leaderboard")
            for f in existing:
                art.add_file(str(f))
            run.log_artifact(art)
    finally:
        run.finish()
    return True


def log_mlflow(board: Board, files: Sequence[Path] = (), project: str = "genaudio-bench", name: str | None = None,
               strict: bool = False) -> bool:
    """Log ``board`` (and ``files``) as one MLflow run in experiment ``project``; False when not installed."""
    mlflow = _import("mlflow", strict)
    if mlflow is None:
        return False
    mlflow.set_experiment(project)
    info = _run_info(board)
    with mlflow.start_run(run_name=name):
        mlflow.set_tags({"genaudio_bench.run_ids": ",".join(info["run_ids"]), "genaudio_bench.mixed": str(info["mixed"])})
        mlflow.log_params({mlflow_name(f"config_hash/{k}"): v for k, v in info["config_hashes"].items()}
                          | {"alpha": info["alpha"], "holm": info["holm"]})
        metrics = {mlflow_name(k): v for k, v in metric_values(board).items() if math.isfinite(v)}
        if metrics:
            mlflow.log_metrics(metrics)
        for f in files:
            if Path(f).is_file():
                mlflow.log_artifact(str(f))
    return True


def log_board(board: Board, trackers: Sequence[str], files: Sequence[Path] = (), project: str = "genaudio-bench",
              name: str | None = None, strict: bool = False) -> list[str]:
    """Log to each tracker named in ``trackers``; returns the ones that logged."""
    done = []
    for t in trackers:
        if t not in TRACKERS:
            raise ValueError(f"unknown tracker {t!r}; choose from {TRACKERS}")
        fn = log_wandb if t == "wandb" else log_mlflow
        if fn(board, files, project=project, name=name, strict=strict):
            done.append(t)
    return done
