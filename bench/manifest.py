"""What a manifest records about the software: package versions, libsndfile, git commit."""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

#: packages whose versions go into the manifest
VERSIONED = (
    "genaudio-bench", "torch", "torchaudio", "numpy", "scipy", "soundfile", "resampy", "hydra-core", "omegaconf",
    "pandas", "transformers", "diffusers", "laion-clap", "frechet-audio-distance", "encodec", "librosa",
    "torchlibrosa", "musicnn", "aisfx", "fadtk",
)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in VERSIONED:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    with contextlib.suppress(Exception):
        import soundfile

        out["libsndfile"] = soundfile.__libsndfile_version__
    with contextlib.suppress(Exception):
        root = Path(__file__).resolve().parent.parent
        res = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if res.returncode == 0:
            out["git_commit"] = res.stdout.strip()
    return out
