"""Throughput of our VGGish / PANN embedders vs frechet-audio-distance's pipelines on the same files.

    .venv/bin/python benchmarks/bench_embedders.py [--clips 6] [--seconds 10] [--device cpu] [--audio-dir DIR]

Pipelines timed (load = decode + mono + resample to 16 kHz; embed = front end + network):

- ``ours-vggish``: ``bench.audio.load_audio`` (resampy kaiser_best) + ``VGGishEmbedder.embed_batch``
  (torch front end, examples of ``--batch-size`` clips per forward pass).
- ``fad-vggish``: frechet-audio-distance's ``load_audio_task`` (soundfile + mean + resampy) + what its
  torch.hub torchvggish model does per clip: numpy ``vggish_input`` front end (transcribed here, torchvggish
  is not installable offline) and one forward pass per clip.
- ``ours-pann``: ``load_audio`` (torchaudio sinc) + ``PANNEmbedder.embed_batch`` (equal lengths batched).
- ``fad-pann``: ``load_audio_task`` + frechet-audio-distance's own ``Cnn14_16k``, one clip per pass.

Weights: the real checkpoints when resolvable, else random weights of the real architectures (throughput
does not depend on the values; the table says which). Default files: generated 44.1 kHz stereo clips.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.audio import load_audio, write_audio  # noqa: E402
from bench.checkpoints import CheckpointUnavailable  # noqa: E402
from bench.embedders.mel import periodic_hann, vggish_mel_matrix  # noqa: E402
from bench.embedders.pann import PANNEmbedder  # noqa: E402
from bench.embedders.vggish import VGGishEmbedder, VGGishNet  # noqa: E402


def fad_module(name: str):
    """A frechet_audio_distance submodule without its package __init__ (which imports laion_clap)."""
    spec = importlib.util.find_spec("frechet_audio_distance")
    if spec is None:
        raise SystemExit("frechet_audio_distance is not installed")
    if "_fad_ref" not in sys.modules:
        pkg = types.ModuleType("_fad_ref")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["_fad_ref"] = pkg
    return importlib.import_module(f"_fad_ref.{name}")


def make_clips(folder: Path, n: int, seconds: float, sr: int = 44100) -> list[Path]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    paths = []
    for i in range(n):
        f0 = 110 * 2 ** (i / 3)
        tone = 0.3 * np.sin(2 * np.pi * f0 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
        x = np.stack([tone + 0.05 * rng.standard_normal(t.size), tone + 0.05 * rng.standard_normal(t.size)], 1)
        p = folder / f"clip{i:02d}.wav"
        write_audio(p, x.astype(np.float32), sr)
        paths.append(p)
    return paths


# -- torchvggish-equivalent reference (numpy front end as vggish_input / mel_features) --------------------


def vggish_input_numpy(wav: np.ndarray) -> np.ndarray:
    """``vggish_input.waveform_to_examples`` for 16 kHz mono input: (N, 96, 64) float64."""
    win, hop, n_fft = 400, 160, 512
    n_frames = 1 + (len(wav) - win) // hop
    frames = np.lib.stride_tricks.as_strided(wav, (n_frames, win), (wav.strides[0] * hop, wav.strides[0]))
    spec = np.abs(np.fft.rfft(frames * periodic_hann(win), n_fft))
    log_mel = np.log(spec @ vggish_mel_matrix(n_fft // 2 + 1) + 0.01)
    n_ex = 1 + (log_mel.shape[0] - 96) // 96
    return np.stack([log_mel[i * 96 : i * 96 + 96] for i in range(n_ex)])


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def random_checkpoints(tmp: Path) -> dict[str, Path]:
    torch.manual_seed(0)
    v = tmp / "vggish_random.pth"
    torch.save(VGGishNet().state_dict(), v)
    ref = fad_module("models.pann").Cnn14_16k(
        sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000, classes_num=527
    )
    p = tmp / "cnn14_16k_random.pth"
    torch.save({"model": ref.state_dict()}, p)
    return {"vggish": v, "pann": p}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--audio-dir", type=Path, default=None, help="use these files instead of generated ones")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        if args.audio_dir:
            paths = sorted(p for p in args.audio_dir.iterdir() if p.suffix.lower() in (".wav", ".flac", ".ogg"))
        else:
            paths = make_clips(tmp, args.clips, args.seconds)
        fad_utils = fad_module("utils")
        Cnn14_16k = fad_module("models.pann").Cnn14_16k

        weights = "real"
        try:
            vgg = VGGishEmbedder(device=args.device, batch_size=args.batch_size)
            pann = PANNEmbedder(device=args.device, batch_size=args.batch_size)
        except CheckpointUnavailable:
            weights = "random (same architectures)"
            ck = random_checkpoints(tmp)
            vgg = VGGishEmbedder(checkpoint=str(ck["vggish"]), device=args.device, batch_size=args.batch_size)
            pann = PANNEmbedder(checkpoint=str(ck["pann"]), device=args.device, batch_size=args.batch_size)

        # reference networks with the same weights
        ref_vgg = VGGishNet()
        ref_vgg.load_state_dict(vgg.net.state_dict())
        ref_vgg.eval().to(args.device)
        ref_pann = Cnn14_16k(
            sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000, classes_num=527
        )
        ref_pann.load_state_dict(torch.load(pann.checkpoint_path, map_location="cpu", weights_only=False)["model"])
        ref_pann.eval().to(args.device)

        rows = []

        # warm-up (numba JIT of resampy, torch kernels)
        w0 = load_audio(paths[0], vgg.audio)
        vgg.embed_batch([w0[:32000]])
        pann.embed_batch([w0[:32000]])
        fad_utils.load_audio_task(str(paths[0]), 16000, 1, "float32")

        wavs, t_load, c_load = timed(lambda: [load_audio(p, vgg.audio) for p in paths])
        audio_s = sum(len(w) for w in wavs) / 16000
        _, t_emb, c_emb = timed(lambda: vgg.embed_batch(wavs))
        rows.append(("ours-vggish", t_load, c_load, t_emb, c_emb))

        fwavs, t_load_fad, c_load_fad = timed(
            lambda: [fad_utils.load_audio_task(str(p), 16000, 1, "float32") for p in paths]
        )

        def fad_vggish():
            out = []
            with torch.no_grad():
                for w in fwavs:
                    ex = torch.from_numpy(vggish_input_numpy(np.asarray(w, np.float64))).float()[:, None]
                    out.append(ref_vgg(ex.to(args.device)).cpu().numpy())
            return out

        _, t_emb, c_emb = timed(fad_vggish)
        rows.append(("fad-vggish", t_load_fad, c_load_fad, t_emb, c_emb))

        pwavs, t_load, c_load = timed(lambda: [load_audio(p, pann.audio) for p in paths])
        _, t_emb, c_emb = timed(lambda: pann.embed_batch(pwavs))
        rows.append(("ours-pann", t_load, c_load, t_emb, c_emb))

        def fad_pann():
            out = []
            with torch.no_grad():
                for w in fwavs:
                    x = torch.tensor(w).float().unsqueeze(0).to(args.device)
                    out.append(ref_pann(x, None)["embedding"].data[0].cpu().numpy())
            return out

        _, t_emb, c_emb = timed(fad_pann)
        rows.append(("fad-pann", t_load_fad, c_load_fad, t_emb, c_emb))  # fad decodes once for either model

        print(
            f"\n{len(paths)} clips, {audio_s:.0f} s of audio, device={args.device}, torch threads={torch.get_num_threads()},"
            f" weights: {weights}\n"
        )
        print(
            f"{'pipeline':<12} {'load s':>8} {'load cpu s':>10} {'embed s':>8} {'embed cpu s':>11} {'clips/s':>8}"
            f" {'x realtime':>10}"
        )
        for name, tl, cl, te, ce in rows:
            total = tl + te
            print(
                f"{name:<12} {tl:8.2f} {cl:10.2f} {te:8.2f} {ce:11.2f} {len(paths) / total:8.2f} {audio_s / total:10.1f}"
            )


if __name__ == "__main__":
    main()
