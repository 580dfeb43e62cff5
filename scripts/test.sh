#!/usr/bin/env bash
# Set up (idempotent), lint, and run the test suite offline. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_DEMO_OPTIONAL=1 bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GENAUDIO_BENCH_OFFLINE=1 MPLBACKEND=Agg
.venv/bin/ruff check .
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi
exit "$rc"
