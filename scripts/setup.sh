#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: virtualenv with the pinned dependencies, the data wheels
# that carry real pretrained weights (musicnn, aisfx) and test clips/statistics (fadtk), the demo
# reference audio (Debian's singularity-music, CC BY-SA 3.0), and Chromium for the HTML report test.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.setup-$(cat requirements.txt pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing Python dependencies into .venv (first time: several minutes, about 8 GB)"
  # PyPI's torch for x86_64 Linux is the CUDA build: .venv takes about 8 GB. torch's wheels are installed
  # (and their downloads freed) before the rest, and pip keeps no cached copy: peak 10.8 GB, not 12.1 GB.
  export PIP_NO_CACHE_DIR="${PIP_NO_CACHE_DIR:-1}"
  pip_or_explain() {
    .venv/bin/pip install -q "$@" && return 0
    echo "[setup] error: 'pip install $*' failed (see pip's message above); $(df -h .venv | awk 'NR==2 {print $4}') left on the disk holding .venv - the set-up needs about 11 GB free while installing (benchmarks/results/setup_disk.md)" >&2
    exit 1
  }
  pip_or_explain --upgrade pip wheel setuptools
  pip_or_explain $(grep -E '^torch(audio|vision)?==' requirements.txt)
  pip_or_explain -r requirements.txt
  # data-only wheels: installed without their (TensorFlow) dependencies, never imported
  pip_or_explain --no-deps musicnn==0.1.0 aisfx==0.1.2 fadtk==1.1.0 audiobox-aesthetics==0.0.4
  # official OpenL3 port for the parity tests; its resampy<0.3 pin would downgrade resampy
  pip_or_explain --no-deps torchopenl3==1.0.1
  pip_or_explain --no-deps --no-build-isolation -e .
  touch "$stamp"
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "[setup] installing Chromium (HTML report test)"
  ($SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || ($SUDO apt-get update -qq >/dev/null 2>&1 && \
    $SUDO apt-get install -y -qq chromium >/dev/null 2>&1)) || echo "[setup] note: chromium not installed; browser test will skip"
fi
echo "[setup] demo audio"
if ! .venv/bin/python -m bench.demo >/dev/null; then
  if [ "${BENCH_DEMO_OPTIONAL:-0}" = 1 ]; then
    echo "[setup] warning: demo audio could not be prepared; the demo tests will skip"
  else
    echo "[setup] error: demo audio could not be prepared (see the message above)" >&2
    exit 1
  fi
fi
echo "[setup] done"
