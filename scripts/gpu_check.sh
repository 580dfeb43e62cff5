#!/usr/bin/env bash
# GPU check for genaudio-bench, for a machine with an NVIDIA GPU and no network (docs/throughput.md).
#
#   bash scripts/gpu_check.sh                      # on the GPU machine, from anywhere
#   DEVICE=cpu GPU_CHECK_FILES=8 GPU_CHECK_EMBEDDERS=vggish bash scripts/gpu_check.sh   # dry run on a CPU machine
#
# 1. installs the Python packages the machine lacks from wheels carried in .whl/ (no index, no deps) into
#    /tmp/site and puts it first on PYTHONPATH; .whl/musicnn/MSD_musicnn (if carried) gives musicnn its weights;
# 2. prints the environment (nvidia-smi, versions, which bench modules import);
# 3. runs the embedder throughput benchmark on $DEVICE (benchmarks/bench_gpu.py: model-only vs end-to-end
#    embed stage for VGGish and CLAP at batch 32, random-init official architectures, GPU utilisation);
# 4. runs the GPU-marked tests (pytest -m gpu).
# Every part is guarded by a timeout and never stops the script; worst case about 6 minutes (typically 3-4).
# Results: benchmarks/results/gpu_check.log, bench_gpu.{json,md}, gpu_tests.xml, and copies in $OUT if set.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
DEVICE=${DEVICE:-cuda}
FILES=${GPU_CHECK_FILES:-256}
LEGACY_FILES=${GPU_CHECK_LEGACY_FILES:-64}
SECONDS_PER_FILE=${GPU_CHECK_SECONDS:-10}
EMBEDDERS=${GPU_CHECK_EMBEDDERS:-vggish,clap}
PY=${PYTHON:-python3}
RES=$ROOT/benchmarks/results
mkdir -p "$RES"
LOG=$RES/gpu_check.log
: >"$LOG"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GENAUDIO_BENCH_OFFLINE=1 MPLBACKEND=Agg
export TOKENIZERS_PARALLELISM=false
T0=$(date +%s)

say() { echo "[gpu_check +$(($(date +%s) - T0))s] $*" | tee -a "$LOG"; }
run() { # run <timeout s> <label> cmd...: output to the log, never fails the script
    local limit=$1 label=$2
    shift 2
    say "== $label (limit ${limit}s): $*"
    timeout --signal=INT --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    say "== $label: exit $rc"
    return 0
}

# -- 1. packages from carried wheels ------------------------------------------------------------------
SITE=${GPU_CHECK_SITE:-/tmp/site}
mkdir -p "$SITE"
shopt -s nullglob
WHEELS=("$ROOT"/.whl/*.whl)
if ((${#WHEELS[@]})); then
    say "installing ${#WHEELS[@]} wheels into $SITE"
    if ! timeout 45 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "${WHEELS[@]}" >>"$LOG" 2>&1; then
        say "bulk install failed; installing one by one (until 75 s)"
        for w in "${WHEELS[@]}"; do
            if (($(date +%s) - T0 > 75)); then say "install budget spent: skipping $(basename "$w")"; continue; fi
            timeout 15 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
                --target "$SITE" "$w" >>"$LOG" 2>&1 || say "could not install $(basename "$w")"
        done
    fi
else
    say "no wheels in .whl/: using the installed packages"
fi
export PYTHONPATH=$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}
if [ -d "$ROOT/.whl/musicnn" ]; then export GENAUDIO_BENCH_MUSICNN_DIR=$ROOT/.whl/musicnn; fi

# -- 2. environment -------------------------------------------------------------------------------------
if command -v nvidia-smi >/dev/null; then
    run 15 nvidia-smi nvidia-smi --query-gpu=name,driver_version,memory.total,utilization.gpu --format=csv
fi
run 30 environment "$PY" - <<'EOF'
import importlib, importlib.metadata as md, os, platform, sys
print("python", platform.python_version(), sys.executable, "cores", os.cpu_count())
for d in ("torch", "torchaudio", "numpy", "scipy", "transformers", "diffusers", "soundfile", "resampy", "hydra-core",
          "omegaconf", "encodec", "laion-clap", "torchlibrosa", "librosa", "filelock", "pandas", "pytest-xdist"):
    try:
        print(f"{d:14s} {md.version(d)}")
    except md.PackageNotFoundError:
        print(f"{d:14s} MISSING")
import torch
print("cuda available", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
for m in ("soundfile", "bench.pipeline", "bench.stages.embed", "bench.polyphase", "bench.embedders.vggish"):
    try:
        importlib.import_module(m)
        print("import ok  ", m)
    except Exception as exc:
        print("import FAIL ", m, type(exc).__name__, exc)
EOF

# -- 3. throughput: model-only vs end-to-end ---------------------------------------------------------------
run 150 "throughput benchmark" "$PY" benchmarks/bench_gpu.py --device "$DEVICE" --embedders "$EMBEDDERS" \
    --files "$FILES" --legacy-files "$LEGACY_FILES" --seconds "$SECONDS_PER_FILE" --batch-size 32 --out-dir "$RES"

# -- 4. GPU-marked tests ----------------------------------------------------------------------------------
XDIST=()
if "$PY" -c "import xdist" 2>/dev/null && [ "$DEVICE" != cpu ]; then XDIST=(-n 4); fi
GPU_TESTS=(tests/gpu tests/models/test_musicgen.py tests/models/test_audioldm.py tests/models/test_riffusion.py
    tests/models/test_stable_audio.py)
run 110 "gpu tests" "$PY" -m pytest -m gpu "${GPU_TESTS[@]}" -q -rs -p no:cacheprovider --timeout 100 \
    --continue-on-collection-errors "${XDIST[@]}" \
    --junitxml "$RES/gpu_tests.xml" --durations 15

say "done in $(($(date +%s) - T0)) s"
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    for f in gpu_check.log bench_gpu.json bench_gpu.md gpu_tests.xml; do
        [ -f "$RES/$f" ] && cp "$RES/$f" "$OUT/"
    done
    say "copied results to $OUT"
fi
exit 0
