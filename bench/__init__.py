"""genaudio-bench: evaluation harness for generative audio (FAD, KAD, CLAP score, leaderboards)."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def run(cfg: Any, run_dir: Any = None):
    """Run an experiment from a resolved config (DictConfig or dict); returns the run directory.

    ``bench.run(bench.compose(["experiment=demo"]))`` is what the ``bench`` command does.
    """
    from bench.pipeline import run as _run

    return _run(cfg, run_dir)


def compose(overrides: list[str] | None = None, config_dir: Any = None):
    """Compose the run config from the packaged ``bench/configs/`` (plus a user ``config_dir``, the
    ``hydra.searchpath`` / ``$GENAUDIO_BENCH_CONFIGS`` / ``./bench_configs`` folders) with Hydra overrides
    (no job, no chdir)."""
    from bench.cli import compose as _compose

    return _compose(overrides, config_dir=config_dir)


def sensitivity(overrides: list[str] | None = None, run_dir: Any = None):
    """``bench sensitivity OVERRIDES``: compose ``bench/configs/sensitivity.yaml`` and run it; returns the run folder
    (``sensitivity.csv``, ``sensitivity.html``; see :mod:`bench.meta.sensitivity`)."""
    from bench.cli import compose as _compose
    from bench.meta.sensitivity import run_sensitivity

    return run_sensitivity(_compose(overrides, config_name="sensitivity"), run_dir)


def agreement(judgements: Any, runs: Any, out_dir: Any = "results/agreement", **kwargs: Any):
    """``bench agreement``: the ranked agreement table of every metric in ``runs`` with the human
    ``judgements`` CSV (see :mod:`bench.meta.agreement`); also writes ``agreement.csv`` / ``.html``."""
    from bench.meta.agreement import run_agreement

    return run_agreement(judgements, runs, out_dir, **kwargs)


__all__ = ["__version__", "agreement", "compose", "run", "sensitivity"]
