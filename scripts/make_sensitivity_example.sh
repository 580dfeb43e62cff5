#!/usr/bin/env bash
# `bench sensitivity` on the offline demo data -> results/examples/sensitivity/ (committed; the README's
# "Choosing metrics" table is copied from its sensitivity.csv).
#
#   bash scripts/make_sensitivity_example.sh            # ~2-3 min on 2 CPU cores (a fresh embedding cache each time,
#                                                       # so the committed wall time is always a cold run's)
#
# 42 demo reference clips: a seeded half (21) is the reference, the other 21 are degraded (first 5 s,
# mono, 48 kHz) at 4 severities each of noise, low-pass, bit depth, time stretch, pitch shift and
# segment shuffle; musicnn and log-mel embedders; FAD, KAD, PRDC (and MAD when the metric exists).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export GENAUDIO_BENCH_OFFLINE=1 HF_HUB_OFFLINE=1 MPLBACKEND=Agg PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
METRICS=fad,kad,prdc
for cfgdir in configs bench/configs; do
  if [ -f "$cfgdir/metric/mad.yaml" ]; then METRICS="$METRICS,mad"; fi
done
WORK=${WORK:-results/sensitivity_example}
OUT=results/examples/sensitivity
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
start=$(date +%s)
"$PY" -m bench.cli sensitivity "embedder=[musicnn,logmel]" "metric=[$METRICS]" \
  sensitivity.duration_s=5 sensitivity.keep_audio=false progress=false \
  output_dir="$(dirname "$WORK")" run_name="$(basename "$WORK")" cache_dir="$cache"
mkdir -p "$OUT"
for f in sensitivity.csv sensitivity_levels.csv sensitivity.html leaderboard_long.csv leaderboard.csv errors.csv; do
  cp "$WORK/$f" "$OUT/$f"
done
# the design (settings, clip counts, levels) without absolute paths
"$PY" - "$WORK" "$OUT" "$start" <<'PY'
import json, sys, time
from pathlib import Path
work, out, start = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
info = json.loads((work / "sensitivity_design.json").read_text())
man = json.loads((work / "manifest.json").read_text())
info["timings_s"] = man.get("timings")
info["wall_s"] = round(time.time() - start, 1)
info["versions"] = man.get("versions")
(out / "sensitivity_design.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
print(f"wrote {out} in {info['wall_s']} s")
PY
