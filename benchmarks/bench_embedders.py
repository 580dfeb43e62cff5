"""Embedding throughput per backend: our embedders vs frechet-audio-distance's pipelines on the same files.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_embedders.py [--backends vggish,pann,...] [--clips 4]
        [--seconds 10] [--repeats 3] [--device cpu] [--audio-dir DIR] [--out benchmarks/results/bench_embedders.json]

Every backend times the same files through two stages, each with wall-clock and process CPU time (all
threads): **load** = decode + mono + resample to the backend's rate, **embed** = front end + network.
Throughput is reported as audio seconds per wall second ("x realtime") and audio seconds per CPU second,
from the fastest of ``--repeats`` passes per stage (best-of-N, as timeit advises: the machine may be
shared; every pass and the 1-minute load average before each pipeline are kept in the JSON). One untimed
warm-up (first file loaded, its first 5 s embedded) runs before each pipeline (numba JIT of resampy, torch
kernel selection). Loading is sequential on both sides (frechet-audio-distance itself loads with a thread
pool of 8; its per-file work is the same).

Our pipelines (``ours-<backend>``): ``bench.audio.load_audio(path, embedder.audio)`` for every file, then one
``embedder.embed_batch(all waveforms)`` call (``--batch-size`` windows/clips per forward pass).

Peers, where frechet-audio-distance 0.3.4 (``fad-*``) has the backend and can be built offline:

- ``fad-vggish``: its ``load_audio_task`` (soundfile + mean + resampy kaiser_best to 16 kHz) + what its
  torch.hub torchvggish model does per clip: numpy ``vggish_input`` front end (transcribed here, torchvggish
  is fetched from GitHub by torch.hub and not installable offline) and one forward pass per clip.
- ``fad-pann``: ``load_audio_task`` + its own ``Cnn14_16k``, one clip per pass (its ``get_embeddings`` loop).
- ``fad-clap``: the real ``FrechetAudioDistance(model_name="clap")`` object and its ``get_embeddings`` (one
  ``laion_clap`` ``get_audio_embedding_from_data(use_tensor=True)`` call per clip, without ``no_grad``), after
  ``load_audio_task`` at 48 kHz. Built offline by letting the HF ``from_pretrained`` calls that laion_clap makes
  at import / construction return a randomly initialised RobertaModel (the text tower is unused for audio) and
  None for the three tokenizers, and by putting a random-init HTSAT-tiny CLAP checkpoint in its ``ckpt_dir``.
- ``fad-encodec``: the real ``FrechetAudioDistance(model_name="encodec", sample_rate=24000)`` and its
  ``get_embeddings`` (``model.encoder`` on one whole clip per pass) after ``load_audio_task`` at 24 kHz; its
  ``EncodecModel.encodec_model_24khz()`` (which downloads the weights) is made to return the same random-init
  model our embedder loads.

Backends with no frechet-audio-distance counterpart (musicnn, aisfx, logmel, mert, openl3, passt) are timed on
our side only. Weights: musicnn (MSD_musicnn) and aisfx use the real weights shipped in their wheels; VGGish and
PANN use the real checkpoints when resolvable, else random weights; CLAP (HTSAT-tiny audio tower; 1-layer text
tower, unused here), EnCodec 24 kHz, MERT-v1-95M (HubertModel with the published MERT-v1-95M config values),
OpenL3 (mel256, 512-d) and PaSST-S are random initialisations of the real architectures (throughput does not
depend on the values; the table says which). Default files: generated 44.1 kHz stereo clips.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import importlib
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.audio import load_audio, write_audio  # noqa: E402
from bench.checkpoints import CheckpointUnavailable  # noqa: E402
from bench.embedders.base import Embedder, EmbedderUnavailable  # noqa: E402
from bench.embedders.frontends import periodic_hann, vggish_mel_matrix  # noqa: E402

ORDER = ("vggish", "pann", "musicnn", "aisfx", "logmel", "clap", "encodec", "mert", "openl3", "passt")
WARMUP_S = 5.0
RESULTS = ROOT / "benchmarks" / "results"

from benchmarks.random_embedders import CLAP_TEXT, MERT_V1_95M_CONFIG  # noqa: E402  (one definition)

# -- helpers ------------------------------------------------------------------------------------------------


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


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@contextmanager
def patched(*patches: tuple[Any, str, Any]) -> Iterator[None]:
    """Temporarily set attributes ``(obj, name, value)``; restores (or removes) them afterwards."""
    undo = []
    for obj, name, value in patches:
        if name in vars(obj):
            undo.append((obj, name, vars(obj)[name]))
        else:
            undo.append((obj, name, None))
        setattr(obj, name, value)
    try:
        yield
    finally:
        for obj, name, old in reversed(undo):
            if old is None:
                delattr(obj, name)
            else:
                setattr(obj, name, old)


@contextmanager
def torch_hub_dir_kept() -> Iterator[None]:
    """FrechetAudioDistance(ckpt_dir=...) calls torch.hub.set_dir; undo that afterwards."""
    old = torch.hub.get_dir()
    try:
        yield
    finally:
        torch.hub.set_dir(old)


# -- pipelines ----------------------------------------------------------------------------------------------


@dataclass
class Pipeline:
    """One way of turning files into embeddings: ``load(path) -> wav`` and ``embed(wavs) -> per-clip rows``."""

    name: str
    load: Callable[[Path], np.ndarray]
    embed: Callable[[Sequence[np.ndarray]], list[int]]
    sample_rate: int


@dataclass
class Backend:
    key: str
    ours: Pipeline
    peer: Pipeline | None
    weights: str
    note: str = ""


def ours_pipeline(emb: Embedder) -> Pipeline:
    def embed(wavs):
        return [int(o["emb"].shape[0]) for o in emb.embed_batch(list(wavs))]

    return Pipeline(f"ours-{emb.name}", lambda p: load_audio(p, emb.audio), embed, emb.audio.sample_rate)


def fad_loader(sr: int) -> Callable[[Path], np.ndarray]:
    load_audio_task = fad_module("utils").load_audio_task
    return lambda p: load_audio_task(str(p), sr, 1, "float32")


@dataclass
class Ctx:
    tmp: Path
    device: str
    batch_size: int


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


# -- backends -----------------------------------------------------------------------------------------------


def build_vggish(ctx: Ctx) -> Backend:
    from bench.embedders.vggish import VGGishEmbedder, VGGishNet

    weights = "real"
    try:
        vgg = VGGishEmbedder(device=ctx.device, batch_size=ctx.batch_size)
    except CheckpointUnavailable:
        weights = "random (real architecture)"
        torch.manual_seed(0)
        path = ctx.tmp / "vggish_random.pth"
        torch.save(VGGishNet().state_dict(), path)
        vgg = VGGishEmbedder(checkpoint=str(path), device=ctx.device, batch_size=ctx.batch_size)
    ref = VGGishNet()
    ref.load_state_dict(vgg.net.state_dict())
    ref.eval().to(ctx.device)

    def fad_vggish(wavs):
        rows = []
        with torch.no_grad():
            for w in wavs:
                ex = torch.from_numpy(vggish_input_numpy(np.asarray(w, np.float64))).float()[:, None]
                rows.append(int(ref(ex.to(ctx.device)).cpu().numpy().shape[0]))
        return rows

    peer = Pipeline("fad-vggish", fad_loader(16000), fad_vggish, 16000)
    return Backend("vggish", ours_pipeline(vgg), peer, weights, "fad side: torchvggish transcribed")


def build_pann(ctx: Ctx) -> Backend:
    from bench.embedders.pann import PANNEmbedder

    Cnn14_16k = fad_module("models.pann").Cnn14_16k
    cfg = dict(sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000, classes_num=527)
    weights = "real"
    try:
        pann = PANNEmbedder(device=ctx.device, batch_size=ctx.batch_size)
    except CheckpointUnavailable:
        weights = "random (real architecture)"
        torch.manual_seed(0)
        path = ctx.tmp / "cnn14_16k_random.pth"
        torch.save({"model": Cnn14_16k(**cfg).state_dict()}, path)
        pann = PANNEmbedder(checkpoint=str(path), device=ctx.device, batch_size=ctx.batch_size)
    ref = Cnn14_16k(**cfg)
    ref.load_state_dict(torch.load(pann.checkpoint_path, map_location="cpu", weights_only=False)["model"])
    ref.eval().to(ctx.device)

    def fad_pann(wavs):  # FrechetAudioDistance.get_embeddings, model_name="pann"
        rows = []
        with torch.no_grad():
            for w in wavs:
                x = torch.tensor(w).float().unsqueeze(0).to(ctx.device)
                ref(x, None)["embedding"].data[0].cpu().numpy()
                rows.append(1)
        return rows

    return Backend("pann", ours_pipeline(pann), Pipeline("fad-pann", fad_loader(16000), fad_pann, 16000), weights)


def build_musicnn(ctx: Ctx) -> Backend:
    from bench.embedders.musicnn import MusicnnEmbedder

    emb = MusicnnEmbedder("MSD_musicnn", device=ctx.device, batch_size=ctx.batch_size)
    return Backend("musicnn", ours_pipeline(emb), None, "real (MSD_musicnn, musicnn wheel)")


def build_aisfx(ctx: Ctx) -> Backend:
    from bench.embedders.aisfx import AISFXEmbedder

    emb = AISFXEmbedder(device=ctx.device, batch_size=ctx.batch_size)
    return Backend("aisfx", ours_pipeline(emb), None, "real (aisfx wheel)")


def build_logmel(ctx: Ctx) -> Backend:
    from bench.embedders.logmel import LogMelEmbedder

    emb = LogMelEmbedder(device=ctx.device, batch_size=ctx.batch_size)
    return Backend("logmel", ours_pipeline(emb), None, "none (no weights)")


@contextmanager
def laion_clap_offline(text_cfg: dict[str, Any]) -> Iterator[None]:
    """HF ``from_pretrained`` calls laion_clap makes at import / CLAP_Module() work offline: the three
    tokenizers (text only, unused here) become None, ``RobertaModel`` a random one of ``text_cfg``."""
    import transformers

    from bench.embedders.clap import ROBERTA_BASE

    cfg = transformers.RobertaConfig(**{**ROBERTA_BASE, **text_cfg})
    none = classmethod(lambda cls, *a, **k: None)
    with patched(
        (transformers.BertTokenizer, "from_pretrained", none),
        (transformers.RobertaTokenizer, "from_pretrained", none),
        (transformers.BartTokenizer, "from_pretrained", none),
        (transformers.RobertaModel, "from_pretrained", classmethod(lambda cls, *a, **k: cls(cfg))),
    ):
        yield


def build_clap(ctx: Ctx) -> Backend:
    from bench.embedders.clap import ClapEmbedder, build_clap_model

    torch.manual_seed(0)
    model, _ = build_clap_model("HTSAT-tiny", False, CLAP_TEXT)
    sd = {"module." + k: v for k, v in model.state_dict().items()}  # laion_clap training-checkpoint layout
    sd["module.text_branch.embeddings.position_ids"] = torch.arange(CLAP_TEXT["max_position_embeddings"])[None]
    fad_dir = ctx.tmp / "fad_ckpt"
    fad_dir.mkdir(exist_ok=True)
    path = fad_dir / "630k-audioset-best.pt"  # the file FrechetAudioDistance(model_name="clap") looks for
    torch.save({"state_dict": sd}, path)
    del model, sd
    emb = ClapEmbedder(checkpoint=path, text_config=CLAP_TEXT, device=ctx.device, batch_size=ctx.batch_size)
    weights = "random (HTSAT-tiny; 1-layer text tower)"
    try:
        with laion_clap_offline(CLAP_TEXT), torch_hub_dir_kept():
            from frechet_audio_distance import FrechetAudioDistance

            with contextlib.redirect_stdout(io.StringIO()):  # laion_clap prints every loaded key
                fad = FrechetAudioDistance(ckpt_dir=str(fad_dir), model_name="clap", sample_rate=48000)
    except Exception as exc:  # report why the peer is missing, keep timing ours
        return Backend("clap", ours_pipeline(emb), None, weights, f"fad-clap not constructible: {exc!r}")

    def fad_clap(wavs):
        out = fad.get_embeddings(list(wavs), 48000)  # (n_clips, 512): one random 10-s crop per clip
        return [1] * out.shape[0]

    peer = Pipeline("fad-clap", fad_loader(48000), fad_clap, 48000)
    return Backend("clap", ours_pipeline(emb), peer, weights, "fad side: real FrechetAudioDistance(clap)")


def build_encodec(ctx: Ctx) -> Backend:
    from bench.embedders.encodec import EncodecEmbedder, build_encodec_model

    torch.manual_seed(0)
    path = ctx.tmp / "encodec_24khz_random.th"
    torch.save(build_encodec_model("24khz").state_dict(), path)
    emb = EncodecEmbedder("24khz", checkpoint=path, device=ctx.device, batch_size=ctx.batch_size)
    weights = "random (encodec 24 kHz)"
    try:
        from encodec import EncodecModel

        original = EncodecModel.encodec_model_24khz

        def random_24khz(*_a, **_k):  # the same weights as ours instead of the download
            m = original(pretrained=False)
            m.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return m.eval()

        with (
            laion_clap_offline(CLAP_TEXT),
            torch_hub_dir_kept(),
            patched((EncodecModel, "encodec_model_24khz", staticmethod(random_24khz))),
        ):
            from frechet_audio_distance import FrechetAudioDistance

            fad = FrechetAudioDistance(
                ckpt_dir=str(ctx.tmp / "fad_ckpt"), model_name="encodec", sample_rate=24000, channels=1
            )
    except Exception as exc:  # report why the peer is missing, keep timing ours
        return Backend("encodec", ours_pipeline(emb), None, weights, f"fad-encodec not constructible: {exc!r}")

    def fad_encodec(wavs):
        out = fad.get_embeddings(list(wavs), 24000)  # frames of all clips, (sum T, 128)
        n = [int(np.ceil(len(w) / 320)) for w in wavs]
        if out.shape[0] != sum(n):
            raise RuntimeError(f"fad-encodec returned {out.shape[0]} frames, expected {sum(n)}")
        return n

    peer = Pipeline("fad-encodec", fad_loader(24000), fad_encodec, 24000)
    return Backend("encodec", ours_pipeline(emb), peer, weights, "fad side: real FrechetAudioDistance(encodec)")


def build_mert(ctx: Ctx) -> Backend:
    from bench.embedders.mert import MERTEmbedder, build_model

    torch.manual_seed(0)
    folder = ctx.tmp / "mert-v1-95m"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(MERT_V1_95M_CONFIG))
    torch.save(build_model(MERT_V1_95M_CONFIG).state_dict(), folder / "pytorch_model.bin")
    emb = MERTEmbedder("MERT-v1-95M", checkpoint=str(folder), device=ctx.device, batch_size=ctx.batch_size)
    return Backend("mert", ours_pipeline(emb), None, "random (MERT-v1-95M config, layer 12)", "whole clip per pass")


def build_openl3(ctx: Ctx) -> Backend:
    from bench.embedders.openl3 import OpenL3Embedder, OpenL3Net

    torch.manual_seed(0)
    path = ctx.tmp / "openl3_mel256_music_random.pt"
    torch.save(OpenL3Net("mel256", 512).state_dict(), path)
    emb = OpenL3Embedder(checkpoint=str(path), device=ctx.device, batch_size=32)
    return Backend("openl3", ours_pipeline(emb), None, "random (mel256, 512-d)", "1-s frames, hop 0.5 s, batch 32")


def build_passt(ctx: Ctx) -> Backend:
    from bench.embedders.passt import PASST_S_ARCH, PaSSTEmbedder, PaSSTNet

    torch.manual_seed(0)
    path = ctx.tmp / "passt_s_random.pt"
    torch.save(PaSSTNet(**PASST_S_ARCH).state_dict(), path)
    emb = PaSSTEmbedder(checkpoint=str(path), device=ctx.device, batch_size=ctx.batch_size)
    return Backend("passt", ours_pipeline(emb), None, "random (PaSST-S)", "10-s segments (AudioCraft protocol)")


BUILDERS: dict[str, Callable[[Ctx], Backend]] = {
    "vggish": build_vggish,
    "pann": build_pann,
    "musicnn": build_musicnn,
    "aisfx": build_aisfx,
    "logmel": build_logmel,
    "clap": build_clap,
    "encodec": build_encodec,
    "mert": build_mert,
    "openl3": build_openl3,
    "passt": build_passt,
}


# -- measurement --------------------------------------------------------------------------------------------


def run_pipeline(pipe: Pipeline, paths: Sequence[Path], repeats: int) -> dict[str, Any]:
    """Warm-up, then ``repeats`` x (load all files, embed them all); each stage's fastest pass is reported."""
    loadavg = os.getloadavg()[0]
    w0 = pipe.load(paths[0])  # warm-up: resampy JIT, torch kernels
    pipe.embed([w0[: int(WARMUP_S * pipe.sample_rate)]])
    t_load, c_load, t_emb, c_emb = [], [], [], []
    for _ in range(repeats):
        wavs, t, c = timed(lambda: [pipe.load(p) for p in paths])
        t_load.append(t)
        c_load.append(c)
        rows, t, c = timed(lambda wavs=wavs: pipe.embed(wavs))
        t_emb.append(t)
        c_emb.append(c)
    audio_s = sum(len(w) for w in wavs) / pipe.sample_rate
    best_load, best_emb = int(np.argmin(t_load)), int(np.argmin(t_emb))
    load, load_cpu, emb, emb_cpu = t_load[best_load], c_load[best_load], t_emb[best_emb], c_emb[best_emb]
    return {
        "pipeline": pipe.name,
        "loadavg_1m_before": loadavg,
        "clips": len(paths),
        "audio_s": audio_s,
        "emb_rows": int(sum(rows)),
        "repeats": repeats,
        "load_s": load,
        "load_cpu_s": load_cpu,
        "embed_s": emb,
        "embed_cpu_s": emb_cpu,
        "load_s_all": t_load,
        "embed_s_all": t_emb,
        "total_s": load + emb,
        "total_cpu_s": load_cpu + emb_cpu,
        "x_realtime": audio_s / (load + emb),
        "audio_s_per_cpu_s": audio_s / (load_cpu + emb_cpu),
        "embed_x_realtime": audio_s / emb,
    }


RATIOS = ("ratio_x_realtime", "ratio_embed", "ratio_per_cpu_s")


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"Embedding throughput, {meta['device']} ({meta['cpu_count']} CPU cores, torch threads "
        f"{meta['torch_threads']}); load average {meta['loadavg_start'][0]:.2f} at start, "
        f"{meta['loadavg_end'][0]:.2f} at end. Clips: {meta['clip_seconds']:g} s, 44.1 kHz stereo"
        + (" (generated)" if meta["generated_audio"] else "")
        + f". Best of {meta['repeats']} passes per stage. x RT = audio s per wall s (load + embed); "
        "/CPU s = audio s per process CPU s (all threads); "
        "ours/peer = ratio of x RT (higher = ours faster); load avg = 1-min load average before the pipeline "
        "(the benchmark's own threads count too).",
        "",
        "| backend | pipeline | clips | weights | load s | embed s | x RT | embed-only x RT | audio s / CPU s "
        "| ours/peer x RT | ours/peer embed | ours/peer /CPU s | load avg |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratios = [f"{r[k]:.2f}" if r.get(k) is not None else "" for k in RATIOS]
        lines.append(
            f"| {r['backend']} | {r['pipeline']} | {r['clips']} | {r['weights']} | {r['load_s']:.2f} | "
            f"{r['embed_s']:.2f} | {r['x_realtime']:.1f} | {r['embed_x_realtime']:.1f} | "
            f"{r['audio_s_per_cpu_s']:.1f} | " + " | ".join(ratios) + f" | {r['loadavg_1m_before']:.1f} |"
        )
    notes = [f"- {r['backend']}: {r['note']}" for r in rows if r.get("note") and r["pipeline"].startswith("ours")]
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backends", default=",".join(ORDER), help=f"comma list of {', '.join(ORDER)} (default all)")
    ap.add_argument("--clips", type=int, default=4, help="files per backend (the first N of --audio-dir)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the generated clips")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per pipeline (fastest per stage)")
    ap.add_argument("--audio-dir", type=Path, default=None, help="use these files instead of generated ones")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--out", default=str(RESULTS / "bench_embedders.json"), help="JSON results ('' = none)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    keys = [k.strip() for k in args.backends.split(",") if k.strip()]
    unknown = sorted(set(keys) - set(BUILDERS))
    if unknown:
        raise SystemExit(f"unknown backends {unknown}; choose from {', '.join(ORDER)}")

    t_start, load_start = time.perf_counter(), os.getloadavg()
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        if args.audio_dir:
            paths = sorted(p for p in args.audio_dir.iterdir() if p.suffix.lower() in (".wav", ".flac", ".ogg"))
        else:
            paths = make_clips(tmp, args.clips, args.seconds)
        ctx = Ctx(tmp, args.device, args.batch_size)
        for key in keys:
            try:
                backend, t_build, _ = timed(lambda key=key: BUILDERS[key](ctx))
            except (CheckpointUnavailable, EmbedderUnavailable) as exc:
                skipped[key] = str(exc)
                print(f"[{key}] skipped: {exc}", flush=True)
                continue
            ours = {"backend": key, "weights": backend.weights, "note": backend.note, "setup_s": t_build}
            ours.update(run_pipeline(backend.ours, paths[: args.clips], args.repeats))
            rows.append(ours)
            msg = f"[{key}] {ours['pipeline']}: {ours['x_realtime']:.1f}x realtime"
            if backend.peer is not None:
                peer = {"backend": key, "weights": backend.weights, "note": "", "setup_s": None}
                peer.update(run_pipeline(backend.peer, paths[: args.clips], args.repeats))
                for name, k in (("ratio_x_realtime", "x_realtime"), ("ratio_embed", "embed_x_realtime")):
                    ours[name] = ours[k] / peer[k]
                ours["ratio_per_cpu_s"] = ours["audio_s_per_cpu_s"] / peer["audio_s_per_cpu_s"]
                rows.append(peer)
                msg += f", {peer['pipeline']}: {peer['x_realtime']:.1f}x realtime"
                msg += f" (ours/peer {ours['ratio_x_realtime']:.2f})"
            print(msg, flush=True)
            del backend
            gc.collect()

    meta = {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": list(load_start),
        "loadavg_end": list(os.getloadavg()),
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "clip_seconds": args.seconds,
        "generated_audio": args.audio_dir is None,
        "warmup_s": WARMUP_S,
        "repeats": args.repeats,
        "runtime_s": time.perf_counter() - t_start,
        "versions": {
            d: version(d)
            for d in (
                "torch",
                "torchaudio",
                "numpy",
                "resampy",
                "frechet-audio-distance",
                "laion-clap",
                "encodec",
                "transformers",
            )
        },
        "skipped": skipped,
        "note": "fastest of `repeats` passes per stage; loading is sequential on both sides; CPU seconds are "
        "process CPU time over all threads",
    }
    table = markdown(rows, meta)
    print("\n" + table)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
        out.with_suffix(".md").write_text(table)
        print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
