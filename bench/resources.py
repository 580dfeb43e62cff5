"""Where the files shipped inside the package live: the Hydra config groups and the prompt manifests.

Both are package data (``pip install .`` installs them next to the code), so nothing depends on a
source checkout: ``CONFIG_DIR`` = ``bench/configs``, ``DATASETS_DIR`` = ``bench/datasets``.
:func:`installed_package_dirs` finds the data other installed packages ship (weights, statistics, tables).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: the packaged Hydra config groups (``config.yaml``, ``model/``, ``prompts/``, ...)
CONFIG_DIR = PACKAGE_DIR / "configs"
#: the packaged prompt manifests (``demo/``, ``musiccaps/``, ``audiocaps/``), each with its license note
DATASETS_DIR = PACKAGE_DIR / "datasets"


def package_path(sub: str = "") -> str:
    """``${bench_pkg:datasets}`` in configs: the absolute path of ``sub`` inside the installed package."""
    return str(PACKAGE_DIR / sub) if sub else str(PACKAGE_DIR)


def installed_package_dirs(package: str) -> list[Path]:
    """Folders of the installed top-level ``package``, found without importing (running) it; ``[]`` when
    it is not installed."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(loc) for loc in spec.submodule_search_locations]
