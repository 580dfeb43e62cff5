"""What exists: one index per config group, read from the option files ``configs/<group>/*.yaml``.

The option files are the registry (as lm-evaluation-harness's ``tasks/_index.py``): adding a metric
is adding its YAML, and nothing else lists it. Every file holds one top-level key (its option name)
with a ``_target_``; a key defined twice is rejected, naming the file that defined it first.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bench.errors import ConfigError


@dataclass(frozen=True)
class Option:
    """One entry of a group's index: ``key`` defined in ``path`` builds ``target``."""

    key: str
    target: str
    path: Path

    def load(self) -> type:
        """The class (or callable) ``target`` names, imported on demand."""
        module, _, name = self.target.rpartition(".")
        return getattr(importlib.import_module(module), name)


def build_index(files: Iterable[Path]) -> dict[str, Option]:
    """``{key: Option}`` over ``files`` in order; a key seen twice raises :class:`ConfigError`."""
    from omegaconf import OmegaConf

    out: dict[str, Option] = {}
    for path in files:
        node = OmegaConf.load(path)
        for key, body in node.items():
            if key in out:
                raise ConfigError(f"option {key!r} is defined twice: in {path} and first in {out[key].path}")
            target = body.get("_target_") if hasattr(body, "get") else None
            if not target:
                raise ConfigError(f"{path}: option {key!r} has no _target_")
            out[str(key)] = Option(str(key), str(target), Path(path))
    return out


@cache
def _group_index(folder: Path) -> dict[str, Option]:
    return build_index(sorted(folder.glob("*.yaml")))


def index(group: str) -> dict[str, Option]:
    """The options of a config group (``"metric"``, ``"embedder"``, ``"model"``...), by key."""
    from bench.resources import CONFIG_DIR

    return dict(_group_index(Path(CONFIG_DIR) / group))
