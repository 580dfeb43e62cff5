"""Built-in baselines that need no weights: a reference oracle, noise, and a procedural synth.

They bracket every leaderboard: the oracle (each prompt's own held-out reference clip) is what a
perfect generator would score, noise is what no model should score, and the synth is a weak but
honest model that follows the prompt's tempo, instrument family and mood.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import ErrorLog
from bench.models.base import Model, is_valid_audio, item_id
from bench.prompts import Prompt


class OracleModel(Model):
    """Returns each prompt's paired reference clip (``Prompt.reference``) untouched.

    Only ``n_samples_per_prompt=1`` makes sense; prompts without a reference are errors.
    """

    name = "oracle"
    fixed_params = {"source": "prompt.reference"}

    def generate(self, prompts: Sequence[Prompt], seeds: Sequence[int]) -> list[np.ndarray]:
        raise NotImplementedError("the oracle collects files; it does not generate")

    def gather(self, prompts, out_dir, errors: ErrorLog, set_name: str = "", progress: bool = True, keep=None):
        self.n_generated = 0
        out: dict[str, Path] = {}
        for p in prompts:
            iid = item_id(p.id, 0, 1)
            if keep is not None and not keep(iid):
                continue
            if not p.reference:
                errors.add("gather", self.name, set_name, iid, "", "prompt has no paired reference clip")
                continue
            path = Path(p.reference)
            if not path.is_file():
                errors.add("gather", self.name, set_name, iid, path, "paired reference clip not found")
            elif not is_valid_audio(path):
                errors.add("gather", self.name, set_name, iid, path, "paired reference clip does not decode")
            else:
                out[iid] = path
        return out


class NoiseModel(Model):
    """Gaussian noise (``color`` "white" or "pink") at ``level_db`` dBFS RMS."""

    name = "noise"

    def __init__(self, color: str = "white", level_db: float = -20.0, sample_rate: int = 16000, **kw):
        super().__init__(**kw)
        if color not in ("white", "pink"):
            raise ValueError(f"noise color must be white or pink, got {color!r}")
        self.color = color
        self.level_db = float(level_db)
        self.sample_rate = int(sample_rate)

    def generate(self, prompts: Sequence[Prompt], seeds: Sequence[int]) -> list[np.ndarray]:
        n = int(round(self.duration_s * self.sample_rate))
        out = []
        for s in seeds:
            x = np.random.default_rng(s).standard_normal(n)
            if self.color == "pink":  # 1/f power: scale the spectrum by 1/sqrt(f)
                spec = np.fft.rfft(x)
                f = np.arange(spec.size, dtype=np.float64)
                f[0] = 1.0
                x = np.fft.irfft(spec / np.sqrt(f), n)
            x *= 10 ** (self.level_db / 20) / max(np.sqrt(np.mean(x**2)), 1e-12)
            out.append(np.clip(x, -1, 1).astype(np.float32))
        return out


# -- procedural synth -------------------------------------------------------------------------

_TEMPO_WORDS = {
    "very slow": 60, "slow": 72, "ballad": 70, "calm": 76, "relaxing": 76, "ambient": 66, "moderate": 100,
    "medium tempo": 100, "upbeat": 124, "fast": 140, "energetic": 132, "dance": 124, "techno": 130,
    "house": 124, "drum and bass": 172, "punk": 170, "metal": 150, "hip hop": 90, "reggae": 80,
}
_MINOR_WORDS = ("sad", "dark", "melancholic", "melancholy", "minor", "eerie", "ominous", "emotional", "tense", "scary")
_FAMILIES = {
    "piano": ("piano", "keys", "keyboard", "rhodes"),
    "guitar": ("guitar", "ukulele", "banjo", "harp", "plucked"),
    "strings": ("violin", "string", "cello", "orchestra", "viola", "quartet"),
    "synth": ("synth", "electronic", "edm", "techno", "house", "trance", "pad"),
    "bass": ("bass",),
    "brass": ("trumpet", "brass", "saxophone", "sax", "horn", "trombone"),
    "flute": ("flute", "whistle", "recorder", "woodwind"),
}
_DRUM_WORDS = ("drum", "drums", "percussion", "beat", "kick", "snare", "hi-hat", "hihat", "groove")


def parse_prompt(text: str) -> dict[str, Any]:
    """Words -> synthesis controls: ``{"bpm", "minor", "families", "drums"}``."""
    t = text.lower()
    m = re.search(r"(\d{2,3})\s*(?:bpm|beats per minute)", t)
    bpm = float(m.group(1)) if m else None
    if bpm is None:
        hits = [v for k, v in _TEMPO_WORDS.items() if re.search(rf"\b{re.escape(k)}\b", t)]
        bpm = float(np.mean(hits)) if hits else 100.0
    families = [f for f, words in _FAMILIES.items() if any(re.search(rf"\b{w}", t) for w in words)] or ["piano"]
    return {
        "bpm": float(np.clip(bpm, 40, 200)),
        "minor": any(re.search(rf"\b{w}\b", t) for w in _MINOR_WORDS),
        "families": families,
        "drums": any(w in t for w in _DRUM_WORDS) or bpm >= 110,
    }


def _tone(freq: float, n: int, sr: int, family: str, rng: np.random.Generator) -> np.ndarray:
    """One note ``(n,)`` of an instrument family (additive / subtractive recipes)."""
    t = np.arange(n) / sr
    if family == "piano":
        env = np.exp(-t * 3.0)
        parts = [(1, 1.0), (2, 0.5), (3, 0.25), (4, 0.12)]
    elif family == "guitar":
        env = np.exp(-t * 5.0)
        parts = [(1, 1.0), (2, 0.7), (3, 0.4), (5, 0.2)]
    elif family == "strings":
        env = np.minimum(t / 0.15, 1.0)
        parts = [(k, 1.0 / k) for k in range(1, 9)]
    elif family == "brass":
        env = np.minimum(t / 0.05, 1.0) * np.exp(-t * 0.8)
        parts = [(k, 1.0 / k**0.7) for k in range(1, 10)]
    elif family == "flute":
        env = np.minimum(t / 0.08, 1.0)
        parts = [(1, 1.0), (2, 0.15), (3, 0.05)]
    elif family == "bass":
        env = np.exp(-t * 2.0)
        freq = freq / 4
        parts = [(1, 1.0), (2, 0.3)]
    else:  # synth: detuned saws
        env = np.minimum(t / 0.02, 1.0) * np.exp(-t * 1.0)
        parts = [(k, 1.0 / k) for k in range(1, 12)]
        vib = 1 + 0.003 * np.sin(2 * np.pi * 5 * t)
        return env * sum(a * np.sin(2 * np.pi * freq * k * vib * t + rng.uniform(0, 6.28)) for k, a in parts)
    return env * sum(a * np.sin(2 * np.pi * freq * k * t + rng.uniform(0, 6.28)) for k, a in parts if freq * k < sr / 2)


def _drums(n: int, sr: int, bpm: float, rng: np.random.Generator) -> np.ndarray:
    beat = 60.0 / bpm
    out = np.zeros(n)
    t_k = np.arange(int(0.25 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-t_k * 30)) * t_k) * np.exp(-t_k * 12)
    snare = rng.standard_normal(t_k.size) * np.exp(-t_k * 25) * 0.5
    hat = rng.standard_normal(int(0.05 * sr)) * np.exp(-np.arange(int(0.05 * sr)) / sr * 80) * 0.2
    hat = np.diff(hat, prepend=0.0)  # brighter
    step = 0
    while (pos := int(step * beat / 2 * sr)) < n:
        hits = [hat]
        if step % 2 == 0:
            hits.append(kick if (step // 2) % 2 == 0 else snare)
        for h in hits:
            m = min(h.size, n - pos)
            out[pos : pos + m] += h[:m]
        step += 1
    return out


class SynthModel(Model):
    """A procedural music synth that reacts to the prompt.

    Tempo comes from "120 bpm" or tempo words (slow, upbeat, techno, ...), the instrument family
    from instrument words (piano, guitar, strings, synth, brass, flute, bass), minor vs major
    from mood words (sad, dark, ...), and a drum pattern from rhythm words or fast tempi. The
    chord progression (I-V-vi-IV or i-VI-III-VII) and its key are drawn from the seed.
    """

    name = "synth"

    def __init__(self, sample_rate: int = 22050, **kw):
        super().__init__(**kw)
        self.sample_rate = int(sample_rate)

    def generate(self, prompts: Sequence[Prompt], seeds: Sequence[int]) -> list[np.ndarray]:
        return [self.render(p.text, s) for p, s in zip(prompts, seeds)]

    def render(self, text: str, seed: int) -> np.ndarray:
        """``text`` -> float32 ``(duration_s * sample_rate,)``."""
        sr = self.sample_rate
        n = int(round(self.duration_s * sr))
        rng = np.random.default_rng(seed)
        c = parse_prompt(text)
        root = 220.0 * 2 ** (rng.integers(-5, 7) / 12)
        prog = [0, 8, 3, 10] if c["minor"] else [0, 7, 9, 5]
        triad = [0, 3, 7] if c["minor"] else [0, 4, 7]
        chord_len = int(4 * 60.0 / c["bpm"] * sr)
        out = np.zeros(n)
        for i, pos in enumerate(range(0, n, chord_len)):
            m = min(chord_len, n - pos)
            deg = prog[i % len(prog)]
            for fam in c["families"]:
                for iv in triad:
                    f = root * 2 ** ((deg + iv) / 12)
                    out[pos : pos + m] += 0.3 * _tone(f, m, sr, fam, rng)[:m] / len(c["families"])
        if c["drums"]:
            out += 0.6 * _drums(n, sr, c["bpm"], rng)
        peak = np.max(np.abs(out))
        return (0.8 * out / peak if peak > 0 else out).astype(np.float32)
