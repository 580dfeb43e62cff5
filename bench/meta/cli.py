"""``bench sensitivity`` and ``bench agreement`` entry points (dispatched by :func:`bench.cli.main`).

    bench sensitivity [HYDRA_OVERRIDES...] [--debug]
        e.g. bench sensitivity embedder=[musicnn,logmel] metric=[fad,kad,prdc] sensitivity.max_clips=20
    bench agreement --judgements FILE.csv RUN_DIR_OR_GLOB... [--out DIR] [--n-bootstrap 1000]
                    [--seed 0] [--level 0.95] [--allow-mixed] [--debug]

Exit status 0 on success, 2 on bad input (one message naming the file or key and the fix).
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path


def _fail(prog: str, exc: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"{prog}: {exc}", file=sys.stderr)
    return 2


def sensitivity_main(argv: list[str]) -> int:
    """``bench sensitivity OVERRIDES...``: compose ``bench/configs/sensitivity.yaml`` with the overrides and run."""
    from bench.errors import ConfigError

    debug = "--debug" in argv
    overrides = [a for a in argv if a != "--debug"]
    if any(a in ("-h", "--help") for a in overrides):
        print(__doc__)
        return 0
    bad = [a for a in overrides if a.startswith("-")]
    if bad:
        print(f"bench sensitivity: unknown option(s) {bad}; it takes Hydra overrides (key=value) and --debug",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from bench.cli import compose
    from bench.meta.sensitivity import run_sensitivity

    try:
        cfg = compose(overrides, config_name="sensitivity")
        rdir = run_sensitivity(cfg)
    except (ConfigError, FileNotFoundError) as exc:
        return _fail("bench sensitivity", exc, debug)
    except Exception as exc:
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        if isinstance(exc, (HydraException, OmegaConfBaseException)):
            return _fail("bench sensitivity", exc, debug)
        raise
    print(f"wrote {rdir / 'sensitivity.csv'} and {rdir / 'sensitivity.html'}")
    return 0


def agreement_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench agreement",
                                description="Agreement of each metric with human judgements (docs/meta_evaluation.md).")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR_OR_GLOB", help="finished run folders (leaderboard_long.csv)")
    p.add_argument("--judgements", "-j", required=True,
                   help="CSV of pairwise preferences (prompt_id,system_a,system_b,preferred) or MOS (system,prompt_id,score)")
    p.add_argument("--out", default="results/agreement", help="output folder (default: %(default)s)")
    p.add_argument("--n-bootstrap", type=int, default=1000, help="prompt resamples for the intervals")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--level", type=float, default=0.95, help="confidence level of the intervals")
    p.add_argument("--system-map", default=None,
                   help="optional CSV 'system,model' renaming the judgements' systems to run model names")
    p.add_argument("--allow-mixed", action="store_true", help="merge runs whose embedder ids differ")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def agreement_main(argv: list[str]) -> int:
    from bench.meta.agreement import AgreementError, run_agreement
    from bench.report.merge import MixedRunsError, RunNotFound

    args = agreement_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING, format="%(levelname)s: %(message)s")
    if not 0.0 < args.level < 1.0 or args.n_bootstrap < 0:
        print("bench agreement: --level must lie in (0, 1) and --n-bootstrap be >= 0", file=sys.stderr)
        return 2
    try:
        table = run_agreement(args.judgements, args.runs, Path(args.out), n_bootstrap=args.n_bootstrap,
                              seed=args.seed, level=args.level, system_map=args.system_map,
                              allow_mixed=args.allow_mixed)
    except (AgreementError, MixedRunsError, RunNotFound, FileNotFoundError) as exc:
        return _fail("bench agreement", exc, args.debug)
    print(table.to_string(index=False, max_colwidth=24))
    print(f"wrote {Path(args.out) / 'agreement.csv'} and {Path(args.out) / 'agreement.html'}")
    return 0
