"""The built-in demo data: real music that installs offline, cut into reference and held-out clips.

Source: the *Endgame: Singularity* soundtrack by Max McCracken (CC BY-SA 3.0), which Debian ships
as the package ``singularity-music`` (16 OGG Vorbis tracks, 48 kHz stereo). :func:`prepare`
fetches the .deb with ``apt-get download`` (no root needed once apt lists exist), unpacks it with
``dpkg-deb -x`` and cuts, from each of the 14 tracks longer than 100 s, 10-s clips at five evenly
spaced positions: positions 0, 2, 4 go to ``reference/`` (42 clips) and positions 1, 3 are held out
as the paired clips of the 28 demo prompts (``heldout/demo-NN.flac``), which the oracle returns.
Clips keep the source's 48 kHz stereo (FLAC, 16 bit); every embedder's own preprocessing applies.

Run ``python -m bench.demo`` (scripts/setup.sh does) or let the demo run call it.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.cache import atomic_path, atomic_write_json
from bench.checkpoints import bench_home

log = logging.getLogger(__name__)

PACKAGE = "singularity-music"
MUSIC_SUBDIR = "usr/share/games/singularity/music"
SYSTEM_DIR = Path("/") / MUSIC_SUBDIR
CLIP_S = 10.0
N_POSITIONS = 5
REFERENCE_POSITIONS = (0, 2, 4)
HELDOUT_POSITIONS = (1, 3)
MIN_TRACK_S = 100.0
LICENSE = "CC BY-SA 3.0 (Max McCracken, Endgame: Singularity soundtrack; Debian package singularity-music)"


def demo_dir() -> Path:
    return bench_home() / "demo"


def _find_tracks(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.ogg") if p.is_file())


def fetch_tracks(dest: Path) -> Path:
    """Directory holding the soundtrack's OGG files: the installed package, an earlier
    extraction under ``dest``, or a fresh ``apt-get download`` + ``dpkg-deb -x``."""
    if _find_tracks(SYSTEM_DIR):
        return SYSTEM_DIR
    extracted = dest / "src" / MUSIC_SUBDIR
    if _find_tracks(extracted):
        return extracted
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise RuntimeError(
            f"demo audio needs the Debian package {PACKAGE} (apt-get/dpkg-deb not found); "
            f"extract its OGG files into {extracted}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["apt-get", "download", PACKAGE]
        res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        if res.returncode != 0:  # no package lists yet: try to fetch them (needs root)
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
            res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob(f"{PACKAGE}_*.deb"))
        if res.returncode != 0 or not debs:
            raise RuntimeError(f"`apt-get download {PACKAGE}` failed: {res.stderr.strip()[-500:]}")
        staging = dest / "src.partial"
        shutil.rmtree(staging, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(staging)], check=True)
        shutil.rmtree(dest / "src", ignore_errors=True)
        staging.rename(dest / "src")
    return extracted


def clip_positions(duration_s: float, n: int = N_POSITIONS, clip_s: float = CLIP_S) -> list[float]:
    """``n`` clip starts (s), evenly spaced between 5 % and 95 % of the track."""
    lo, hi = 0.05 * duration_s, 0.95 * duration_s - clip_s
    return [float(x) for x in np.linspace(lo, hi, n)]


def _write_clip(src: Path, start_s: float, dest: Path) -> None:
    info = sf.info(str(src))
    with sf.SoundFile(str(src)) as f:
        f.seek(int(start_s * info.samplerate))
        data = f.read(int(CLIP_S * info.samplerate), dtype="float32", always_2d=True)
    with atomic_path(dest) as tmp:
        sf.write(str(tmp), data, info.samplerate, subtype="PCM_16", format="FLAC")


def prepare(dest: Path | None = None, force: bool = False) -> Path:
    """Create ``<dest>/reference/*.flac`` and ``<dest>/heldout/demo-NN.flac``; idempotent."""
    dest = Path(dest) if dest else demo_dir()
    done = dest / "clips.json"
    if done.is_file() and not force:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    tracks = [t for t in _find_tracks(fetch_tracks(dest)) if sf.info(str(t)).duration >= MIN_TRACK_S]
    clips = []
    k = 0
    for t in tracks:
        stem = "".join(c if c.isalnum() else "_" for c in t.stem).strip("_").lower()
        pos = clip_positions(sf.info(str(t)).duration)
        for i, s in enumerate(pos):
            if i in REFERENCE_POSITIONS:
                out = dest / "reference" / f"{stem}_{i}.flac"
            else:
                out = dest / "heldout" / f"demo-{k:02d}.flac"
                k += 1
            _write_clip(t, s, out)
            clips.append({"track": t.name, "start_s": s, "duration_s": CLIP_S, "file": str(out.relative_to(dest))})
    atomic_write_json(done, {"license": LICENSE, "source": PACKAGE, "clips": clips})
    log.info("demo audio ready in %s (%d clips)", dest, len(clips))
    return dest


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(prepare())
