"""The ``bench`` console script: a Hydra app around :func:`bench.pipeline.run`.

    bench                                   # the offline demo experiment
    bench experiment=musiccaps_folder       # a named experiment (bench/configs/experiment/)
    bench model=[oracle,noise] embedder=[musicnn] metric=[fad,kad]
    bench model=[folders] model.folders.path=/data/outputs prompts=[files] reference=[folder] ...
    bench -m model=[synth],[noise]          # Hydra multirun sweep
    bench leaderboard results/a results/b   # merge runs into one board (bench.report.cli)
    bench verify                            # reproduce fadtk's published FAD numbers (bench.verify)
    bench sensitivity embedder=[logmel]     # metric meta-evaluation (bench.meta.cli)
    bench agreement -j prefs.csv results/a  # agreement with human judgements (bench.meta.cli)

User config folders (same layout as ``bench/configs``) come from ``--config-dir DIR``,
``hydra.searchpath=[file:///DIR]``, ``$GENAUDIO_BENCH_CONFIGS`` and ``./bench_configs``.

User-input errors (bad option, key, path, prompt file) print one or two lines and exit with
status 2; ``--debug`` (or ``HYDRA_FULL_ERROR=1``) shows the traceback instead.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from omegaconf import OmegaConf

from bench.checkpoints import bench_home
from bench.errors import ConfigError
from bench.resources import CONFIG_DIR, package_path

#: Hydra flags that take a value (``--flag VALUE``); everything else positional is an override
_VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--cfg", "-c", "--package",
                "-p", "--experimental-rerun", "--shell-completion", "-sc"}
EXIT_USER_ERROR = 2


def register_resolvers() -> None:
    """``${bench_home:sub}`` -> $GENAUDIO_BENCH_HOME/sub; ``${bench_pkg:sub}`` -> sub inside the installed package."""
    if not OmegaConf.has_resolver("bench_home"):
        OmegaConf.register_new_resolver("bench_home", lambda sub="": str(bench_home() / sub) if sub else str(bench_home()))
    if not OmegaConf.has_resolver("bench_pkg"):
        OmegaConf.register_new_resolver("bench_pkg", package_path)


def _searchpath_entries(overrides: list[str]) -> tuple[list[str], list[str]]:
    """``(entries of a hydra.searchpath=[...] override, the other overrides)``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    entries, rest = [], []
    for o in overrides:
        if o.split("=", 1)[0].lstrip("+~") == "hydra.searchpath":
            v = OverridesParser.create().parse_overrides([o])[0].value()
            entries += [str(x) for x in v] if isinstance(v, list) else ([str(v)] if v else [])
        else:
            rest.append(o)
    return entries, rest


def prepare_overrides(overrides: list[str], config_dir: str | Path | None = None) -> tuple[list[str], list[Path]]:
    """Check the overrides against the packaged and user options.

    Returns ``(overrides without hydra.searchpath, user config folders)``: ``config_dir``, the
    ``hydra.searchpath`` entries, ``$GENAUDIO_BENCH_CONFIGS`` and ``./bench_configs``, in search order
    (pass them to Hydra with :func:`with_searchpath`). Raises :class:`ConfigError` for an override
    Hydra cannot parse, a config folder that does not exist, an option name a user folder repeats,
    or an option that exists nowhere.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    from bench.config import check_group_overrides, check_option_names, use_config_dirs, user_config_dirs

    for o in overrides:
        try:
            OverridesParser.create().parse_overrides([o])
        except OverrideParseException as exc:
            raise ConfigError(_parse_error_message(o, exc)) from None
    searchpath, rest = _searchpath_entries(list(overrides))
    dirs = user_config_dirs(config_dir, searchpath)
    check_option_names(dirs)
    use_config_dirs(dirs)
    check_group_overrides(rest)  # Hydra lists the options only for single selections
    return rest, dirs


def with_searchpath(overrides: list[str], dirs: list[Path]) -> list[str]:
    """``overrides`` plus one ``hydra.searchpath`` override naming ``dirs`` (absolute ``file://`` entries)."""
    if not dirs:
        return list(overrides)
    quoted = ",".join("'file://" + str(Path(d).resolve()).replace("\\", "\\\\").replace("'", "\\'") + "'" for d in dirs)
    return [*overrides, f"hydra.searchpath=[{quoted}]"]


def _parse_error_message(override: str, exc: Exception) -> str:
    reason = str(exc).splitlines()[0]
    msg = f"cannot parse the override {override!r}: {reason}"
    if "{" in override or "}" in override:
        key, _, value = override.partition("=")
        plain = re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", r"%\1", value)
        msg += (f". Braces are Hydra syntax: write {key}={plain} (%name is a pattern field), "
                f"or quote the value: '{key}=\"{value}\"'")
    return msg


def compose(overrides: list[str] | None = None, config_name: str = "config", config_dir: str | Path | None = None):
    """The resolved run config without starting a Hydra job (for the Python API and tests).

    ``config_dir``: a user config folder (as ``bench --config-dir``); ``hydra.searchpath=[...]``
    overrides, ``$GENAUDIO_BENCH_CONFIGS`` and ``./bench_configs`` are searched as on the command line.
    """
    from hydra import compose as h_compose
    from hydra import initialize_config_dir

    register_resolvers()
    rest, dirs = prepare_overrides(list(overrides or []), config_dir)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return h_compose(config_name=config_name, overrides=with_searchpath(rest, dirs))


def _split_argv(argv: list[str]) -> tuple[str | None, list[str], bool]:
    """``(--config-dir value, overrides, multirun)`` of a Hydra command line."""
    config_dir, overrides, multirun, i = None, [], False, 0
    while i < len(argv):
        a = argv[i]
        if a in _VALUE_FLAGS:
            if a in ("--config-dir", "-cd") and i + 1 < len(argv):
                config_dir = argv[i + 1]
            i += 2
            continue
        if a.startswith("--config-dir="):
            config_dir = a.split("=", 1)[1]
        elif a in ("-m", "--multirun"):
            multirun = True
        elif not a.startswith("-"):
            overrides.append(a)
        i += 1
    return config_dir, overrides, multirun


def _fail(message: str) -> None:
    print(f"bench: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def _composition_message(exc: BaseException, overrides: list[str]) -> str:
    """One or two lines for Hydra's composition errors (an unknown key, a missing option file...)."""
    from bench.config import TOP_LEVEL_KEYS, _did_you_mean

    text = "\n".join(str(e) for e in (exc, exc.__cause__) if e is not None)
    m = re.search(r"Key '([^']+)' is not in struct\s+full_key: (\S+)", text)
    if m:
        full_key = m.group(2)
        if "." in full_key:
            where = f"there is no key {m.group(1)!r} under {full_key.rsplit('.', 1)[0]}"
        else:
            where = f"not a top-level key{_did_you_mean(full_key, TOP_LEVEL_KEYS - {'hydra'})}"
        return (f"unknown config key {full_key!r}: {where}; check the spelling (`bench --cfg job` prints the "
                f"composed config), or add a new key with +{full_key}=...")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("    ")]
    return "; ".join(dict.fromkeys(lines[:3]))


def _preflight(overrides: list[str]) -> None:
    """Compose and validate once before Hydra starts a job, so config mistakes fail with exit 2."""
    from hydra import compose as h_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from bench.config import never_computable, validate

    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = h_compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_composition_message(exc, overrides)) from None
    validate(cfg)
    never_computable(cfg)


def _hydra_main() -> None:
    import hydra

    debug = "--debug" in sys.argv or os.environ.get("HYDRA_FULL_ERROR") == "1"
    if debug:
        os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra's own full traceback too
    argv = [a for a in sys.argv[1:] if a != "--debug"]
    config_dir, overrides, multirun = _split_argv(argv)
    info_only = any(a in ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--version") for a in argv)
    register_resolvers()
    try:
        rest, dirs = prepare_overrides(overrides, config_dir)
        if not multirun and not info_only:
            _preflight(with_searchpath(rest, dirs))
    except ConfigError as exc:
        if debug:
            raise
        _fail(str(exc))
    # Hydra's own --config-dir puts that folder on the search path; the other user folders go in one override
    others = [d for d in dirs if config_dir is None or d.resolve() != Path(config_dir).expanduser().resolve()]
    flags = [a for a in argv if a not in overrides]
    sys.argv = [sys.argv[0], *flags, *with_searchpath(rest, others)]

    @hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
    def app(cfg) -> None:
        from bench.pipeline import run

        try:
            run(cfg)
        except ConfigError as exc:
            if debug:
                raise
            _fail(str(exc))

    app()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "leaderboard":
        from bench.report.cli import main as leaderboard_main

        sys.exit(leaderboard_main(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "verify":
        from bench.verify import main as verify_main

        sys.exit(verify_main(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] in ("sensitivity", "agreement"):  # meta-evaluation (bench.meta)
        from bench.meta import cli as meta_cli

        sys.exit(getattr(meta_cli, f"{sys.argv[1]}_main")(sys.argv[2:]))
    _hydra_main()


if __name__ == "__main__":
    main()
