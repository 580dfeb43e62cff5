"""Peer libraries' reference functions, for cross-checks in tests and benchmarks (not part of the package).

``frechet_audio_distance`` imports ``laion_clap`` at module level, which in turn downloads
tokenizers at import time and therefore fails offline (and takes seconds online). The
Frechet-distance function itself only needs numpy and scipy, so we compile *the installed
library's own source* of that one function (located with ``importlib.util.find_spec``,
extracted with ``ast``) in a namespace holding ``np``, ``linalg`` and ``scisqrt``. The code
that runs is the peer's, byte for byte; nothing is re-implemented here.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _module_file(package: str, module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / f"{module}.py"
        if p.is_file():
            return p
    return None


def _extract_function(path: Path, name: str, class_name: str | None = None) -> Callable:
    """Compile function ``name`` (optionally a method of ``class_name``) from ``path``'s source."""
    from numpy.lib.scimath import sqrt as scisqrt
    from scipy import linalg

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    body = tree.body
    if class_name is not None:
        cls = next((n for n in body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
        if cls is None:
            raise LookupError(f"class {class_name} not found in {path}")
        body = cls.body
    fn = next((n for n in body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if fn is None:
        raise LookupError(f"function {name} not found in {path}")
    fn.decorator_list = []
    module = ast.Module(body=[fn], type_ignores=[])
    ns: dict = {"np": np, "linalg": linalg, "scisqrt": scisqrt, "log": log, "print": lambda *a, **k: None}
    exec(compile(module, str(path), "exec"), ns)
    return ns[name]


def frechet_audio_distance_fd() -> Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]:
    """``frechet_audio_distance`` 0.3.x ``FrechetAudioDistance.calculate_frechet_distance`` as a plain function.

    Raises ImportError when the package is not installed.
    """
    path = _module_file("frechet_audio_distance", "fad")
    if path is not None:
        fn = _extract_function(path, "calculate_frechet_distance", "FrechetAudioDistance")
        return lambda mu1, s1, mu2, s2: fn(None, mu1, s1, mu2, s2)
    from frechet_audio_distance.fad import FrechetAudioDistance  # not a plain source install: import it

    return lambda mu1, s1, mu2, s2: FrechetAudioDistance.calculate_frechet_distance(None, mu1, s1, mu2, s2)


def fadtk_fd(path: str | Path | None = None) -> Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]:
    """fadtk's ``calc_frechet_distance`` (eig-based, with sqrtm cross-check); ImportError if fadtk is absent.

    path: fadtk's ``fad.py`` (e.g. from an unpacked wheel); default: the installed package's.
    """
    path = Path(path) if path is not None else _module_file("fadtk", "fad")
    if path is None or not path.is_file():
        raise ImportError("fadtk is not installed")
    return _extract_function(path, "calc_frechet_distance")
