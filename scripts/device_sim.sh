#!/usr/bin/env bash
# The GPU machine's software on this CPU machine, so a device session is not the first to run the code there
# (docs/throughput.md, "Checked before the GPU run").
#
#   bash scripts/device_sim.sh          # first time: builds two virtualenvs (about 6 GB, several minutes)
#
# 1. "image": Python 3.12 with the packages and versions the GPU image holds (as last read, 2026-11;
#    /work/.library/device/KINDS.md in the project's workplace): torch/torchaudio 2.11, transformers 5.17,
#    numpy 2.5, huggingface_hub 1.33, pandas 3, ... Nothing else. scripts/gpu_check.sh then runs in a copy of
#    the working tree exactly as on the device (wheels from .whl/ installed into its own --target dir), with
#    DEVICE=cpu and a small benchmark: an import or package missing on the device fails here.
# 2. "full": the image plus the test suite's needs (reference implementations, launchers, data wheels),
#    installed on top with the image's versions held (except scipy < 1.18, which the peers need: see below);
#    the whole test suite runs on that stack.
# 3. benchmarks/cross_stack.py: the same random-weight embedders and audio in the project's .venv (the lock,
#    requirements.txt) and in the full venv: how far the numbers move with the stack; then the demo run on
#    both, leaderboards compared cell by cell.
# Results: benchmarks/results/device_sim.md (+ device_sim.log, device_sim_bench.{json,md}, cross_stack.{json,md}).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
BASE=${SIM_DIR:-$HOME/.cache/genaudio-bench/device-sim}
if [ -z "${PY312:-}" ]; then  # the first python3.12 that runs (a pyenv shim may exist and refuse)
    for c in $(command -v python3.12) "$HOME"/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12; do
        if "$c" -c "import venv" >/dev/null 2>&1; then PY312=$c; break; fi
    done
fi
[ -n "${PY312:-}" ] || { echo "device_sim: needs Python 3.12 (set PY312=/path/to/python3.12)" >&2; exit 2; }
RES=$ROOT/benchmarks/results
LOG=$RES/device_sim.log
mkdir -p "$RES" "$BASE"
: >"$LOG"
say() { echo "[device_sim] $*" | tee -a "$LOG"; }
quiet_pip() { "$@" 2>&1 | grep -v "is ignored: it is neither" | tee -a "$LOG"; return "${PIPESTATUS[0]}"; }

# the image's versions (KINDS.md) of what genaudio-bench or its tests import; the rest of the image is not needed
IMAGE=(torch==2.11.0 torchaudio==2.11.0 torchvision==0.26.0 transformers==5.17.0 numpy==2.5.2
    huggingface_hub==1.33.0 safetensors==0.8.0 tokenizers==0.23.2 sentencepiece==0.2.2 accelerate==1.15.0
    torchmetrics==1.9.0 pandas scipy pytest pytest-xdist pytest-timeout hypothesis filelock tqdm matplotlib
    psutil pyyaml requests regex timm h5py scikit-learn einops numba joblib lazy-loader msgpack pyarrow)

IMG=$BASE/image
if [ ! -f "$IMG/.done" ]; then
    say "building the image venv in $IMG"
    rm -rf "$IMG" && "$PY312" -m venv "$IMG" && quiet_pip "$IMG/bin/pip" install -q "${IMAGE[@]}" || exit 1
    touch "$IMG/.done"
fi
FULL=$BASE/full
if [ ! -f "$FULL/.done" ]; then
    say "building the full venv in $FULL (the image's packages + the test suite's)"
    rm -rf "$FULL" && "$PY312" -m venv "$FULL" || exit 1
    "$IMG/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" \
        >"$("$FULL/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/image.pth"
    # requirements.txt without what the image pins; laion-clap and frechet-audio-distance pin old numpy/diffusers
    # in their metadata (they run with the image's), so they and the data-only wheels go in without deps
    grep -v -E "^(torch|torchaudio|torchvision|numpy|transformers|diffusers|pandas|scipy|laion-clap|frechet-audio-distance)[=<>]" \
        requirements.txt | grep -v -E "^(#|$)" >"$BASE/requirements.txt"
    # held: the image's pinned versions, the carried diffusers, and scipy < 1.18 for the peers only:
    # frechet-audio-distance 0.3.4 and fadtk 1.1.0 call sqrtm(disp=False), which scipy 1.18 removed (bench's FAD
    # does not use sqrtm); the parity tests need the peers to run
    { printf '%s\n' "${IMAGE[@]}" | grep '=='; echo diffusers==0.42.1; echo "scipy<1.18"; } >"$BASE/constraints-full.txt"
    quiet_pip "$FULL/bin/pip" install -q -r "$BASE/requirements.txt" diffusers==0.42.1 "scipy<1.18" \
        -c "$BASE/constraints-full.txt" || exit 1
    quiet_pip "$FULL/bin/pip" install -q --no-deps laion-clap==1.1.7 frechet-audio-distance==0.3.4 braceexpand \
        webdataset wget ftfy wcwidth musicnn==0.1.0 aisfx==0.1.2 fadtk==1.1.0 audiobox-aesthetics==0.0.4 torchopenl3==1.0.1 || exit 1
    touch "$FULL/.done"
fi
[ -d .whl ] || bash scripts/gpu_wheels.sh >>"$LOG" 2>&1 || { say "could not fill .whl/"; exit 1; }

# the working tree (tracked + untracked, not ignored) and .whl, copied: nothing here is written to
TREE=$(mktemp -d)
trap 'rm -rf "$TREE"' EXIT
git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$TREE" 2>/dev/null
cp -r .whl "$TREE/"
"$FULL/bin/pip" install -q --no-deps --no-build-isolation -e "$TREE" >>"$LOG" 2>&1

say "part 1: scripts/gpu_check.sh with the image venv, DEVICE=cpu"
(cd "$TREE" && PYTHON=$IMG/bin/python DEVICE=cpu GPU_CHECK_FILES=${SIM_FILES:-16} GPU_CHECK_LEGACY_FILES=8 \
    GPU_CHECK_SITE=$TREE/.site OUT= bash scripts/gpu_check.sh) >>"$LOG" 2>&1
cp "$TREE/benchmarks/results/bench_gpu.json" "$RES/device_sim_bench.json" 2>/dev/null
cp "$TREE/benchmarks/results/bench_gpu.md" "$RES/device_sim_bench.md" 2>/dev/null

say "part 2: the test suite with the full venv"
(cd "$TREE" && HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GENAUDIO_BENCH_OFFLINE=1 MPLBACKEND=Agg \
    "$FULL/bin/python" -m pytest -q -p no:cacheprovider -n "${BENCH_TEST_WORKERS:-auto}" --dist loadfile \
    --junitxml "$TREE/device_sim_tests.xml" tests) >>"$LOG" 2>&1
RC=$?

XS_RC=skipped
if [ -x .venv/bin/python ]; then  # the project's own lock (scripts/setup.sh) as stack A
    say "part 3: benchmarks/cross_stack.py, .venv (requirements.txt) vs the full venv"
    (cd "$TREE" && export PYTHONPATH=$TREE HF_HUB_OFFLINE=1 GENAUDIO_BENCH_OFFLINE=1 &&
        "$ROOT/.venv/bin/python" benchmarks/cross_stack.py write "$TREE/.xs" &&
        "$FULL/bin/python" benchmarks/cross_stack.py compare "$TREE/.xs" --out-dir "$RES" &&
        # the demo run (real musicnn weights, bootstrap intervals) on both stacks, each with a fresh cache
        export MPLBACKEND=Agg &&
        "$ROOT/.venv/bin/python" -m bench.cli output_dir="$TREE/.demo_a" cache_dir="$TREE/.cache_a" &&
        "$FULL/bin/python" -m bench.cli output_dir="$TREE/.demo_b" cache_dir="$TREE/.cache_b" &&
        "$FULL/bin/python" benchmarks/cross_stack.py boards "$TREE/.demo_a/demo/leaderboard_long.csv" \
            "$TREE/.demo_b/demo/leaderboard_long.csv" --out-dir "$RES") >>"$LOG" 2>&1
    XS_RC=$?
fi
IMAGE_VERSIONS=$("$IMG/bin/python" -c "import importlib.metadata as md; print(', '.join(f'{d} {md.version(d)}' for d in
    ('torch', 'torchaudio', 'transformers', 'numpy', 'pandas', 'scipy', 'huggingface_hub')))")
"$FULL/bin/python" - "$RES" "$RC" "$TREE/device_sim_tests.xml" "$IMAGE_VERSIONS" "$(nproc)" "$XS_RC" <<'EOF'
import json, sys, importlib.metadata as md, platform, datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

res, rc, xml, image_versions, cores, xs_rc = Path(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:7]
suite = ET.parse(xml).getroot().find("testsuite")
n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
bad = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
       if c.find("failure") is not None or c.find("error") is not None]
bench = json.loads((res / "device_sim_bench.json").read_text()) if (res / "device_sim_bench.json").exists() else None
vers = {d: md.version(d) for d in ("torch", "torchaudio", "transformers", "numpy", "pandas", "scipy", "diffusers",
                                   "huggingface_hub", "laion-clap", "librosa", "hydra-core")}
lines = [
    "# Device stand-in: the GPU image's software on the CPU (scripts/device_sim.sh)", "",
    f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.platform()}, {cores} CPU cores, "
    f"Python {platform.python_version()}, no GPU.", "",
    f"*image* venv: {image_versions} (+ the wheels of .whl/, as gpu_check.sh installs them).", "",
    "*full* venv: " + ", ".join(f"{k} {v}" for k, v in vers.items()) + ".", "",
    "## 1. scripts/gpu_check.sh in the image venv, DEVICE=cpu", "",
    "CPU throughput (not GPU numbers): the point is that every step runs on the image's software.", "",
]
if bench:
    for r in bench["rows"]:
        lines.append(f"- {r['embedder']}: " + (f"error {r['error']}" if r.get("error") else
                     f"model-only {r['model_only']['x_realtime']:.0f}x, end-to-end {r['end_to_end']['x_realtime']:.0f}x "
                     f"real time (e2e/model {r['e2e_over_model']:.2f}) on {bench['meta']['files']} files"))
else:
    lines.append("- the benchmark wrote no results (see device_sim.log)")
lines += ["", "## 2. The whole test suite in the full venv", "",
          f"pytest exit {rc}: {n['tests']} tests, {n['failures']} failed, {n['errors']} errors, {n['skipped']} skipped."]
lines += [f"- {b}" for b in bad]
lines += ["", "## 3. The same weights and audio on the project's lock and on the image's stack", ""]
if xs_rc == "skipped":
    lines.append("Skipped: no .venv (run scripts/setup.sh first).")
else:
    xs = json.loads((res / "cross_stack.json").read_text())["rows"]
    ok = [r for r in xs if "error" not in r]
    worst = max(ok, key=lambda r: r["frames_rel"]) if ok else None
    lines.append(f"benchmarks/cross_stack.py exit {xs_rc}: {len(ok)} of {len(xs)} embedder options compared, "
                 f"{sum(r['same_id'] for r in ok)} with the same id (cache key) on both stacks; "
                 + (f"largest frame difference {worst['frames_rel']:.1e} of the largest value ({worst['embedder']}), "
                    f"largest FAD difference {max(r['fad_rel'] for r in ok):.1e} relative"
                    if worst else "nothing compared")
                 + ". Table: cross_stack.md.")
    lines += [f"- {r['embedder']}: {r['error']}" for r in xs if "error" in r]
    bp = res / "cross_stack_boards.json"
    if bp.exists():
        bd = json.loads(bp.read_text())
        lines += ["", f"The demo run (`bench`, real musicnn weights, bootstrap intervals) on both stacks, fresh caches: "
                  f"{bd['matched']} of {bd['cells_a']} leaderboard cells matched ({bd['ok_cells']} ok), statuses, "
                  f"embedder ids and reference hashes {'equal' if bd['same_status'] and bd['same_embedder_id'] and bd['same_reference_hash'] else 'DIFFERENT'}; "
                  f"largest relative difference: values {bd['value_max_rel']:.1e}, interval bounds "
                  f"{max(bd['ci_low_max_rel'], bd['ci_high_max_rel']):.1e}."]
(res / "device_sim.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
say "done: $RES/device_sim.md"
if [ "$RC" -eq 0 ] && [ "$XS_RC" != skipped ] && [ "$XS_RC" -ne 0 ]; then RC=1; fi
exit "$RC"
