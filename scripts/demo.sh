#!/usr/bin/env bash
# Set up (idempotent) and run the offline demo experiment; extra arguments are Hydra overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export GENAUDIO_BENCH_OFFLINE=${GENAUDIO_BENCH_OFFLINE:-1} HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
exec .venv/bin/bench "$@"
