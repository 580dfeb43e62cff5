"""Measured differences to the official code for PaSST, OpenL3 and MERT (the numbers in docs/parity.md).

Same set-up as the parity tests in tests/embedders/: the official model with random weights, its state
dict saved like the released file and loaded by our embedder, both run on fadtk's sample clips.
- PaSST: hear21passt 0.0.26 ``PasstBasicWrapper.get_scene_embeddings`` (<= 10 s) vs ``PaSSTEmbedder``;
- OpenL3: torchopenl3 1.0.1 ``get_audio_embedding`` (44.1 kHz input, resampy) vs ``OpenL3Embedder``
  (``frontend="kapre_v0.1.4"``), with torchopenl3's mel matrix as installed (librosa>=0.8: L1-normalised)
  and as openl3 0.3 computed it (slaney);
- MERT: the golden outputs of MERT's own ``MERTModel`` (tests/embedders/golden, scripts/golden_mert.py).

Usage: ``python benchmarks/parity_passt_openl3_mert.py [--clips N] [--seconds S]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from bench.audio import prepare, resample

ROOT = Path(__file__).resolve().parents[1]


def clips(n: int, seconds: float) -> list[tuple[str, np.ndarray, int]]:
    import fadtk

    folder = Path(fadtk.__file__).parent / "test" / "samples"
    out = []
    for path in sorted(folder.glob("*.opus"))[:: max(1, 23 // n)][:n]:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
        out.append((path.stem, wav.mean(axis=1)[: int(seconds * sr)], sr))
    return out


def row(name: str, diffs: list[float], scale: float) -> str:
    worst = max(diffs)
    return f"| {name} | {len(diffs)} | {worst:.2e} | {scale:.3g} | {worst / scale:.2e} |"


def passt(audio, tmp: Path) -> list[str]:
    from hear21passt.models.passt import get_model
    from hear21passt.models.preprocess import AugmentMelSTFT
    from hear21passt.wrapper import PasstBasicWrapper

    from bench.embedders.passt import PaSSTEmbedder

    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        net = get_model(arch="passt_s_swa_p16_128_ap476", pretrained=False)
        mel = AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=48, timem=192,
                             htk=False, fmin=0.0, fmax=None, norm=1, fmin_aug_range=10, fmax_aug_range=2000)  # fmt: skip
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    wrapper = PasstBasicWrapper(mel=mel, net=net, mode="all").eval()
    path = tmp / "passt.pt"
    torch.save(net.state_dict(), path)
    ours = PaSSTEmbedder(checkpoint=str(path), device="cpu")
    d_log, d_emb, d_mel, s_log, s_emb = [], [], [], 0.0, 0.0
    for _, wav, sr in audio:
        x = resample(wav, sr, 32000)
        with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            ref = wrapper.get_scene_embeddings(torch.from_numpy(x)[None])[0].numpy()
            d_mel.append(float((wrapper.mel(torch.from_numpy(x)[None]) - ours.mel(torch.from_numpy(x)[None])).abs().max()))
        out = ours.embed(x)
        d_log.append(float(np.abs(out["logits"][0] - ref[:527]).max()))
        d_emb.append(float(np.abs(out["emb"][0] - ref[527:]).max()))
        s_log, s_emb = max(s_log, float(np.abs(ref[:527]).max())), max(s_emb, float(np.abs(ref[527:]).max()))
    return [
        row("PaSST mel (vs AugmentMelSTFT)", d_mel, 1.0),
        row("PaSST logits (vs get_scene_embeddings)", d_log, s_log),
        row("PaSST features (vs get_scene_embeddings)", d_emb, s_emb),
    ]


def openl3(audio, tmp: Path) -> list[str]:
    import librosa
    import torchopenl3

    from bench.embedders.openl3 import OpenL3Embedder
    from tests.tiny_embedders import torchopenl3_reference

    model = torchopenl3_reference("mel256", 512)
    path = tmp / "torchopenl3_mel256_music_512.pth.tar"
    torch.save(model.state_dict(), path)
    ours = OpenL3Embedder(checkpoint=str(path), frontend="kapre_v0.1.4", hop_size=0.5, device="cpu")
    installed = model.speclayer.mel_basis.clone()
    slaney = torch.from_numpy(librosa.filters.mel(sr=48000, n_fft=2048, n_mels=256, htk=True, norm="slaney"))
    rows = []
    for label, basis in (("slaney matrix (as openl3 0.3)", slaney), ("matrix as installed (L1)", installed)):
        model.speclayer.mel_basis.copy_(basis)
        diffs, scale = [], 0.0
        for _, wav, sr in audio:
            x = resample(wav, sr, 44100)
            ref, _ = torchopenl3.get_audio_embedding(x, 44100, model=model, hop_size=0.5, sampler="resampy", verbose=False)
            ref = ref[0].numpy()
            got = ours.embed(prepare(x, 44100, ours.audio))["emb"]
            diffs.append(float(np.abs(got - ref).max()))
            scale = max(scale, float(np.abs(ref).max()))
        rows.append(row(f"OpenL3 embeddings, torchopenl3 with {label}", diffs, scale))
    return rows


def mert(tmp: Path) -> list[str]:
    from bench.embedders.mert import MERTEmbedder

    gold = np.load(ROOT / "tests/embedders/golden/mert_official_tiny.npz")
    rows = []
    for variant in ("plain", "deepnorm"):
        prefix = f"{variant}__state__"
        folder = tmp / f"mert-{variant}"
        folder.mkdir()
        torch.save({k[len(prefix) :]: torch.from_numpy(gold[k]) for k in gold.files if k.startswith(prefix)},
                   folder / "pytorch_model.bin")  # fmt: skip
        (folder / "config.json").write_text(str(gold[f"{variant}__config"]))
        hidden = gold[f"{variant}__hidden"]
        diffs = [
            float(np.abs(MERTEmbedder(checkpoint=str(folder), layer=i, device="cpu").embed(gold["wav"])["emb"] - h).max())
            for i, h in enumerate(hidden)
        ]
        rows.append(row(f"MERT hidden states 0..{len(hidden) - 1} ({variant}, vs MERTModel golden)", diffs, float(np.abs(hidden).max())))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    audio = clips(args.clips, args.seconds)
    print(f"clips: {', '.join(n for n, _, _ in audio)} (first {args.seconds} s)\n")
    print("| comparison | clips / layers | max abs difference | max abs reference | relative |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for line in passt(audio, Path(tmp)) + openl3(audio, Path(tmp)) + mert(Path(tmp)):
            print(line)
    print(json.dumps({"torch": torch.__version__}))


if __name__ == "__main__":
    main()
