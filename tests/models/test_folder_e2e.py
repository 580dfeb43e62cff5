"""The issue's "done when": a two-model comparison on a MusicCaps subset from one command
(bench/configs/experiment/musiccaps_folder.yaml): a folder of pre-generated audio vs the synth baseline,
FAD + KL on musicnn embeddings, on tiny audio written to tmp_path."""

from __future__ import annotations

import csv
import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

import bench
from bench.prompt_sets.musiccaps import load

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_thread")]
SR = 16000


@pytest.mark.skipif(importlib.util.find_spec("musicnn") is None, reason="musicnn weights wheel not installed")
def test_musiccaps_folder_experiment(tmp_path, helpers):
    rng = np.random.default_rng(0)
    musiccaps = helpers.repo_root / "bench" / "datasets" / "musiccaps" / "musiccaps-public.csv"
    ids = [p.id for p in load(str(musiccaps), split="eval", limit=4, sample_seed=0)]
    ref, gen = tmp_path / "musiccaps_audio", tmp_path / "system_outputs"
    for n in range(10):  # real-ish reference clips; the first 4 are the prompts' paired clips
        name = ids[n] if n < len(ids) else f"extra_ref_{n}"
        clip = helpers.tone_clip(rng, SR, 3.0)
        helpers.write_clip(ref / f"{name}.wav", clip, SR)
        if n < len(ids) - 1:  # the "system" reproduces its paired clip closely, and misses the last prompt
            helpers.write_clip(
                gen / f"{name}.flac", clip + 0.01 * rng.standard_normal(clip.size).astype(np.float32), SR
            )
    helpers.write_clip(gen / "not_a_prompt.wav", helpers.tone_clip(rng, SR, 3.0), SR)

    cfg = bench.compose(
        [
            "experiment=musiccaps_folder",
            f"model.folder.path={gen}",
            f"reference.folder.path={ref}",
            "prompts.musiccaps.limit=4",
            "model.synth.duration_s=3.0",
            "metric.fad.n_bootstrap=0",
            "metric.kl.n_bootstrap=0",
            f"output_dir={tmp_path / 'results'}",
            f"cache_dir={tmp_path / 'cache'}",
            "device=cpu",
            "progress=false",
            "report_formats=[]",
            "prepare_demo=false",  # (the experiment sets these too, but config.yaml's _self_ comes after it)
            "run_name=musiccaps_folder",
        ]
    )
    run_dir = bench.run(cfg)
    assert run_dir.name == "musiccaps_folder"

    board = pd.read_csv(run_dir / "leaderboard.csv").set_index("model")
    assert set(board.index) >= {"synth", "folder"}
    fad, kl = board["fad@musicnn"].astype(float), board["kl@musicnn"].astype(float)
    assert fad["folder"] < fad["synth"] and kl["folder"] < kl["synth"], board.to_dict()

    with open(run_dir / "errors.csv", newline="") as f:
        errors = list(csv.DictReader(f))
    missing = [e for e in errors if e["model"] == "folder" and e["stage"] == "gather"]
    assert len(missing) == 1 and missing[0]["reason"].startswith(f"no file for 1 of {len(ids)} prompts")
    listed = pd.read_csv(run_dir / "missing.csv", keep_default_na=False)
    assert listed.values.tolist() == [["folder", "musiccaps", ids[-1], "missing"],
                                      ["synth", "musiccaps", ids[-1], "excluded"]]  # coverage=intersect
    assert set(board["n_samples"]) == {len(ids) - 1} and board["same_n"].all()
    extra = (run_dir / "audio" / "folder" / "musiccaps" / "extra_files.txt").read_text().split()
    assert extra == [str((gen / "not_a_prompt.wav").resolve())]

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert "CC BY-SA 4.0" in manifest["prompt_sets"]["musiccaps"]["license"]
    assert manifest["models"]["folder"]["params"]["path"] == str(gen.resolve())
    assert sorted(p.name for p in gen.iterdir()) == sorted([f"{i}.flac" for i in ids[:-1]] + ["not_a_prompt.wav"])
