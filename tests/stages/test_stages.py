"""Each run stage on its own: gather -> embed -> score, and the manifest, through their call boundaries.

Tiny inputs: the shared 1-s corpus (tests/conftest.py), the noise model, the weight-free log-mel
embedder and FAD without bootstrap; the stages are chained by hand as :func:`bench.pipeline.run` does.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.cache import ArrayCache
from bench.embedders.logmel import LogMelEmbedder
from bench.errors import ErrorLog
from bench.manifest import build_manifest
from bench.metrics.fad import FAD
from bench.models.baselines import NoiseModel
from bench.prompts import PromptSet
from bench.references import ReferenceSet
from bench.stages.common import Component, new_counters
from bench.stages.embed import EmbeddingLoader, embed
from bench.stages.gather import embed_jobs, gather, paired_items
from bench.stages.score import ScoreContext, score


@pytest.fixture(scope="module")
def world(tiny_audio_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("stages")
    ps = PromptSet.from_csv("tiny", str(tiny_audio_dir / "prompts.csv"))
    ref = ReferenceSet.from_folder("ref", str(tiny_audio_dir / "reference"), pattern="*.wav")
    models = {
        "noise": Component("noise", NoiseModel(sample_rate=16000, duration_s=1.0, seed=0)),
        "broken": Component("broken", None, "ModelUnavailable: no weights"),
    }
    emb = {"logmel": Component("logmel", LogMelEmbedder(n_mels=16, segment_s=0.25, device="cpu"))}
    return root, {"tiny": ps}, {"ref": ref}, models, emb


def test_gather_writes_each_item_once_and_resumes(world):
    root, prompt_sets, _, models, _ = world
    errors = ErrorLog()
    first = gather(prompt_sets, models, root / "run", errors, progress=False)
    items = first.audio[("noise", "tiny")]
    assert set(items) == {p.id for p in prompt_sets["tiny"].prompts} and first.n_generated == len(items)
    assert all(Path(p).is_file() for p in items.values())
    assert ("broken", "tiny") not in first.audio  # unavailable models are skipped, not errors
    again = gather(prompt_sets, models, root / "run", errors, progress=False)
    assert again.audio == first.audio and again.n_generated == 0 and errors.n_errors == 0
    only_p0 = gather(prompt_sets, models, root / "run", errors, progress=False, keep=lambda i: i == "p0")
    assert list(only_p0.audio[("noise", "tiny")]) == ["p0"]


def test_embed_jobs_merge_owners_of_one_file(world, tiny_audio_dir):
    _, prompt_sets, refs, _, _ = world
    shared = tiny_audio_dir / "reference" / "r00.wav"
    jobs = embed_jobs({("m", "tiny"): {"a": shared}}, refs, {"tiny": {"p0": shared}})
    assert jobs[str(shared)] == [("m", "tiny", "a"), ("reference", "ref", "r00"), ("paired", "tiny", "p0")]
    assert len(jobs) == len(refs["ref"].items)
    paired = paired_items(prompt_sets["tiny"], keep=lambda i: i != "p1")
    assert sorted(paired) == ["p0", "p2", "p3", "p4", "p5"]


def test_embed_then_score_through_their_results(world, tmp_path):
    root, prompt_sets, refs, models, embedders = world
    errors = ErrorLog()
    gathered = gather(prompt_sets, models, root / "run", errors, progress=False)
    paired = {"tiny": paired_items(prompt_sets["tiny"])}
    files = {**embed_jobs(gathered.audio, refs, paired), str(tmp_path / "missing.wav"): [("m", "tiny", "x")]}
    cache = ArrayCache(tmp_path / "cache" / "embeddings")

    lookup = embed(cache, errors, embedders, files, progress=False, compute=False)
    assert lookup.keys == {} and lookup.counters == {"embedded": 0, "embed_cache_hits": 0}
    assert [r.item_id for r in errors.rows] == ["x"]  # the unreadable file, named with its owner

    done = embed(cache, ErrorLog(), embedders, files, progress=False)
    n_files = len(files) - 1
    assert len(done.keys) == n_files and done.counters == {"embedded": n_files, "embed_cache_hits": 0}
    assert embed(cache, ErrorLog(), embedders, files, progress=False).counters["embed_cache_hits"] == n_files

    ctx = ScoreContext(done.keys, EmbeddingLoader(cache), gathered.audio, tmp_path / "cache" / "scores", seed=0)
    metrics = {"fad": FAD(n_bootstrap=0)}
    ref_hash = {"ref": "h"}
    base = {"run_id": "r", "config_hash": "c"}
    out = score(ctx, base, prompt_sets, models, refs, ref_hash, embedders, metrics, paired)
    by_model = {r["model"]: r for r in out.rows}
    assert by_model["noise"]["status"] == "ok" and math.isfinite(by_model["noise"]["value"])
    assert by_model["noise"]["n"] == len(gathered.audio[("noise", "tiny")])
    assert by_model["broken"]["status"] == "unavailable" and "no weights" in by_model["broken"]["reason"]
    assert {r["item_id"] for r in out.per_item} == set(gathered.audio[("noise", "tiny")])
    assert out.replicates == [] and out.curves == [] and (out.scored, out.cache_hits) == (1, 0)
    again = score(ctx, base, prompt_sets, models, refs, ref_hash, embedders, metrics, paired)
    assert (again.scored, again.cache_hits) == (0, 1) and again.rows == out.rows


def test_build_manifest_records_components_and_relative_audio(world, tmp_path):
    root, prompt_sets, refs, models, embedders = world
    audio = {("noise", "tiny"): {"p0": root / "run" / "audio" / "noise" / "tiny" / "p0.wav"}}
    fad = FAD(n_bootstrap=0)
    man = build_manifest(
        run_id="r", config_hash="c", started="t0", config={"seed": 0}, stages=["gather"], shard={"index": 0, "count": 1},
        models=models, embedders=embedders, metrics={"fad": fad}, prompt_sets=prompt_sets, refs=refs,
        ref_hash={"ref": "h"}, audio=audio, run_dir=root / "run", n_errors=0, n_warnings=0,
        counters=new_counters(), timings={},
    )
    assert man["audio"] == {"noise": {"tiny": {"p0": "audio/noise/tiny/p0.wav"}}, "broken": {}}
    assert man["models"]["broken"] == {"params": None, "checkpoints": {}, "unavailable": "ModelUnavailable: no weights"}
    assert man["embedders"]["logmel"]["id"] == embedders["logmel"].obj.id
    assert man["metrics"]["fad"] == {"id": fad.id, "params": fad.params()}
    assert man["reference_sets"]["ref"]["hash"] == "h" and list(man["counters"]) == [
        "generated", "embedded", "embed_cache_hits", "scored", "score_cache_hits"]
