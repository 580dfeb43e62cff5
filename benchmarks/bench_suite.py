"""Test-suite wall time before and after the "easy to change" refactor, in one invocation on one machine.

    PYTHONPATH=. python benchmarks/bench_suite.py [--before d0e3099] [--after HEAD] [--workers 2]
        [--out benchmarks/results/bench_suite.json]

Each side is a detached ``git worktree`` of its commit sharing this checkout's ``.venv``; its suite runs
in a subprocess exactly as the README's test command runs it (offline env, ``-p no:cacheprovider``),
with ``--durations=0`` so every test's setup + call + teardown time is recorded. The two runs go one
after the other on an otherwise idle machine.

Runs: before (serial, as the README's test command ran then), after (serial), and after as the README's
test command runs now (``--workers`` pytest-xdist processes, ``--dist loadfile``). Reported: whole-suite
wall time and test counts of each run, and the serial time of the tests both sides have (matched by test
function name and parameters, since files were renamed and moved by the refactor), summed per side: the
like-for-like "no slower" comparison. Tests only one side has are counted with their total time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DURATION = re.compile(r"^\s*([\d.]+)s (setup|call|teardown)\s+(\S+)")
SUMMARY = re.compile(r"(\d+) passed(?:, (\d+) skipped)?")


def test_key(nodeid: str) -> str:
    """``tests/x/test_a.py::test_f[p]`` -> ``test_f[p]`` (files were renamed/moved between the sides)."""
    return nodeid.split("::")[-1]


def run_suite(commit: str, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit], check=True,
                       capture_output=True)
        try:
            (tree / ".venv").symlink_to(REPO / ".venv")
            env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                   "GENAUDIO_BENCH_OFFLINE": "1", "MPLBACKEND": "Agg"}
            cmd = [str(tree / ".venv" / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "--durations=0", "--durations-min=0"]
            if workers > 1:
                cmd += ["-n", str(workers), "--dist", "loadfile"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)
    per_test: dict[str, float] = defaultdict(float)
    for line in proc.stdout.splitlines():
        m = DURATION.match(line)
        if m:
            per_test[test_key(m.group(3))] += float(m.group(1))
    counts = SUMMARY.findall(proc.stdout)
    passed, skipped = (int(counts[-1][0]), int(counts[-1][1] or 0)) if counts else (0, 0)
    return {"commit": commit, "rc": proc.returncode, "wall_s": round(wall, 1), "passed": passed,
            "skipped": skipped, "per_test": dict(per_test), "tail": proc.stdout[-600:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="d0e3099", help="commit before the refactor (issue #11 was filed on it)")
    ap.add_argument("--after", default="HEAD")
    ap.add_argument("--workers", type=int, default=2, help="pytest-xdist workers of the README test command")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_suite.json"))
    a = ap.parse_args()
    rev = lambda c: subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", c],  # noqa: E731
                                   capture_output=True, text=True, check=True).stdout.strip()
    before, after = run_suite(rev(a.before), 1), run_suite(rev(a.after), 1)
    readme = run_suite(rev(a.after), a.workers) if a.workers > 1 else after
    common = sorted(set(before["per_test"]) & set(after["per_test"]))
    t_before = sum(before["per_test"][k] for k in common)
    t_after = sum(after["per_test"][k] for k in common)
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
        "before": {k: v for k, v in before.items() if k != "per_test"},
        "after": {k: v for k, v in after.items() if k != "per_test"},
        "after_readme_command": {k: v for k, v in readme.items() if k != "per_test"} | {"workers": a.workers},
        "common_tests": len(common),
        "common_time_s": {"before": round(t_before, 1), "after": round(t_after, 1),
                          "ratio": round(t_after / t_before, 3) if t_before else None},
        "only_before": {"n": len(set(before["per_test"]) - set(common)),
                        "time_s": round(sum(v for k, v in before["per_test"].items() if k not in common), 1)},
        "only_after": {"n": len(set(after["per_test"]) - set(common)),
                       "time_s": round(sum(v for k, v in after["per_test"].items() if k not in common), 1)},
        "slowest_common": sorted(((k, round(before["per_test"][k], 2), round(after["per_test"][k], 2))
                                  for k in common), key=lambda r: -max(r[1], r[2]))[:15],
    }
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    r = result
    md = [
        f"# Test suite before/after the refactor ({r['date']}, {r['machine']['cpus']} CPUs, {r['machine']['platform']})",
        "",
        "| | commit | tests passed | skipped | suite wall (s) |",
        "|---|---|---|---|---|",
        f"| before | {r['before']['commit']} | {r['before']['passed']} | {r['before']['skipped']} | {r['before']['wall_s']} |",
        f"| after, serial | {r['after']['commit']} | {r['after']['passed']} | {r['after']['skipped']} "
        f"| {r['after']['wall_s']} |",
        f"| after, README test command ({a.workers} workers) | {r['after_readme_command']['commit']} "
        f"| {r['after_readme_command']['passed']} | {r['after_readme_command']['skipped']} "
        f"| {r['after_readme_command']['wall_s']} |",
        "",
        f"Tests on both sides (matched by name and parameters): {r['common_tests']}; their summed serial time "
        f"{r['common_time_s']['before']} s before, {r['common_time_s']['after']} s after "
        f"(ratio {r['common_time_s']['ratio']}). Only before: {r['only_before']['n']} tests, "
        f"{r['only_before']['time_s']} s; only after: {r['only_after']['n']} tests, {r['only_after']['time_s']} s.",
    ]
    Path(a.out).with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
