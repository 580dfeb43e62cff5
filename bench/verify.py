"""``bench verify``: reproduce fadtk's published per-song FAD numbers with the weights at hand.

fadtk 1.1.0 ships 23 generated clips (``fadtk/test/samples/*.opus``), the FMA-Pop reference statistics
(``fadtk/stats/fma_pop.npz``: ``<model>.mu`` / ``<model>.cov``) and the per-song FAD of every clip against
them (``fadtk/test/samples_FAD_scores.csv``, copied to ``bench/published/``). fadtk's definition
(``FrechetAudioDistance.score_individual``): all frame embeddings of one clip -> mean and ``np.cov``
(``ddof=1``) -> Frechet distance to the reference Gaussian; the ``samples/all`` row pools the frames of
all clips (``score``). fadtk's own check (``fadtk/test/__main__.py``) passes a model when
``max |ours - published| / mean(ours) < 5 %``; that is the pass mark here.

For each fadtk model with a genaudio-bench counterpart (:data:`FADTK_MODELS`) the embedder is built from
its config (``bench/configs/embedder/<name>.yaml``) with fadtk's windowing/layer as overrides, the clips go
through our audio loader (mono mean, torchaudio kaiser-best resampling, as fadtk's ``load_audio``) and
fadtk's 16-bit WAV round trip (:func:`pcm16_roundtrip`), then our embedder and our per-sample FAD
(:meth:`bench.metrics.fad.RefGaussian.distance_frames`). Embedders whose weights cannot be resolved are
reported as "not checked" with the message saying how to provide the checkpoint.

Known remaining differences (all far below the 5 % mark): fadtk stores embeddings as float16 (we keep
float32) and resamples from the decoded opus exactly as we do but writes/reads an intermediate WAV
(reproduced by :func:`pcm16_roundtrip`).
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import ConfigError
from bench.resources import installed_package_dirs

log = logging.getLogger(__name__)

#: fadtk's pass mark: max |ours - published| / mean(ours) below this (fadtk/test/__main__.py)
FADTK_TOLERANCE = 0.05
PUBLISHED_CSV = Path(__file__).with_name("published") / "fadtk-1.1.0_samples_FAD_scores.csv"
ALL_ROW = "samples/all"
#: fadtk's resampler (fad.py load_audio), applied after a channel-mean mixdown
FADTK_AUDIO = {"mono": "mean", "resampler": "torchaudio_kaiser_best"}


@dataclass(frozen=True)
class FadtkModel:
    """A fadtk model and the genaudio-bench embedder configured the same way.

    fadtk: fadtk's model name (the key in fma_pop.npz; column ``FAD_<name with - as _>_fma_pop``).
    embedder: our config option (``bench/configs/embedder/<embedder>.yaml``).
    overrides: constructor arguments that give fadtk's windowing / layer / preprocessing.
    """

    fadtk: str
    embedder: str
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def column(self) -> str:
        return f"FAD_{self.fadtk.replace('-', '_')}_fma_pop"


def _mert(layer: int) -> FadtkModel:
    name = "MERT-v1-95M" + ("" if layer == 12 else f"-{layer}")
    audio = {**FADTK_AUDIO, "sample_rate": 24000, "max_duration_s": 360.0}  # fadtk: first 6 minutes
    return FadtkModel(name, "mert", {"variant": "MERT-v1-95M", "layer": layer, "window_s": None, "audio": audio})


_CLAP = {"hop_s": 1.0, "tail": "all", "filling": "pad", "quantize_int16": True}  # fadtk: 10-s chunks every 1 s
FADTK_MODELS: tuple[FadtkModel, ...] = (
    # torchvggish without PCA and without the final ReLU, 0.96-s examples (fadtk VGGishModel)
    FadtkModel("vggish", "vggish", {"relu": False, "postprocess": "none", "framing": "vggish",
                                    "audio": {**FADTK_AUDIO, "sample_rate": 16000}}),
    # EnCodec encoder output before quantisation; 24 kHz whole clip, 48 kHz 1-s segments of stereo
    FadtkModel("encodec-emb", "encodec", {"variant": "24khz", "segment_s": None, "normalize": False,
                                          "audio": {**FADTK_AUDIO, "sample_rate": 24000, "max_duration_s": 180.0}}),
    FadtkModel("encodec-emb-48k", "encodec_48k", {"variant": "48khz", "segment_s": None, "normalize": False,
                                                  "audio": {**FADTK_AUDIO, "sample_rate": 48000,
                                                            "max_duration_s": 180.0}}),
    FadtkModel("clap-laion-audio", "clap", {"variant": "630k-audioset", **_CLAP,
                                            "audio": {**FADTK_AUDIO, "sample_rate": 48000}}),
    FadtkModel("clap-laion-music", "clap_music", {"variant": "music", **_CLAP,
                                                  "audio": {**FADTK_AUDIO, "sample_rate": 48000}}),
    *(_mert(layer) for layer in (12, *range(1, 12))),
)
#: fadtk models in the published table that genaudio-bench has no embedder for
NO_BACKEND = {
    "clap-2023": "Microsoft CLAP (msclap) is not a genaudio-bench embedder",
    "dac-44kHz": "DAC is not a genaudio-bench embedder",
    "cdpam-acoustic": "CDPAM is not a genaudio-bench embedder",
    "cdpam-content": "CDPAM is not a genaudio-bench embedder",
}


# -- fadtk's files ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FadtkData:
    """fadtk's sample clips and reference statistics (from the installed wheel)."""

    clips: tuple[Path, ...]
    stats: Path


def fadtk_data(root: str | Path | None = None) -> FadtkData:
    """The installed fadtk package's ``test/samples/*.opus`` and ``stats/fma_pop.npz``.

    root: a fadtk package folder (default: found with ``importlib.util.find_spec``, without importing fadtk).
    Raises :class:`ConfigError` naming the install command when they are missing.
    """
    if root is None:
        root = next(iter(installed_package_dirs("fadtk")), None)
    how = "install them with `pip install --no-deps fadtk==1.1.0` (scripts/setup.sh does)"
    if root is None:
        raise ConfigError(f"fadtk's sample clips and FMA-Pop statistics are not installed; {how}")
    root = Path(root)
    clips = tuple(sorted((root / "test" / "samples").glob("*.opus")))
    stats = root / "stats" / "fma_pop.npz"
    if not clips or not stats.is_file():
        raise ConfigError(f"{root} lacks test/samples/*.opus or stats/fma_pop.npz; {how}")
    return FadtkData(clips, stats)


def read_published(path: str | Path = PUBLISHED_CSV) -> dict[str, dict[str, float]]:
    """fadtk's ``samples_FAD_scores.csv`` -> ``{column: {song_id: value}}`` (song ids like ``samples/mg-1634``)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "song_id" not in rows[0]:
        raise ValueError(f"{path}: not fadtk's samples_FAD_scores.csv (no song_id column)")
    cols = [c for c in rows[0] if c.startswith("FAD_")]
    return {c: {r["song_id"]: float(r[c]) for r in rows if r.get(c) not in (None, "")} for c in cols}


def song_id(clip: str | Path) -> str:
    """fadtk's id of a clip file: ``samples/<stem>``."""
    return f"samples/{Path(clip).stem}"


# -- the quantities ---------------------------------------------------------------------------------------
def pcm16_roundtrip(x: np.ndarray, sample_rate: int = 48000) -> np.ndarray:
    """fadtk's intermediate file (``load_audio``: ``torchaudio.save(..., encoding="PCM_S", bits_per_sample=16)``
    with the soundfile backend, then ``ModelLoader.load_wav``: ``int16 / 32768``), done in memory with
    libsndfile so its own float -> int16 conversion (scaling, rounding, clipping) applies."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(x, dtype=np.float32), sample_rate, subtype="PCM_16", format="WAV")
    buf.seek(0)
    q, _ = sf.read(buf, dtype="int16")
    return (q / 32768.0).astype(np.float32)


def per_song_fad(frames: Sequence[np.ndarray], mu: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, float]:
    """fadtk's per-song FAD of each clip's frames ``(T_i, D)`` and the FAD of all frames pooled, against
    ``N(mu, cov)``. Our FAD code (:class:`~bench.metrics.fad.RefGaussian`, float64)."""
    from bench.metrics.fad import RefGaussian, fad_from_stats
    from bench.metrics.stats import GaussianStats

    ref = RefGaussian(mu, cov)
    per = np.array([ref.distance_frames(np.asarray(f, dtype=np.float64)) for f in frames], dtype=np.float64)
    pooled = GaussianStats()
    for f in frames:
        pooled.update(np.asarray(f, dtype=np.float64))
    return per, fad_from_stats(pooled, GaussianStats.from_moments(mu, cov))


@dataclass
class ModelResult:
    """Ours vs published for one fadtk model. ``status``: "pass", "fail", "error" (could not compute),
    "not checked" (weights not found) or "no backend"."""

    fadtk: str
    embedder: str
    status: str
    note: str = ""
    ours: dict[str, float] = field(default_factory=dict)
    published: dict[str, float] = field(default_factory=dict)

    @property
    def songs(self) -> list[str]:
        return [s for s in self.published if s in self.ours]

    def rel_diffs(self) -> dict[str, float]:
        return {s: abs(self.ours[s] - p) / abs(p) if p else math.inf for s, p in self.published.items() if s in self.ours}

    @property
    def fadtk_error(self) -> float:
        """fadtk's criterion over the per-song rows: ``max |ours - published| / mean(ours)``."""
        songs = [s for s in self.songs if s != ALL_ROW]
        if not songs:
            return math.nan
        ours = np.array([self.ours[s] for s in songs])
        pub = np.array([self.published[s] for s in songs])
        return float(np.abs(ours - pub).max() / ours.mean())


def compare(model: FadtkModel, ours: dict[str, float], published: dict[str, float], tol: float = FADTK_TOLERANCE) -> ModelResult:
    """Judge ``ours`` against the published column at fadtk's tolerance."""
    res = ModelResult(model.fadtk, model.embedder, "fail", ours=dict(ours), published=dict(published))
    missing = sorted(s for s in published if s != ALL_ROW and s not in ours)
    if missing:
        res.note = f"no value for {len(missing)} published clip(s), e.g. {missing[0]}"
        return res
    err = res.fadtk_error
    res.status = "pass" if err < tol else "fail"
    res.note = f"max|diff|/mean = {err:.2%} (fadtk's mark: < {tol:.0%})"
    return res


# -- running ------------------------------------------------------------------------------------------------
EmbedderFactory = Callable[[FadtkModel], Any]


def build_embedder(model: FadtkModel, device: str = "auto", checkpoint: str | None = None):
    """Our embedder for ``model``: its config option with fadtk's settings (and ``checkpoint``) applied."""
    from omegaconf import OmegaConf

    from bench.cli import compose
    from bench.config import instantiate_option

    cfg = compose([f"embedder=[{model.embedder}]", f"device={device}"])
    node = cfg.embedder[model.embedder]
    over = dict(model.overrides)
    if checkpoint:
        over["checkpoint"] = checkpoint
    node = OmegaConf.merge(OmegaConf.create(OmegaConf.to_container(node, resolve=True)), OmegaConf.create(over))
    return instantiate_option("embedder", model.embedder, node)


def embed_clips(embedder, clips: Iterable[Path]) -> list[np.ndarray]:
    """Frames ``(T, D)`` of each clip through our loader, fadtk's PCM16 round trip and the embedder."""
    from bench.audio import load_audio

    out = []
    for clip in clips:
        wav = pcm16_roundtrip(load_audio(clip, embedder.audio), embedder.audio.sample_rate)
        out.append(np.asarray(embedder.embed_batch([wav])[0]["emb"], dtype=np.float64))
    return out


def verify(
    models: Sequence[FadtkModel] | None = None,
    data: FadtkData | None = None,
    published_csv: str | Path = PUBLISHED_CSV,
    factory: EmbedderFactory | None = None,
    device: str = "auto",
    checkpoints: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ModelResult]:
    """Recompute fadtk's published per-song FAD for every model whose weights resolve.

    factory: builds the embedder of a :class:`FadtkModel` (default :func:`build_embedder`); an embedder that
        cannot be built because weights are missing (``CheckpointUnavailable`` / ``EmbedderUnavailable``) makes
        the model "not checked" with that message.
    checkpoints: ``{embedder config name or fadtk name: path}`` passed as ``checkpoint=``.
    """
    from bench.config import UNAVAILABLE_ERRORS
    from bench.metrics.stats import GaussianStats, stats_keys

    models = list(FADTK_MODELS if models is None else models)
    data = data or fadtk_data()
    published = read_published(published_csv)
    keys = set(stats_keys(data.stats))
    checkpoints = dict(checkpoints or {})
    say = progress or (lambda msg: None)
    results: list[ModelResult] = []
    frames_by_embedder: dict[tuple, list[np.ndarray]] = {}
    for m in models:
        pub = published.get(m.column)
        if pub is None or m.fadtk not in keys:
            results.append(ModelResult(m.fadtk, m.embedder, "not checked", f"no published column {m.column} / stats key"))
            continue
        ckpt = checkpoints.get(m.fadtk) or checkpoints.get(m.embedder)
        try:
            emb = factory(m) if factory else build_embedder(m, device, ckpt)
        except UNAVAILABLE_ERRORS as exc:
            results.append(ModelResult(m.fadtk, m.embedder, "not checked", str(exc), published=pub))
            say(f"{m.fadtk}: not checked ({str(exc).splitlines()[0][:160]})")
            continue
        except ConfigError as exc:
            results.append(ModelResult(m.fadtk, m.embedder, "error", str(exc), published=pub))
            continue
        say(f"{m.fadtk}: embedding {len(data.clips)} clips with {m.embedder}")
        key = (m.embedder, getattr(emb, "id", id(emb)))
        try:
            if key not in frames_by_embedder:
                frames_by_embedder[key] = embed_clips(emb, data.clips)
            frames = frames_by_embedder[key]
            ref = GaussianStats.load_npz(data.stats, m.fadtk)
            per, pooled = per_song_fad(frames, ref.mu, ref.cov)
        except Exception as exc:  # one model's failure (audio, memory, shapes) is reported, the others still run
            results.append(ModelResult(m.fadtk, m.embedder, "error", f"{type(exc).__name__}: {exc}", published=pub))
            continue
        ours = {song_id(c): float(v) for c, v in zip(data.clips, per, strict=True)}
        ours[ALL_ROW] = pooled
        results.append(compare(m, ours, pub))
    for name, why in NO_BACKEND.items():
        col = FadtkModel(name, "").column
        if col in published:
            results.append(ModelResult(name, "", "no backend", why, published=published[col]))
    return results


# -- report ---------------------------------------------------------------------------------------------------
SUMMARY_COLUMNS = ("fadtk_model", "embedder", "status", "clips", "published_all", "ours_all", "max_rel_diff",
                   "fadtk_criterion", "note")


def summary_rows(results: Sequence[ModelResult]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        rel = r.rel_diffs()
        rows.append({
            "fadtk_model": r.fadtk,
            "embedder": r.embedder,
            "status": r.status,
            "clips": len([s for s in r.songs if s != ALL_ROW]),
            "published_all": r.published.get(ALL_ROW, math.nan),
            "ours_all": r.ours.get(ALL_ROW, math.nan),
            "max_rel_diff": max(rel.values()) if rel else math.nan,
            "fadtk_criterion": r.fadtk_error if r.ours else math.nan,
            "note": r.note,
        })
    return rows


def _fmt(v: Any, pct: bool = False) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else (f"{v:.3%}" if pct else f"{v:.6g}")
    return str(v)


_PCT = {"max_rel_diff", "fadtk_criterion"}


def markdown(results: Sequence[ModelResult]) -> str:
    """The summary table (one row per fadtk model) in Markdown."""
    rows = summary_rows(results)
    head = ["fadtk model", "embedder", "status", "clips", "published (all)", "ours (all)", "max rel. diff",
            "fadtk criterion", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [_fmt(row[c], c in _PCT).replace("|", "/").replace("\n", " ") for c in SUMMARY_COLUMNS]
        cells[1] = cells[1] or "-"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(results: Sequence[ModelResult], out_dir: str | Path) -> dict[str, Path]:
    """``verify_summary.csv``, ``verify_per_song.csv`` (model, song, published, ours, rel_diff) and
    ``verify.md`` in ``out_dir``. Returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"summary": out / "verify_summary.csv", "per_song": out / "verify_per_song.csv", "markdown": out / "verify.md"}
    with open(paths["summary"], "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(SUMMARY_COLUMNS))
        w.writeheader()
        w.writerows(summary_rows(results))
    with open(paths["per_song"], "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["fadtk_model", "embedder", "song_id", "published", "ours", "rel_diff"])
        for r in results:
            rel = r.rel_diffs()
            for s in r.songs:
                w.writerow([r.fadtk, r.embedder, s, repr(r.published[s]), repr(r.ours[s]), repr(rel[s])])
    text = "# bench verify: fadtk 1.1.0 per-song FAD vs FMA-Pop\n\n" + markdown(results)
    paths["markdown"].write_text(text, encoding="utf-8")
    return paths


def console_table(results: Sequence[ModelResult]) -> str:
    """One line per model: ours vs published (pooled row), worst relative difference, pass mark."""
    lines = [f"{'fadtk model':<18} {'embedder':<12} {'published':>10} {'ours':>10} {'max rel':>9}  result"]
    how: dict[str, str] = {}
    for row in summary_rows(results):
        mark = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}.get(row["status"], row["status"])
        if row["status"] == "not checked" and row["embedder"]:
            how.setdefault(row["embedder"], row["note"])
        tail = f"  ({row['note']})" if row["status"] in ("pass", "fail", "error", "no backend") else ""
        lines.append(
            f"{row['fadtk_model']:<18} {row['embedder'] or '-':<12} {_fmt(row['published_all']):>10} "
            f"{_fmt(row['ours_all']):>10} {_fmt(row['max_rel_diff'], True):>9}  {mark}{tail}"
        )
    if how:
        lines += ["", "not checked (weights not found); to check them:"]
        lines += [f"  {emb}: {msg}" for emb, msg in how.items()]
    return "\n".join(lines)


# -- command line ---------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``bench verify [--out DIR] [--models a,b] [--device cpu] [--checkpoint NAME=PATH ...]``.

    Exit code 0 when every checked model passes (models without weights do not fail the run), 1 when one
    fails or cannot be computed, 2 for usage errors.
    """
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="bench verify", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="results/verify", help="folder for verify.md and the CSVs")
    p.add_argument("--models", default="", help="comma-separated fadtk model names (default: all)")
    p.add_argument("--device", default="auto")
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                   help="weights for an embedder config (e.g. vggish=/w/vggish-10086976.pth); repeatable")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(list(sys.argv[2:] if argv is None else argv))
    try:
        models = list(FADTK_MODELS)
        if args.models:
            wanted = [m.strip() for m in args.models.split(",") if m.strip()]
            known = {m.fadtk: m for m in FADTK_MODELS}
            bad = [w for w in wanted if w not in known]
            if bad:
                raise ConfigError(f"unknown fadtk model(s) {bad}; choose from {sorted(known)}")
            models = [known[w] for w in wanted]
        ckpts = {}
        for item in args.checkpoint:
            name, sep, path = item.partition("=")
            if not sep or not path:
                raise ConfigError(f"--checkpoint {item!r}: expected NAME=PATH")
            ckpts[name] = path
        results = verify(models, device=args.device, checkpoints=ckpts, progress=lambda m: print(m, file=sys.stderr))
    except ConfigError as exc:
        if args.debug:
            raise
        print(f"bench verify: {exc}", file=sys.stderr)
        return 2
    print(console_table(results))
    paths = write_report(results, args.out)
    print(f"\nwritten: {paths['markdown']}, {paths['summary']}, {paths['per_song']}")
    return 1 if any(r.status in ("fail", "error") for r in results) else 0


__all__ = [
    "FADTK_MODELS",
    "FADTK_TOLERANCE",
    "FadtkData",
    "FadtkModel",
    "ModelResult",
    "compare",
    "fadtk_data",
    "pcm16_roundtrip",
    "per_song_fad",
    "read_published",
    "verify",
    "write_report",
]
