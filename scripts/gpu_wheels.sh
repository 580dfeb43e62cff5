#!/usr/bin/env bash
# Fill .whl/ with what scripts/gpu_check.sh installs on a GPU machine that has no network (docs/throughput.md):
# the packages its image lacks, as Python 3.12 manylinux wheels, and musicnn's MSD_musicnn weights folder.
#
#   bash scripts/gpu_wheels.sh        # here, with pip access; then carry .whl with the tree
#
# The image (as last read, 2026-11) has Python 3.12, torch/torchaudio 2.11, transformers 5.17, numpy 2.5,
# huggingface_hub 1.33, pandas, scipy, pytest-xdist, timm, h5py, scikit-learn. diffusers is carried at 0.42.1:
# with transformers 5 the AudioLDM2 pipeline needs diffusers >= 0.37 (bench.models.audioldm).
# .whl/ is ignored by git (.git/info/exclude or .gitignore); about 24 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.whl}
PY=${PYTHON:-python3}
mkdir -p "$DEST"
BINARY=(
    hydra-core==1.3.2 omegaconf==2.3.0 soundfile==0.13.1 cffi==2.0.0 pycparser==2.23 resampy==0.4.3
    diffusers==0.42.1 laion-clap==1.1.7 torchlibrosa==0.1.0 librosa==0.11.0 audioread==3.0.1 soxr==1.0.0
    decorator==5.2.1 pooch==1.8.2 platformdirs==4.3.8 ftfy==6.3.1 wcwidth==0.2.13
)
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
    PLATFORMS+=(--platform "$p")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$DEST" "${BINARY[@]}"
# published as source only (pure Python): build the wheels here
"$PY" -m pip wheel -q --no-deps -w "$DEST" antlr4-python3-runtime==4.9.3 encodec==0.1.1
# musicnn's weights: the data files of the musicnn 0.1.0 distribution (TensorFlow is not needed)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$PY" -m pip download -q --no-deps -d "$TMP" musicnn==0.1.0
ARCHIVE=$(ls "$TMP"/musicnn-0.1.0*)
mkdir -p "$TMP/x"
case "$ARCHIVE" in
    *.whl | *.zip) "$PY" -m zipfile -e "$ARCHIVE" "$TMP/x" ;;
    *) tar -xzf "$ARCHIVE" -C "$TMP/x" ;;
esac
SRC=$(find "$TMP/x" -type d -name MSD_musicnn | head -1)
[ -n "$SRC" ] || { echo "gpu_wheels: no MSD_musicnn folder in $ARCHIVE" >&2; exit 1; }
rm -rf "$DEST/musicnn" && mkdir -p "$DEST/musicnn" && cp -r "$SRC" "$DEST/musicnn/"
ls "$DEST"
du -sh "$DEST"
