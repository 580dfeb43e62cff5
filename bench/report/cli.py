"""``bench leaderboard``: merge run folders into one board and write its tables and report.

    bench leaderboard RUN_DIR_OR_GLOB... [--out DIR] [--allow-mixed] [--formats md tex html csv]
                      [--alpha 0.05] [--holm] [--level 0.95] [--sort-by fad@vggish]
                      [--log-to wandb mlflow] [--project NAME]

Arguments may be run folders, globs (``'results/*'``, ``'multirun/**'``) or any folder above
runs (Hydra multirun trees are searched for ``leaderboard_long.csv``). Writes into ``--out``
(default ``results/leaderboard``): ``leaderboard_long.csv`` (+ a ``mixed`` column with
``--allow-mixed``), ``leaderboard.csv`` (wide view), ``replicates.csv``, ``per_item.csv``,
``curves.csv``, ``errors.csv``, ``manifest.json`` (kind ``merged-leaderboard``: sources,
notes) and the chosen formats. Exit status 0 on success, 2 for bad input or runs that must not be
mixed (the message lists the conflicting runs and values).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from bench.report import FORMATS, build_board, write_board
from bench.report.leaderboard import (
    CURVE_COLUMNS,
    LONG_COLUMNS,
    PER_ITEM_COLUMNS,
    REPLICATE_COLUMNS,
    wide_frame,
    write_csv,
)
from bench.report.merge import (
    ERROR_COLUMNS,
    MERGED_KIND,
    Merged,
    MixedRunsError,
    RunNotFound,
    load_merged,
)
from bench.report.trackers import TRACKERS, log_board

log = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench leaderboard", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR_OR_GLOB", help="run folders, globs or folders above runs")
    p.add_argument("--out", default="results/leaderboard", help="output folder (default: %(default)s)")
    p.add_argument("--allow-mixed", action="store_true",
                   help="merge rows whose embedder_id / reference_hash differ (noted in a 'mixed' column)")
    p.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS, help="reports to write")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default: %(default)s)")
    p.add_argument("--holm", action="store_true", help="Holm-correct p-values over the model pairs of each column")
    p.add_argument("--level", type=float, default=0.95, help="confidence level of difference CIs")
    p.add_argument("--sort-by", default=None, help="column (metric@embedder) to rank by; default the first metric")
    p.add_argument("--log-to", nargs="*", default=[], choices=TRACKERS, help="also log to these trackers")
    p.add_argument("--project", default="genaudio-bench", help="tracker project / experiment name")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def merged_wide(merged: Merged) -> pd.DataFrame:
    """The wide view of merged rows: one row per model (run ids joined with ``+``) unless rows are mixed."""
    long = merged.long
    if not merged.mixed and len(long):
        long = long.copy()
        runs = long.groupby(["model", "prompt_set", "reference_set"], sort=False)["run_id"].transform(
            lambda s: "+".join(dict.fromkeys(s))
        )
        long["run_id"] = runs
    return wide_frame(long)


def write_merged(merged: Merged, out: Path) -> list[Path]:
    """The merged CSVs and manifest (reports are written by :func:`bench.report.write_board`)."""
    from bench.cache import atomic_write_json

    out.mkdir(parents=True, exist_ok=True)
    cols = [*LONG_COLUMNS, *(["mixed"] if "mixed" in merged.long.columns else [])]
    files = {
        "leaderboard_long.csv": (merged.long, cols),
        "leaderboard.csv": (merged_wide(merged), None),
        "replicates.csv": (merged.replicates, REPLICATE_COLUMNS),
        "per_item.csv": (merged.per_item, PER_ITEM_COLUMNS),
        "curves.csv": (merged.curves, CURVE_COLUMNS),
        "errors.csv": (merged.errors, ERROR_COLUMNS),
    }
    written = []
    for name, (df, columns) in files.items():
        write_csv(df, out / name, columns)
        written.append(out / name)
    atomic_write_json(out / "manifest.json", {
        "kind": MERGED_KIND,
        "runs": {rid: {"path": str(r.path.resolve()), "config_hash": r.config_hash, "time": r.time}
                 for rid, r in merged.runs.items()},
        "conflicts": merged.conflicts,
        "notes": merged.notes,
    })
    written.append(out / "manifest.json")
    return written


def main(argv: list[str]) -> int:
    """Entry of ``bench leaderboard`` (``argv`` without the program and subcommand names)."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    if not 0.0 < args.alpha < 1.0 or not 0.0 < args.level < 1.0:
        print("bench leaderboard: --alpha and --level must lie in (0, 1)", file=sys.stderr)
        return 2
    try:
        merged = load_merged(args.runs, allow_mixed=args.allow_mixed)
    except MixedRunsError as exc:
        print(f"bench leaderboard: {exc}", file=sys.stderr)
        return 2
    except RunNotFound as exc:
        print(f"bench leaderboard: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    written = write_merged(merged, out)
    board = build_board(merged, alpha=args.alpha, holm=args.holm, level=args.level, sort_by=args.sort_by)
    written += write_board(board, out, args.formats)
    if args.log_to:
        done = log_board(board, args.log_to, files=written, project=args.project)
        for t in set(args.log_to) - set(done):
            print(f"warning: tracker {t} not installed; skipped", file=sys.stderr)
    print(f"merged {len(merged.runs)} run(s), {len(merged.long)} rows -> {out}")
    for p in written:
        print(f"  {p}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
