"""Where the files shipped inside the package live: the Hydra config groups and the prompt manifests.

Both are package data (``pip install .`` installs them next to the code), so nothing depends on a
source checkout: ``CONFIG_DIR`` = ``bench/configs``, ``DATASETS_DIR`` = ``bench/datasets``.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: the packaged Hydra config groups (``config.yaml``, ``model/``, ``prompts/``, ...)
CONFIG_DIR = PACKAGE_DIR / "configs"
#: the packaged prompt manifests (``demo/``, ``musiccaps/``, ``audiocaps/``), each with its license note
DATASETS_DIR = PACKAGE_DIR / "datasets"


def package_path(sub: str = "") -> str:
    """``${bench_pkg:datasets}`` in configs: the absolute path of ``sub`` inside the installed package."""
    return str(PACKAGE_DIR / sub) if sub else str(PACKAGE_DIR)
