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
    "coverage",
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


#: environment variable with extra config folders (``os.pathsep``-separated), searched after the packaged ones
CONFIG_ENV = "GENAUDIO_BENCH_CONFIGS"
#: a folder of this name in the working directory is searched too, when it exists
DEFAULT_USER_DIR = "bench_configs"
#: groups whose options are listed and checked (``hydra/...`` groups are Hydra's own)
OPTION_GROUPS = (*GROUPS, "experiment")

#: user config folders of the current compose / command (set by :func:`use_config_dirs`)
_active_dirs: tuple[Path, ...] = ()


def _searchpath_dir(entry: str) -> Path | None:
    """The folder a ``hydra.searchpath`` entry names (``file://``, ``pkg://`` or a bare path)."""
    entry = str(entry)
    if entry.startswith("pkg://"):
        import importlib.util

        name = entry[len("pkg://"):].strip("/").replace("/", ".")
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        locs = list(spec.submodule_search_locations or []) if spec else []
        return Path(locs[0]) if locs else None
    if entry.startswith("file://"):
        entry = entry[len("file://"):]
    return Path(entry).expanduser()


def user_config_dirs(
    config_dir: str | Path | None = None, searchpath: list[str] | tuple[str, ...] = (), cwd: str | Path | None = None
) -> list[Path]:
    """User config folders in Hydra's search order: ``--config-dir``, ``hydra.searchpath`` entries,
    ``$GENAUDIO_BENCH_CONFIGS`` (``os.pathsep``-separated) and ``./bench_configs`` when it exists.

    Raises :class:`ConfigError` for a folder given explicitly that does not exist.
    """
    import os

    named: list[tuple[Path | None, str]] = []
    if config_dir:
        named.append((Path(config_dir).expanduser(), "--config-dir"))
    named += [(_searchpath_dir(e), f"hydra.searchpath entry {e!r}") for e in searchpath]
    named += [(Path(e).expanduser(), f"${CONFIG_ENV}") for e in os.environ.get(CONFIG_ENV, "").split(os.pathsep) if e]
    out: list[Path] = []
    for d, origin in named:
        if d is None or not d.is_dir():
            raise ConfigError(f"config folder {d or origin} ({origin}) does not exist; fix the path or remove it")
        if d.resolve() not in {o.resolve() for o in out} and d.resolve() != CONFIG_DIR:
            out.append(d)
    default = Path(cwd or Path.cwd()) / DEFAULT_USER_DIR
    if default.is_dir() and default.resolve() not in {o.resolve() for o in out}:
        out.append(default)
    return out


def use_config_dirs(dirs: list[Path] | tuple[Path, ...]) -> None:
    """Make ``dirs`` the user config folders that option listings and error messages know about."""
    global _active_dirs
    _active_dirs = tuple(Path(d) for d in dirs)


def _display(path: Path) -> str:
    try:
        return f"bench/configs/{path.resolve().relative_to(CONFIG_DIR).as_posix()}"
    except ValueError:
        return str(path)


def option_files(group: str, search_dirs: tuple[str | Path, ...] | list[str | Path] | None = None) -> dict[str, Path]:
    """``{option name: file}`` of a config group: the packaged options, then those of the user folders
    (``search_dirs``, default: the active ones). The first definition of a name wins, as in Hydra."""
    dirs = [CONFIG_DIR, *(_active_dirs if search_dirs is None else [Path(d) for d in search_dirs])]
    out: dict[str, Path] = {}
    for d in dirs:
        gdir = Path(d) / group
        if gdir.is_dir():
            for f in sorted(gdir.glob("*.yaml")):
                out.setdefault(f.stem, f)
    return out


def group_options(group: str, search_dirs: tuple[str | Path, ...] | list[str | Path] | None = None) -> list[str]:
    """Option keys available in ``bench/configs/<group>/`` and the user config folders (for error messages)."""
    return sorted(option_files(group, search_dirs))


def check_option_names(search_dirs: list[Path] | tuple[Path, ...]) -> None:
    """Reject a user option whose name repeats a packaged option (or one of an earlier user folder).

    Hydra would silently use the first one on its search path (the packaged one), so a user's
    ``model/folder.yaml`` would be ignored: one line names both files and the fix.
    """
    for group in OPTION_GROUPS:
        seen = {f.stem: f for f in sorted((CONFIG_DIR / group).glob("*.yaml"))}
        for d in search_dirs:
            for f in sorted((Path(d) / group).glob("*.yaml")):
                if f.stem in seen:
                    raise ConfigError(
                        f"option {group}/{f.stem} is defined twice: {f} and {_display(seen[f.stem])}; "
                        f"rename yours (file name and its top-level key), e.g. {group}/my_{f.stem}.yaml"
                    )
                seen[f.stem] = f


def check_group_overrides(overrides: list[str], search_dirs: tuple[str | Path, ...] | list[str | Path] | None = None) -> None:
    """Raise :class:`ConfigError` listing the available options when a Hydra override selects a
    config-group option that does not exist (``embedder=[vgish]``, ``model=[synth],[nosie]``).

    Hydra itself lists the options only for single-valued selections; call this on the command
    line overrides before composing. ``search_dirs`` are the user config folders (default: the
    active ones, see :func:`use_config_dirs`). Overrides Hydra cannot parse are left for Hydra to report.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception:
        return
    for o in parsed:
        group = o.key_or_group
        if o.package or o.is_delete() or group not in OPTION_GROUPS:
            continue
        values = list(o.sweep_iterator()) if o.is_sweep_override() else [o.value()]
        names: list[str] = []
        for v in values:
            names += [str(x) for x in v] if isinstance(v, list) else ([] if v is None else [str(v)])
        available = set(group_options(group, search_dirs))
        unknown = [n for n in names if n not in available and n != "null"]
        if unknown:
            hints = "".join(_did_you_mean(n, available) for n in unknown)
            users = _active_dirs if search_dirs is None else search_dirs
            where = ", ".join([f"bench/configs/{group}/", *(f"{d}/{group}/" for d in users)])
            raise ConfigError(
                f"unknown {group} option(s) {unknown}{hints}; available {group} options: {sorted(available)} "
                f"(files in {where})"
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
    if cfg.get("coverage", "intersect") not in ("intersect", "each", "error"):
        raise ConfigError(f"coverage must be 'intersect', 'each' or 'error', got {cfg.coverage!r}")
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
                    f"its settings under its own key (see bench/configs/{g}/ for examples; options: {group_options(g)})"
                )
            _check_node(g, str(k), v)


def _where(group: str, key: str) -> str:
    f = option_files(group).get(key)
    return _display(f) if f is not None else f"the {group}.{key} config"


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


def never_computable(cfg: DictConfig) -> dict[tuple[str, str], str]:
    """``{(embedder key, metric key): reason}`` for combinations that can never give a value, read from
    the classes (no weights loaded): a text metric (CLAP score) with an embedder without a text tower,
    a class-probability metric (KL, Inception Score) with an embedder without a classifier head.

    Raises :class:`ConfigError` when a selected metric can be computed with none of the selected embedders.
    """
    from bench.embedders.base import Embedder

    caps: dict[str, tuple[bool, bool]] = {}
    for ek, node in (cfg.get("embedder") or {}).items():
        cls = locate_target(str(node.get("_target_", "")))
        if inspect.isclass(cls) and issubclass(cls, Embedder):
            caps[str(ek)] = (cls.embed_text is not Embedder.embed_text,
                             bool(cls.gives_probs or cls.class_names is not None))
    out: dict[tuple[str, str], str] = {}
    for mk, node in (cfg.get("metric") or {}).items():
        cls = locate_target(str(node.get("_target_", "")))
        needs_text, needs_probs = bool(getattr(cls, "needs_text", False)), bool(getattr(cls, "needs_probs", False))
        for ek, (text, probs) in caps.items():
            if needs_text and not text:
                out[(ek, str(mk))] = f"{ek} has no text tower"
            elif needs_probs and not probs:
                out[(ek, str(mk))] = f"{ek} gives no class probabilities"
        embedders = list(cfg.get("embedder") or {})
        if embedders and all((str(ek), str(mk)) in out for ek in embedders):
            need = "a joint text-audio embedder (e.g. clap, clap_music)" if needs_text else \
                "a classifier embedder (musicnn, musicnn_mtt, pann, passt)"
            raise ConfigError(f"metric {mk} cannot be computed with embedder={embedders}: it needs {need}; "
                              f"add one to embedder=[...] or drop {mk} from metric=[...]")
    return out


def _instantiate(group: str, key: str, node: DictConfig) -> Any:
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, UNAVAILABLE_ERRORS):
            raise cause from exc
        if isinstance(cause, TypeError):
            raise ConfigError(f"{group}.{key}: {cause} (check the keys in {_where(group, key)})") from exc
        if isinstance(cause, (ValueError, OSError)):  # bad values, paths, unreadable or malformed files
            raise ConfigError(f"{group}.{key} ({_where(group, key)}): {cause}") from exc
        raise


instantiate_option = _instantiate
