"""Shared test setup: offline environment, tiny audio corpora and small run configs.

At import: every network-touching library is put offline (``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``,
``GENAUDIO_BENCH_OFFLINE``) and matplotlib uses the Agg backend. ``GENAUDIO_BENCH_HOME`` is *not*
changed globally (some tests find weights shipped in site-packages or the user cache); fixtures
that write into it use :func:`bench_home_tmp`.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "GENAUDIO_BENCH_OFFLINE"):
    os.environ[_var] = "1"
os.environ["MPLBACKEND"] = "Agg"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
if str(REPO_ROOT) not in sys.path:  # test helpers shared with the benchmarks: ``benchmarks.peers``
    sys.path.append(str(REPO_ROOT))

#: prompts of the tiny corpus: (id, text); each has a paired reference clip
TINY_PROMPTS = [
    ("p0", "slow piano ballad, sad and calm"),
    ("p1", "upbeat techno with drums, 128 bpm"),
    ("p2", "acoustic guitar folk song"),
    ("p3", "orchestral strings, dark and tense"),
    ("p4", "relaxing ambient synth pad"),
    ("p5", "energetic brass fanfare with drums"),
]


def tone_clip(rng: np.random.Generator, sr: int, seconds: float) -> np.ndarray:
    """A short 'real-ish' clip ``(n,)`` float32: a few decaying harmonic notes over faint noise."""
    n = int(round(sr * seconds))
    t = np.arange(n) / sr
    x = np.zeros(n)
    n_notes = int(rng.integers(2, 5))
    for k in range(n_notes):
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        start = int(k * n / n_notes)
        tt = t[: n - start]
        env = np.exp(-tt * rng.uniform(2.0, 6.0)) * np.minimum(tt / 0.01, 1.0)
        note = sum((0.6 / h) * np.sin(2 * np.pi * f0 * h * tt + rng.uniform(0, 6.28)) for h in range(1, 6)
                   if f0 * h < sr / 2)
        x[start:] += env * note
    x += 0.003 * rng.standard_normal(n)
    return (0.5 * x / max(np.max(np.abs(x)), 1e-9)).astype(np.float32)


def write_clip(path: Path, x: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, subtype=subtype)
    return path


def make_tiny_corpus(root: Path, n_reference: int = 8, seconds: float = 1.0, seed: int = 0) -> Path:
    """``root/reference/r*.wav`` (16 kHz mono), ``root/paired/<id>.wav`` (22.05 kHz stereo) and
    ``root/prompts.csv`` (id,text,reference). Returns ``root``."""
    rng = np.random.default_rng(seed)
    for i in range(n_reference):
        write_clip(root / "reference" / f"r{i:02d}.wav", tone_clip(rng, 16000, seconds), 16000)
    rows = []
    for pid, text in TINY_PROMPTS:
        left, right = tone_clip(rng, 22050, seconds), tone_clip(rng, 22050, seconds)
        write_clip(root / "paired" / f"{pid}.wav", np.stack([left, right], axis=1), 22050)
        rows.append({"id": pid, "text": text, "reference": f"paired/{pid}.wav"})
    with open(root / "prompts.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "text", "reference"])
        w.writeheader()
        w.writerows(rows)
    return root


@pytest.fixture(scope="session")
def tiny_audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny corpus (read-only by convention): 8 reference clips, 6 prompts with paired clips, 1 s each."""
    return make_tiny_corpus(tmp_path_factory.mktemp("tiny_audio"))


@pytest.fixture
def bench_home_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``GENAUDIO_BENCH_HOME`` at a fresh temp dir for this test."""
    home = tmp_path_factory.mktemp("bench_home")
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(home))
    return home


def tiny_run_config(root: Path, corpus: Path, **overrides: Any) -> dict[str, Any]:
    """A small, fast run config (plain dict for :func:`bench.run`) writing only under ``root``.

    Models oracle/synth/noise (1 s clips), the corpus' prompts and reference folder, the weight-free
    logmel embedder (32 mels, 0.1 s segments) and FAD without bootstrap. ``overrides`` replace
    top-level keys (``model={...}`` replaces the whole group).
    """
    cfg: dict[str, Any] = {
        "run_name": "tiny",
        "output_dir": str(root / "results"),
        "cache_dir": str(root / "cache"),
        "datasets_dir": str(corpus),
        "device": "cpu",
        "batch_size": 4,
        "seed": 0,
        "on_error": "skip",
        "progress": False,
        "stages": ["gather", "embed", "score"],
        "shard": {"index": 0, "count": 1},
        "report_formats": [],
        "prepare_demo": False,
        "model": {
            "oracle": {"_target_": "bench.models.baselines.OracleModel"},
            "synth": {"_target_": "bench.models.baselines.SynthModel", "sample_rate": 16000, "duration_s": 1.0,
                      "seed": 0, "batch_size": 4},
            "noise": {"_target_": "bench.models.baselines.NoiseModel", "sample_rate": 16000, "duration_s": 1.0,
                      "seed": 0},
        },
        "prompts": {
            "tiny": {"_target_": "bench.prompts.PromptSet.from_csv", "name": "tiny",
                     "path": str(corpus / "prompts.csv"), "reference_column": "reference"},
        },
        "reference": {
            "tiny": {"_target_": "bench.references.ReferenceSet.from_folder", "name": "tiny",
                     "path": str(corpus / "reference"), "pattern": "*.wav"},
        },
        "embedder": {
            "logmel": {"_target_": "bench.embedders.logmel.LogMelEmbedder", "n_mels": 32, "segment_s": 0.1,
                       "device": "cpu", "batch_size": 4},
        },
        "metric": {"fad": {"_target_": "bench.metrics.fad.FAD", "n_bootstrap": 0, "per_sample": True}},
    }
    cfg.update(overrides)
    return cfg


@pytest.fixture
def run_cfg(tiny_audio_dir: Path) -> Callable[..., dict[str, Any]]:
    """Factory ``run_cfg(tmp_path, **overrides) -> dict``: :func:`tiny_run_config` on the tiny corpus."""

    def make(root: Path, **overrides: Any) -> dict[str, Any]:
        return tiny_run_config(Path(root), tiny_audio_dir, **overrides)

    return make


def files_under(root: Path) -> set[Path]:
    """Every file (and symlink) below ``root``, as absolute paths."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            out.add(Path(dirpath, name))
    return out


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for ``python -c 'import bench ...'`` subprocesses (offline, repo importable)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@pytest.fixture(scope="session")
def helpers():
    """The module-level helpers of this conftest, for tests (conftest modules are not importable by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        tone_clip=tone_clip, write_clip=write_clip, make_tiny_corpus=make_tiny_corpus,
        tiny_run_config=tiny_run_config, files_under=files_under, python=PYTHON, repo_root=REPO_ROOT,
        prompts=TINY_PROMPTS,
    )


def _built_once(tmp_path_factory: pytest.TempPathFactory, builders: dict[str, Callable[[Path], Path]]):
    """``get(kind) -> Path``: ``builders[kind]`` run once (torch single-threaded) into a fresh temp folder."""
    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            import torch

            n = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                built[kind] = builders[kind](tmp_path_factory.mktemp(kind))
            finally:
                torch.set_num_threads(n)
        return built[kind]

    return get


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``tiny_checkpoint(kind) -> Path``: a tiny random checkpoint of an official generator architecture
    (``tests/tiny_generators.py``: musicgen, audioldm, audioldm2, riffusion, stable_audio), built once a session."""
    from tests import tiny_generators

    return _built_once(tmp_path_factory, tiny_generators.BUILDERS)


@pytest.fixture(scope="session")
def tiny_embedder_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``tiny_embedder_checkpoint(kind) -> Path``: a random checkpoint of an official embedder architecture in
    its released layout (``tests/tiny_embedders.py``: vggish, pann_16k, clap_htsat_tiny, ...), built once a session."""
    from tests import tiny_embedders

    return _built_once(tmp_path_factory, tiny_embedders.BUILDERS)


@pytest.fixture(scope="session")
def tiny_embedder_overrides(tiny_embedder_checkpoint) -> Callable[[str], dict[str, Any]]:
    """``tiny_embedder_overrides(key) -> dict``: constructor overrides that build ``configs/embedder/<key>.yaml``
    here (its ``checkpoint`` etc. on :func:`tiny_embedder_checkpoint` files; ``{}`` when it needs no weights)."""
    from tests import tiny_embedders

    return lambda key: tiny_embedders.overrides(key, tiny_embedder_checkpoint)


@pytest.fixture(scope="module")
def single_thread():
    """Run torch single-threaded for the test: tiny CPU ops are 10x+ slower with spinning intra-op threads
    on a busy 2-core machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.gpu`` tests run only where CUDA is available (scripts/gpu_check.sh)."""
    gpu_items = [it for it in items if it.get_closest_marker("gpu")]
    if not gpu_items:
        return
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    if not has_cuda:
        skip = pytest.mark.skip(reason="needs CUDA (run scripts/gpu_check.sh on a GPU machine)")
        for it in gpu_items:
            it.add_marker(skip)
