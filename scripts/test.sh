#!/usr/bin/env bash
# Set up (idempotent), lint, and run the test suite offline. Extra arguments go to pytest.
# Tests run in one pytest-xdist process per core (BENCH_TEST_WORKERS=N to choose, 0 for one process),
# a test file per process at a time (--dist loadfile: module fixtures are built once).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_DEMO_OPTIONAL=1 bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GENAUDIO_BENCH_OFFLINE=1 MPLBACKEND=Agg
.venv/bin/ruff check .
set +e
.venv/bin/python -m pytest -n "${BENCH_TEST_WORKERS:-auto}" --dist loadfile "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi
exit "$rc"
