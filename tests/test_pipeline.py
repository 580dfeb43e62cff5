"""End-to-end tests of the run spine (gather -> embed -> score -> write) on tiny audio."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import bench
from bench.embedders.base import EmbedderUnavailable
from bench.embedders.logmel import LogMelEmbedder
from bench.pipeline import ConfigError, embedding_key, file_digest, run_dir_for, validate

pytestmark = pytest.mark.usefixtures("single_thread")

MANIFEST_FIELDS = {
    "run_id", "config_hash", "started", "finished", "argv", "config", "versions", "stages", "shard", "models",
    "embedders", "metrics", "prompt_sets", "reference_sets", "audio", "n_errors", "n_warnings", "counters", "timings",
}


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def _board(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "leaderboard.csv").set_index("model")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tiny_audio_dir, helpers, single_thread):
    """One full run shared by the read-only checks below (and a rerun of it)."""
    root = tmp_path_factory.mktemp("spine")
    cfg = helpers.tiny_run_config(root, tiny_audio_dir)
    d1 = bench.run(cfg)
    m1 = _manifest(d1)
    board1 = (d1 / "leaderboard.csv").read_text()
    d2 = bench.run(cfg)
    return {"root": root, "cfg": cfg, "dir": d1, "m1": m1, "board1": board1, "m2": _manifest(d2), "dir2": d2}


def test_baselines_are_ordered_oracle_synth_noise(first_run):
    fad = _board(first_run["dir"])["fad@logmel"].astype(float)
    assert fad["oracle"] < fad["synth"] < fad["noise"], fad.to_dict()
    long = pd.read_csv(first_run["dir"] / "leaderboard_long.csv")
    assert set(long.loc[long.metric == "fad", "status"]) == {"ok"}
    assert (long.loc[long.metric == "fad", "n"] == 6).all()


def test_manifest_has_every_field(first_run):
    m = first_run["m1"]
    assert MANIFEST_FIELDS <= set(m), MANIFEST_FIELDS - set(m)
    assert m["counters"]["generated"] == 12  # synth + noise, 6 prompts each (the oracle copies nothing)
    assert m["counters"]["embedded"] == 6 + 6 + 6 + 8  # synth, noise, paired (= oracle) clips, reference
    assert m["counters"]["scored"] == 3
    assert m["embedders"]["logmel"]["id"].startswith("logmel-")
    assert m["reference_sets"]["tiny"]["n_items"] == 8 and len(m["reference_sets"]["tiny"]["hash"]) == 16
    assert m["n_errors"] == 0 and m["n_warnings"] == 0
    assert set(m["audio"]["synth"]["tiny"]) == {f"p{i}" for i in range(6)}
    assert m["versions"]["numpy"] == np.__version__
    for k in ("setup", "gather", "embed", "score", "write"):
        assert k in m["timings"]
    rows = list(csv.DictReader(open(first_run["dir"] / "errors.csv")))
    assert rows == []


def test_rerun_recomputes_nothing(first_run):
    c = first_run["m2"]["counters"]
    assert c == {"generated": 0, "embedded": 0, "embed_cache_hits": 26, "scored": 0, "score_cache_hits": 3}
    assert (first_run["dir2"] / "leaderboard.csv").read_text() == first_run["board1"]


def test_the_same_run_written_elsewhere_has_the_same_config_hash(first_run, tmp_path):
    cfg = {**first_run["cfg"], "output_dir": str(tmp_path / "moved"), "embed_io": {"num_workers": 0}}
    m = _manifest(bench.run(cfg))
    assert m["config"]["output_dir"] != first_run["m1"]["config"]["output_dir"]
    assert m["config_hash"] == first_run["m1"]["config_hash"]
    assert m["counters"]["embedded"] == 0  # same cache: nothing recomputed


def test_changing_one_file_re_embeds_exactly_that_file(tmp_path, tiny_audio_dir, helpers):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_audio_dir, corpus)
    cfg = helpers.tiny_run_config(tmp_path, corpus)
    bench.run(cfg)
    target = corpus / "reference" / "r03.wav"
    x, sr = sf.read(target, dtype="float32")
    sf.write(target, 0.5 * x, sr)
    d = bench.run(cfg)
    c = _manifest(d)["counters"]
    assert c["embedded"] == 1 and c["embed_cache_hits"] == 25 and c["generated"] == 0
    assert c["scored"] == 3  # every cell depends on the reference set


def test_same_content_under_two_paths_is_embedded_once(tmp_path, tiny_audio_dir, helpers):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_audio_dir, corpus)
    shutil.copy(corpus / "reference" / "r00.wav", corpus / "reference" / "r00_copy.wav")
    d = bench.run(helpers.tiny_run_config(tmp_path, corpus, model={}))
    c = _manifest(d)["counters"]
    assert c["embedded"] == 6 + 8  # paired clips + 8 distinct reference contents (9 files)


def test_unavailable_embedder_gives_unavailable_cells(tmp_path, run_cfg, bench_home_tmp):
    cfg = run_cfg(tmp_path)
    cfg["embedder"]["vggish"] = {"_target_": "bench.embedders.vggish.VGGishEmbedder", "device": "cpu"}
    d = bench.run(cfg)
    board = _board(d)
    assert board["fad@logmel"].astype(float).notna().all()
    cells = board["fad@vggish"]
    assert cells.isna().all(), cells.to_dict()  # empty in the wide table ...
    long = pd.read_csv(d / "leaderboard_long.csv", keep_default_na=False)
    reasons = long.loc[long["embedder"] == "vggish", ["status", "reason"]]
    assert (reasons["status"] == "unavailable").all()  # ... the reason is in the long table
    assert reasons["reason"].str.contains("checkpoint|weights", case=False).all()
    m = _manifest(d)
    assert m["embedders"]["vggish"]["unavailable"]
    assert m["embedders"]["logmel"]["unavailable"] is None


class LogMelWithoutTokenizer(LogMelEmbedder):
    """A joint text-audio embedder whose text side cannot load (as CLAP without its tokenizer)."""

    def embed_text(self, texts):
        raise EmbedderUnavailable("the CLAP text tokenizer from /nowhere has 5 tokens and cannot spell a word")


def test_unavailable_text_tower_gives_unavailable_cells_without_traceback(tmp_path, run_cfg, caplog):
    cfg = run_cfg(tmp_path)
    cfg["embedder"] = {"logmel": {**cfg["embedder"]["logmel"], "_target_": f"{__name__}.LogMelWithoutTokenizer"}}
    cfg["metric"] = {**cfg["metric"], "clap_score": {"_target_": "bench.metrics.clap_score.CLAPScore",
                                                     "n_bootstrap": 0}}
    with caplog.at_level(logging.WARNING, logger="bench"):
        d = bench.run(cfg)
    long = pd.read_csv(d / "leaderboard_long.csv", keep_default_na=False)
    cells = long.loc[long["metric"] == "clap_score", ["status", "reason"]]
    assert len(cells) == 3 and (cells["status"] == "unavailable").all(), cells
    assert cells["reason"].str.contains("tokenizer from /nowhere").all()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or "Traceback" in r.getMessage()]
    said = [r.getMessage() for r in caplog.records if "cannot serve clap_score" in r.getMessage()]
    assert said == ["embedder logmel cannot serve clap_score: the CLAP text tokenizer from /nowhere has 5 tokens and "
                    "cannot spell a word"]  # once for the three cells
    assert (long.loc[long["metric"] == "fad", "status"] == "ok").all()


def test_sharded_runs_then_merge_recompute_nothing(tmp_path, run_cfg, first_run):
    shard_cfgs = [run_cfg(tmp_path, stages=["gather", "embed"], shard={"index": i, "count": 2}) for i in (0, 1)]
    dirs = [bench.run(c) for c in shard_cfgs]
    assert dirs[0] == dirs[1] == tmp_path / "results" / "tiny"  # shards share the final run folder
    for i in (0, 1):
        assert (dirs[0] / "shards" / f"{i}-of-2" / "manifest.json").is_file()
    split = [_manifest(dirs[0] / "shards" / f"{i}-of-2")["counters"] for i in (0, 1)]
    assert sum(s["generated"] for s in split) == 12 and min(s["generated"] for s in split) > 0
    d = bench.run(run_cfg(tmp_path))
    c = _manifest(d)["counters"]
    assert c["embedded"] == 0 and c["generated"] == 0 and c["embed_cache_hits"] == 26
    a = _board(d)["fad@logmel"].astype(float)
    b = _board(first_run["dir"])["fad@logmel"].astype(float)
    pd.testing.assert_series_equal(a.sort_index(), b.sort_index(), rtol=1e-9)


def test_corrupt_score_cache_entry_is_recomputed(tmp_path, run_cfg):
    cfg = run_cfg(tmp_path, model={"noise": run_cfg(tmp_path)["model"]["noise"]})
    d = bench.run(cfg)
    value = float(_board(d).loc["noise", "fad@logmel"])
    entries = list((tmp_path / "cache" / "scores").rglob("*.json"))
    assert len(entries) == 1
    doc = json.loads(entries[0].read_text())
    doc["data"]["value"] = 0.0  # a plausible but wrong value: only the checksum catches it
    entries[0].write_text(json.dumps(doc))
    d = bench.run(cfg)
    assert _manifest(d)["counters"]["scored"] == 1
    assert float(_board(d).loc["noise", "fad@logmel"]) == pytest.approx(value, rel=1e-12)


def test_embedding_key_depends_on_content_and_embedder(tmp_path, tiny_audio_dir):
    from bench.embedders.logmel import LogMelEmbedder

    p = tiny_audio_dir / "reference" / "r00.wav"
    a, b = LogMelEmbedder(n_mels=32, device="cpu"), LogMelEmbedder(n_mels=16, device="cpu")
    assert embedding_key(file_digest(str(p)), a) != embedding_key(file_digest(str(p)), b)
    q = tmp_path / "copy.wav"
    shutil.copy(p, q)
    assert embedding_key(file_digest(str(q)), a) == embedding_key(file_digest(str(p)), a)


def test_run_dir_is_output_dir_slash_safe_run_name(tmp_path, run_cfg):
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(run_cfg(tmp_path, run_name="../escape"))
    validate(cfg)
    d = run_dir_for(cfg)
    assert d.parent == tmp_path / "results" and ".." not in d.name


def test_unknown_stage_is_a_config_error(tmp_path, run_cfg):
    with pytest.raises(ConfigError, match="choose from"):
        bench.run(run_cfg(tmp_path, stages=["gather", "embedd"]))


def test_precomputed_reference_statistics_give_the_same_fad(tmp_path, run_cfg, tiny_audio_dir):
    """A reference given as npz statistics (our format; fadtk's is read by the same loader) scores
    exactly like the same reference given as audio, and only for the embedder it belongs to."""
    from bench.audio import load_audio
    from bench.embedders.logmel import LogMelEmbedder
    from bench.metrics.stats import GaussianStats

    cfg = run_cfg(tmp_path / "a")
    board_audio = _board(bench.run(cfg))
    emb_cfg = {k: v for k, v in cfg["embedder"]["logmel"].items() if k != "_target_"}
    emb = LogMelEmbedder(**emb_cfg)
    stats = GaussianStats()
    for f in sorted((tiny_audio_dir / "reference").glob("*.wav")):
        stats.update(emb.embed(load_audio(f, emb.audio))["emb"])
    npz = tmp_path / "ref_stats.npz"
    stats.save_npz(npz)
    cfg2 = run_cfg(
        tmp_path / "b",
        reference={"tiny": {"_target_": "bench.references.ReferenceSet.from_stats", "name": "tiny",
                            "path": str(npz), "embedder": "logmel", "license": "test"}},
        embedder={**cfg["embedder"], "logmel_b": {**cfg["embedder"]["logmel"], "n_mels": 16}},
    )
    d_stats = bench.run(cfg2)
    board_stats = _board(d_stats)
    np.testing.assert_allclose(
        pd.to_numeric(board_stats["fad@logmel"]), pd.to_numeric(board_audio["fad@logmel"]), rtol=1e-9
    )
    assert board_stats["fad@logmel_b"].isna().all()
    long = pd.read_csv(d_stats / "leaderboard_long.csv", keep_default_na=False)
    assert long.loc[long["embedder"] == "logmel_b", "reason"].str.contains("statistics for embedder 'logmel' only").all()
