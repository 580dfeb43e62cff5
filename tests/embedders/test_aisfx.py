"""aiSFX: Essentia front end vs golden values from Essentia 2.1b6 (the ISMIR pipeline), blocking and the
network vs the aisfx package's own code (loaded from its files), checkpoint loading, behaviour.

Model tests need the ``aisfx==0.1.2`` wheel (scripts/setup.sh installs it with --no-deps); they skip without it.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.checkpoints import CheckpointUnavailable  # noqa: E402
from bench.embedders.aisfx import (  # noqa: E402
    CHECKPOINT_SHA256,
    AISFXEmbedder,
    block_starts,
    essentia_mel_filterbank,
    hann_symmetric,
    installed_checkpoint,
    load_embedding_state,
    log_mel,
    make_blocks,
    n_essentia_frames,
)
from bench.embedders.base import EmbedderUnavailable  # noqa: E402

SR = 44100


def golden_signal(n: int) -> np.ndarray:
    t = np.arange(n) / SR
    x = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * (200 * t + 4000 * t**2)) * np.exp(-3 * t)
    return x.astype(np.float32)


#: aisfx.spectrogram.spectrogram_essentia.compute_spectrogram(sr=44100, block_size=2048, hop_size=1024,
#: n_mels=96, f_min=0, f_max=22050) with essentia 2.1b6.dev1389 on golden_signal(5000) written as a float
#: WAV (no resampling), every 8th mel band, rounded to 5 decimals (before the /9.4578 normalisation).
ESSENTIA_LOGMEL_5000 = np.array(
    [
        [6.54839, 7.37326, 6.15103, 4.71444, 3.84557, 3.13821, 2.51111, 1.93770, 1.41468, 0.95756, 0.60140, 0.37924],
        [1.85036, 6.70293, 4.82530, 0.02068, 0.00045, 0.00002, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.34123, 1.42145, 7.56768, 0.33987, 0.00071, 0.00003, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.46143, 2.39689, 5.61146, 3.33902, 0.00296, 0.00004, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [2.49780, 3.16560, 3.39045, 7.12654, 1.44320, 0.92087, 0.60851, 0.39384, 0.24869, 0.15608, 0.10083, 0.07103],
        [5.67745, 6.11901, 6.10806, 6.85228, 4.46723, 3.82878, 3.42878, 3.10402, 2.81957, 2.56605, 2.34716, 2.18005],
    ],
    dtype=np.float32,
)
#: number of frames Essentia's streaming FrameCutter produced for these lengths (same pipeline)
ESSENTIA_FRAME_COUNTS = {1: 2, 500: 2, 1024: 2, 1025: 3, 2048: 3, 3000: 4, 5000: 6}


def _frontend(x: np.ndarray) -> np.ndarray:
    fb = torch.from_numpy(essentia_mel_filterbank())
    return log_mel(torch.from_numpy(x), fb, torch.from_numpy(hann_symmetric(2048))).numpy()


def test_frontend_matches_essentia_golden() -> None:
    ours = _frontend(golden_signal(5000)) * 9.457798957824707  # undo the paper's min-max normalisation
    assert ours.shape == (6, 96)
    np.testing.assert_allclose(ours[:, ::8], ESSENTIA_LOGMEL_5000, atol=2e-5, rtol=2e-5)


@pytest.mark.parametrize("n, expected", sorted(ESSENTIA_FRAME_COUNTS.items()))
def test_frame_count_matches_essentia(n: int, expected: int) -> None:
    assert n_essentia_frames(n) == expected
    assert _frontend(golden_signal(n)).shape == (expected, 96)


def test_filterbank_properties() -> None:
    fb = essentia_mel_filterbank()
    assert fb.shape == (96, 1025)
    np.testing.assert_allclose(fb.sum(axis=1), 1.0, rtol=1e-5)  # unit_sum
    peaks = fb.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all() and peaks[-1] > 900  # ascending centres up to ~Nyquist
    assert fb[:, 1024].max() == 0.0  # the Nyquist bin sits on the last triangle's zero
    w = hann_symmetric(2048)
    assert w[0] == 0.0 and w[-1] == 0.0 and np.allclose(w, w[::-1])  # symmetric, unnormalised


# -- the aisfx package's own code as reference (loaded from its files; the package is never imported) ----


def _pkg_file(rel: str) -> Path:
    ckpt = installed_checkpoint()
    if ckpt is None:
        pytest.skip("aisfx==0.1.2 wheel not installed (pip install --no-deps aisfx==0.1.2)")
    path = ckpt.parent.parent / rel
    if not path.is_file():
        pytest.skip(f"aisfx wheel lacks {rel}")
    return path


def _load_module(rel: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_aisfx_ref_{Path(rel).stem}", _pkg_file(rel))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("n_frames", [1, 49, 50, 99, 100, 101, 149, 150, 151, 217, 1000])
@pytest.mark.parametrize("hop_mult, drop", [(0.5, True), (0.5, False), (0.25, True), (1.0, True)])
def test_blocking_matches_aisfx(n_frames: int, hop_mult: float, drop: bool) -> None:
    ref_mod = _load_module("preprocessing.py")
    spec = np.random.default_rng(n_frames).random((n_frames, 96)).astype(np.float32)
    hop = int(np.round(100 * hop_mult))
    if hop >= n_frames:  # aisfx asserts hop < n_frames; we allow it (one zero-padded block)
        assert len(block_starts(n_frames, 100, hop, drop)) >= 1
        return
    assert ref_mod.compute_hopSize(100, hop_mult, spec) == hop
    ref = ref_mod.blocking(spec, block_size=100, hop_size=hop, drop_partial_block=drop)
    ours = make_blocks(torch.from_numpy(spec), 100, hop, drop).numpy()
    np.testing.assert_array_equal(ours, ref.astype(np.float32))


@pytest.fixture(scope="module")
def aisfx() -> AISFXEmbedder:
    if installed_checkpoint() is None:
        pytest.skip("aisfx==0.1.2 wheel not installed (pip install --no-deps aisfx==0.1.2)")
    return AISFXEmbedder(device="cpu", batch_size=4)


def test_checkpoint_needs_numpy_scalar_allowlist(aisfx: AISFXEmbedder) -> None:
    """Plain weights_only loading refuses the pickle (numpy int64 scalars in ds_dict); ours allows only those."""
    with pytest.raises(Exception, match="numpy"):
        torch.load(aisfx.checkpoint_path, map_location="cpu", weights_only=True)
    state, ds = load_embedding_state(aisfx.checkpoint_path)
    assert len(state) == 4 * 2 * 6 and state["conv_block4.conv2.weight"].shape == (512, 512, 3, 3)
    assert ds["prosfx"] == (0, 78) and len(ds) == 9  # 9 training libraries, one head each
    assert aisfx.sha256 == CHECKPOINT_SHA256


def test_network_matches_aisfx_cnn2d(aisfx: AISFXEmbedder) -> None:
    cnn2d = _load_module("models/cnn2d.py")
    state, _ = load_embedding_state(aisfx.checkpoint_path)
    ref = cnn2d.EmbeddingNet("max", 3, 1, 64)
    ref.load_state_dict(state)
    ref.eval()
    rng = np.random.default_rng(0)
    wav = (0.2 * rng.standard_normal(SR * 3) + golden_signal(SR * 3)).astype(np.float32)
    blocks = aisfx.blocks(wav)
    assert blocks.shape == (len(block_starts(n_essentia_frames(SR * 3))), 100, 96)
    with torch.no_grad():
        expected = ref(blocks).numpy()
    out = aisfx.embed(wav)["emb"]
    assert out.shape == (blocks.shape[0], 512) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def _sounds() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    n = int(SR * 2.5)
    t = np.arange(n) / SR
    env = np.exp(-8 * (t % 0.5))
    return {
        "noise_a": (0.3 * rng.standard_normal(n) * env).astype(np.float32),
        "noise_b": (0.3 * rng.standard_normal(n) * env).astype(np.float32),
        "tone": (0.3 * np.sin(2 * np.pi * 880 * t)).astype(np.float32),
    }


def test_embeddings_separate_noise_from_tone(aisfx: AISFXEmbedder) -> None:
    out = {k: aisfx.embed(v)["emb"].mean(0) for k, v in _sounds().items()}

    def cos(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    assert cos(out["noise_a"], out["noise_b"]) > 0.95
    assert cos(out["noise_a"], out["noise_b"]) > cos(out["noise_a"], out["tone"]) + 0.05


def test_block_counts(aisfx: AISFXEmbedder) -> None:
    short, long = aisfx.embed(golden_signal(SR // 2)), aisfx.embed(_sounds()["noise_a"])
    assert short["emb"].shape == (1, 512)  # 0.5 s -> 23 frames -> one zero-padded block
    n_frames = n_essentia_frames(int(SR * 2.5))
    assert long["emb"].shape[0] == math.ceil((n_frames - 100) / 50 + 1) - ((n_frames - 100) % 50 != 0)


def test_params_and_checkpoints(aisfx: AISFXEmbedder) -> None:
    p = aisfx.params()
    assert p["checkpoint_sha256"] == CHECKPOINT_SHA256
    assert p["audio"]["sample_rate"] == SR and p["block_hop_frames"] == 50 and p["block_frames"] == 100
    assert aisfx.checkpoints()["aisfx"]["sha256"] == CHECKPOINT_SHA256
    other = AISFXEmbedder(emb_hop=0.25, device="cpu")
    assert other.params()["block_hop_frames"] == 25


def test_missing_checkpoint_raises_with_howto(tmp_path, monkeypatch) -> None:
    with pytest.raises(CheckpointUnavailable, match="does not exist"):
        AISFXEmbedder(checkpoint=str(tmp_path / "missing.pth"), device="cpu")
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path))
    monkeypatch.setenv("GENAUDIO_BENCH_OFFLINE", "1")
    monkeypatch.setattr("bench.embedders.aisfx.installed_checkpoint", lambda: None)
    with pytest.raises(EmbedderUnavailable, match=r"pip install --no-deps aisfx==0\.1\.2"):
        AISFXEmbedder(device="cpu")
    bad = tmp_path / "checkpoint.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointUnavailable, match="sha256"):
        AISFXEmbedder(checkpoint=str(bad), device="cpu")
