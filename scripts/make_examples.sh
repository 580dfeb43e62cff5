#!/usr/bin/env bash
# Regenerate results/examples/ from the current code: the offline demo (`bench` with no arguments), run
# twice on a fresh cache (cold, then warm), its tables and manifest copied into results/examples/demo/
# (no audio, no report.html: it embeds audio), and results/examples/README.md written with the measured
# wall times, peak memory and counters. Needs the demo audio (scripts/setup.sh prepares it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export GENAUDIO_BENCH_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code, whatever the venv has installed
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=(output_dir="$tmp/results" cache_dir="$tmp/cache" progress=false)
for pass in cold warm; do
  /usr/bin/time -f "%e %M" -o "$tmp/$pass.time" "$PY" -c "from bench.cli import main; main()" "${args[@]}" \
    > "$tmp/$pass.log" 2>&1 || { tail -20 "$tmp/$pass.log"; exit 1; }
  cp "$tmp/results/demo/manifest.json" "$tmp/$pass.manifest.json"
done
out=results/examples/demo
mkdir -p "$out"
rm -f "$out"/*
for f in leaderboard.csv leaderboard_long.csv leaderboard.md leaderboard.tex errors.csv missing.csv manifest.json; do
  [ -f "$tmp/results/demo/$f" ] && cp "$tmp/results/demo/$f" "$out/$f"
done
cp "$tmp/cold.manifest.json" "$out/manifest.json"  # the cold run's counters and timings
"$PY" - "$tmp" <<'PY'
import json, os, sys
tmp = sys.argv[1]
def read(p):
    wall, kb = open(f"{tmp}/{p}.time").read().split()
    return float(wall), int(kb) / 1024 ** 2, json.load(open(f"{tmp}/{p}.manifest.json"))["counters"]
(cw, cm, cc), (ww, wm, wc) = read("cold"), read("warm")
text = f"""# Example results

Written by `scripts/make_examples.sh` from the code of this commit: the offline demo (`bench` with no
arguments: 28 MusicCaps prompts, 42 real reference clips, oracle / synth / noise; musicnn, VGGish and CLAP
embedders x FAD, KAD, MAD, KL, CLAP score, where the pairs that can never be computed are no columns and VGGish /
CLAP show empty cells offline, with the reason in `leaderboard_long.csv` and the Markdown notes).
`demo/` holds its tables, `errors.csv` and the cold run's `manifest.json` (audio and `report.html`, which
embeds audio previews, are not committed).

Measured on {os.cpu_count()} CPU cores (other jobs may have shared them): cold run (fresh cache) {cw:.1f} s
wall, {cm:.2f} GB peak RSS, counters `generated {cc['generated']}, embedded {cc['embedded']}, scored {cc['scored']}`;
warm rerun {ww:.1f} s, counters `generated {wc['generated']}, embedded {wc['embedded']}, scored {wc['scored']}`.
"""
open("results/examples/README.md", "w").write(text)
print(text)
PY
