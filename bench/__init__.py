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


def compose(overrides: list[str] | None = None):
    """Compose the run config from the packaged ``bench/configs/`` with Hydra overrides (no job, no chdir)."""
    from bench.cli import compose as _compose

    return _compose(overrides)


__all__ = ["__version__", "compose", "run"]
