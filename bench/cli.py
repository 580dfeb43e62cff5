"""The ``bench`` console script: a Hydra app around :func:`bench.pipeline.run`.

    bench                                   # the offline demo experiment
    bench experiment=musiccaps_folder       # a named experiment (bench/configs/experiment/)
    bench model=[oracle,noise] embedder=[musicnn] metric=[fad,kad]
    bench -m model=[synth],[noise]          # Hydra multirun sweep
    bench leaderboard results/a results/b   # merge runs into one board (bench.report.cli)
    bench verify                            # reproduce fadtk's published FAD numbers (bench.verify)
    bench sensitivity embedder=[logmel]     # metric meta-evaluation (bench.meta.cli)
    bench agreement -j prefs.csv results/a  # agreement with human judgements (bench.meta.cli)
"""

from __future__ import annotations

import sys

from omegaconf import OmegaConf

from bench.checkpoints import bench_home
from bench.resources import CONFIG_DIR, package_path


def register_resolvers() -> None:
    """``${bench_home:sub}`` -> $GENAUDIO_BENCH_HOME/sub; ``${bench_pkg:sub}`` -> sub inside the installed package."""
    if not OmegaConf.has_resolver("bench_home"):
        OmegaConf.register_new_resolver("bench_home", lambda sub="": str(bench_home() / sub) if sub else str(bench_home()))
    if not OmegaConf.has_resolver("bench_pkg"):
        OmegaConf.register_new_resolver("bench_pkg", package_path)


def compose(overrides: list[str] | None = None, config_name: str = "config"):
    """The resolved run config without starting a Hydra job (for the Python API and tests)."""
    from hydra import compose as h_compose
    from hydra import initialize_config_dir

    from bench.config import check_group_overrides

    register_resolvers()
    check_group_overrides(list(overrides or []))  # Hydra lists the options only for single selections
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return h_compose(config_name=config_name, overrides=list(overrides or []))


def _hydra_main() -> None:
    import hydra

    from bench.errors import ConfigError

    register_resolvers()
    if "--config-dir" not in sys.argv and "-cd" not in sys.argv:
        from bench.config import check_group_overrides

        try:
            check_group_overrides([a for a in sys.argv[1:] if "=" in a and not a.startswith("-")])
        except ConfigError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            sys.exit(2)

    @hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
    def app(cfg) -> None:
        from bench.pipeline import run

        run(cfg)

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
