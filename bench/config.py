"""Run-config validation: fail fast, before any work, with the valid choices listed.

Checks the top-level keys, stages, sharding, every group option's ``_target_`` and keyword
arguments (against the target's signature) and the ``audio:`` block of embedders; turns Hydra's
instantiation errors into :class:`ConfigError` messages that name the option file.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bench.audio import AudioSpec
from bench.checkpoints import CheckpointUnavailable
from bench.embedders.base import EmbedderUnavailable
from bench.errors import ConfigError
from bench.identity import init_params
from bench.models.base import ModelUnavailable
from bench.resources import CONFIG_DIR

GROUPS = ("model", "prompts", "reference", "embedder", "metric")
STAGES = ("gather", "embed", "score", "report")
TOP_LEVEL_KEYS = {
    *GROUPS,
    "experiment",
    "run_name",
    "output_dir",
    "cache_dir",
    "datasets_dir",
    "device",
    "batch_size",
    "seed",
    "on_error",
    "progress",
    "stages",
    "shard",
    "report_formats",
    "prepare_demo",
    "hydra",
}
UNAVAILABLE_ERRORS = (EmbedderUnavailable, CheckpointUnavailable, ModelUnavailable, ImportError)


#: Hydra's reserved keys inside an instantiable node
_HYDRA_NODE_KEYS = {"_target_", "_recursive_", "_convert_", "_partial_", "_args_"}


def _did_you_mean(word: str, choices: list[str] | set[str]) -> str:
    close = difflib.get_close_matches(str(word), sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def group_options(group: str) -> list[str]:
    """Option keys available in the packaged ``bench/configs/<group>/`` (for error messages)."""
    d = CONFIG_DIR / group
    return sorted(f.stem for f in d.glob("*.yaml")) if d.is_dir() else []


def check_group_overrides(overrides: list[str], search_dirs: tuple[str | Path, ...] = ()) -> None:
    """Raise :class:`ConfigError` listing the available options when a Hydra override selects a
    config-group option that does not exist (``embedder=[vgish]``, ``model=[synth],[nosie]``).

    Hydra itself lists the options only for single-valued selections; call this on the command
    line overrides before composing. ``search_dirs`` are extra config dirs (``--config-dir``).
    Overrides Hydra cannot parse are left for Hydra to report.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception:
        return
    for o in parsed:
        group = o.key_or_group
        if o.package or o.is_delete() or group not in (*GROUPS, "experiment"):
            continue
        values = list(o.sweep_iterator()) if o.is_sweep_override() else [o.value()]
        names: list[str] = []
        for v in values:
            names += [str(x) for x in v] if isinstance(v, list) else ([] if v is None else [str(v)])
        available = set(group_options(group))
        for d in search_dirs:
            available |= {f.stem for f in (Path(d) / group).glob("*.yaml")}
        unknown = [n for n in names if n not in available and n != "null"]
        if unknown:
            hints = "".join(_did_you_mean(n, available) for n in unknown)
            raise ConfigError(
                f"unknown {group} option(s) {unknown}{hints}; available {group} options: {sorted(available)} "
                f"(files in bench/configs/{group}/)"
            )


def validate(cfg: DictConfig) -> None:
    """Fail fast (before any heavy work) on a bad config, with the valid choices in the message.

    Checks: unknown top-level keys, missing mandatory values (``???``), ``on_error``, ``stages``,
    ``shard``, the shape of every group node, that every ``_target_`` can be located, and that
    every key of an option is a parameter its ``_target_`` accepts (``audio`` sub-keys against
    :class:`bench.audio.AudioSpec`).
    """
    unknown = set(cfg.keys()) - TOP_LEVEL_KEYS
    if unknown:
        valid = sorted(TOP_LEVEL_KEYS - {"hydra"})
        hints = "".join(_did_you_mean(k, valid) for k in sorted(unknown))
        raise ConfigError(f"unknown config key(s) {sorted(unknown)}{hints}; valid keys: {valid}")
    from omegaconf.errors import OmegaConfBaseException

    body = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    try:
        missing = sorted(str(k) for k in OmegaConf.missing_keys(body))
    except OmegaConfBaseException:
        missing = []
    if missing:
        raise ConfigError(f"mandatory value(s) not set: {missing} (e.g. bench {missing[0]}=...)")
    try:  # every interpolation must resolve (e.g. one pointing at an unset ??? value)
        OmegaConf.to_container(body, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"config does not resolve: {exc}".replace("\n", " ")) from None
    if cfg.get("on_error", "skip") not in ("skip", "fail"):
        raise ConfigError(f"on_error must be 'skip' or 'fail', got {cfg.on_error!r}")
    stages = cfg.get("stages", STAGES)
    if isinstance(stages, str) or not all(isinstance(x, str) for x in stages):
        raise ConfigError(f"stages must be a list such as [gather,embed,score,report], got {stages!r}")
    bad = [x for x in stages if x not in STAGES]
    if bad:
        raise ConfigError(f"unknown stage(s) {bad}; choose from {list(STAGES)}")
    shard = cfg.get("shard") or {"index": 0, "count": 1}
    extra = set(shard.keys()) - {"index", "count"}
    if extra:
        raise ConfigError(f"unknown shard key(s) {sorted(extra)}; shard has 'index' and 'count'")
    try:
        index, count = int(shard.get("index", 0)), int(shard.get("count", 1))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"shard.index and shard.count must be integers, got {dict(shard)}") from exc
    if count < 1 or not (0 <= index < count):
        raise ConfigError(f"shard.index must be in [0, shard.count), got {index} of {count}")
    for g in GROUPS:
        node = cfg.get(g)
        if node is None:
            continue
        if not isinstance(node, DictConfig):
            raise ConfigError(f"{g} must be a mapping of <key>: {{_target_: ...}}, got {type(node).__name__}")
        for k, v in node.items():
            if not isinstance(v, DictConfig) or "_target_" not in v:
                raise ConfigError(
                    f"{g}.{k} has no _target_; config groups are selected as {g}=[a,b] and each option file nests "
                    f"its settings under its own key (see bench/configs/{g}/; options: {group_options(g)})"
                )
            _check_node(g, str(k), v)


def _where(group: str, key: str) -> str:
    f = CONFIG_DIR / group / f"{key}.yaml"
    return f"bench/configs/{group}/{key}.yaml" if f.is_file() else f"the {group}.{key} config"


def locate_target(target: str) -> Any | None:
    """Import the object a ``_target_`` names. None when a *dependency* of its module is missing
    (reported as unavailable later); :class:`ConfigError` when the target itself does not exist."""
    parts = str(target).split(".")
    for i in range(len(parts) - 1, 0, -1):
        mod_name = ".".join(parts[:i])
        try:
            obj = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name and (mod_name == exc.name or mod_name.startswith(exc.name + ".")):
                continue  # this prefix is not a module: try a shorter one (Class.method targets)
            return None  # the module exists but needs a package that is not installed
        except ImportError:
            return None
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                public = [a for a in dir(obj) if not a.startswith("_")]
                raise ConfigError(
                    f"_target_ {target!r}: {getattr(obj, '__name__', obj)!s} has no attribute {attr!r}"
                    f"{_did_you_mean(attr, public)}"
                )
            obj = getattr(obj, attr)
        return obj
    raise ConfigError(f"_target_ {target!r} cannot be imported (no module {parts[0]!r})")


def accepted_params(obj: Any) -> tuple[set[str], bool]:
    """Keyword names a class / callable accepts, and whether it also takes arbitrary ``**kwargs``.

    For classes the ``__init__`` chain is followed through ``**kw`` passed to ``super()``.
    """
    if inspect.isclass(obj):
        names, open_ = init_params(obj)
        return set(names), open_
    names: set[str] = set()
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return names, True
    params = sig.parameters.values()
    names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind == p.VAR_KEYWORD for p in params)


def _check_node(group: str, key: str, node: DictConfig) -> None:
    where = _where(group, key)
    target = node.get("_target_")
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{group}.{key}: _target_ must be a dotted import path ({where})")
    try:
        obj = locate_target(target)
    except ConfigError as exc:
        raise ConfigError(f"{group}.{key} ({where}): {exc}; available {group} options: {group_options(group)}") from None
    if obj is None:
        return
    names, open_kw = accepted_params(obj)
    unknown = sorted(str(k) for k in node.keys() if k not in _HYDRA_NODE_KEYS and k not in names)
    if unknown and not open_kw:
        hints = "".join(_did_you_mean(k, names) for k in unknown)
        raise ConfigError(
            f"{group}.{key}: unknown parameter(s) {unknown}{hints} for {target} in {where}; "
            f"valid parameters: {sorted(names)}"
        )
    if "audio" in names and isinstance(node.get("audio"), DictConfig):
        try:
            AudioSpec.from_dict({**AudioSpec().to_dict(), **OmegaConf.to_container(node.audio, resolve=True)})
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{group}.{key}.audio in {where}: {exc}") from None


def _instantiate(group: str, key: str, node: DictConfig) -> Any:
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, UNAVAILABLE_ERRORS):
            raise cause from exc
        if isinstance(cause, (TypeError, ValueError)):
            raise ConfigError(f"{group}.{key}: {cause} (check the keys in {_where(group, key)})") from exc
        raise


instantiate_option = _instantiate
