#!/usr/bin/env bash
# Disk and time of the set-up on a fresh machine: scripts/setup.sh of this commit vs. of a given earlier
# commit (default c6a8c18: the last one before the low-peak install), each in a fresh clone with its own empty pip cache,
# one after the other. Peak = the largest growth of the used space on the disk holding /tmp while it runs
# (sampled every second; other jobs on the machine would add to it). Writes benchmarks/results/setup_disk.md.
#
#   bash benchmarks/setup_disk.sh [BEFORE_COMMIT]        # ~6 min, ~11 GB free disk needed
set -euo pipefail
cd "$(dirname "$0")/.."
before=${1:-c6a8c18}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
used_mb() { df -B1M "$work" | awk 'NR==2 {print $3}'; }
measure() {  # label, commit
  local label=$1 commit=$2 dir="$work/$1"
  git clone -q "$PWD" "$dir" && git -C "$dir" checkout -q "$commit"
  local base; base=$(used_mb)
  (while true; do used_mb; sleep 1; done > "$work/$label.mon") & local mon=$!
  local t0; t0=$(date +%s)
  (cd "$dir" && PIP_CACHE_DIR="$work/$label.pipcache" BENCH_DEMO_OPTIONAL=1 bash scripts/setup.sh) > "$work/$label.log" 2>&1 \
    || { kill $mon; tail -5 "$work/$label.log"; exit 1; }
  local wall=$(( $(date +%s) - t0 ))
  kill $mon
  local peak end
  peak=$(sort -n "$work/$label.mon" | tail -1); end=$(used_mb)
  echo "| $label | \`$(git -C "$dir" rev-parse --short HEAD)\` | $wall | $(( (peak - base) )) | $(( end - base )) |"
  rm -rf "$dir" "$work/$label.pipcache"
}
rows=$(measure before "$before"; measure after HEAD)
{
  echo "# Set-up on a fresh machine: disk and time (benchmarks/setup_disk.sh)"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), $(python3 --version); $(date -u +%Y-%m-%d)."
  echo "Each: scripts/setup.sh in a fresh clone, empty pip cache; MB = growth of the used disk space."
  echo
  echo "| set-up | commit | wall s | peak MB | left MB (venv + cache) |"
  echo "|---|---|---|---|---|"
  echo "$rows"
} | tee benchmarks/results/setup_disk.md
