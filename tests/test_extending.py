"""README "Extending": its three worked examples, as printed, make a working embedder, metric and model
adapter from one module and three option files in a user config folder, with no change to ``bench/``.

The code blocks are read from README.md (so the README cannot drift from the API); the names they leave
to the reader (``my_distance``, ``my_generator``, ``URL``, the network behind ``embed``) are given here.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

import bench
from bench.config import use_config_dirs
from bench.pipeline import validate

README = Path(__file__).resolve().parents[1] / "README.md"

PREAMBLE = '''
import numpy as np

from bench.audio import AudioSpec
from bench.checkpoints import CheckpointSpec, resolve
from bench.embedders.base import Embedder, window_batch
from bench.metrics.base import BootstrapMetric, MetricInput, MetricResult
from bench.metrics.bootstrap import weighted_mean_replicates
from bench.models.base import Model

URL = None


def my_distance(gen, ref, alpha):
    """Per generated clip: alpha x distance to the reference mean."""
    return alpha * np.linalg.norm(gen - ref.mean(axis=0), axis=1)


def my_generator(text, seed, seconds, temperature):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 32000)) / 32000
    f0 = 110.0 * (1 + len(text) % 12)
    return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.05 * temperature * rng.standard_normal(t.size)).astype(np.float32)
'''

NETWORK = '''

class MineNetEmbedder(MineEmbedder):
    """The README's embedder with a stand-in network: log energy in 8 bands per hop_s frame."""

    def embed(self, wav):
        hop = int(self.hop_s * self.audio.sample_rate)
        frames = window_batch(wav, hop, hop)                          # (T, hop)
        spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        bands = np.stack([b.sum(axis=1) for b in np.array_split(spec, 8, axis=1)], axis=1)
        return {"emb": np.log(bands + 1e-8).astype(np.float32)}
'''


def readme_examples() -> str:
    text = README.read_text()
    section = text[text.index("## Extending"):]
    section = section[: section.index("\n## ", 3)]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 3, "README Extending: one worked example per kind"
    return "\n\n".join(textwrap.dedent(b) for b in blocks)


@pytest.fixture
def user_extension(tmp_path, monkeypatch):
    pkg = tmp_path / "ext"
    pkg.mkdir()
    (pkg / "mine_ext.py").write_text(PREAMBLE + "\n\n" + readme_examples() + NETWORK)
    monkeypatch.syspath_prepend(str(pkg))
    weights = tmp_path / "mine.pt"
    weights.write_bytes(b"weights of mine")
    conf = tmp_path / "conf"
    for group, body in {
        "embedder": f"_target_: mine_ext.MineNetEmbedder\ncheckpoint: {weights}\ndevice: ${{device}}\n"
                    "batch_size: ${batch_size}",
        "metric": "_target_: mine_ext.Mine\nalpha: 2.0\nn_bootstrap: 20",
        "model": "_target_: mine_ext.MineModel\ntemperature: 0.5\nduration_s: 1.0\nseed: ${seed}\n"
                 "batch_size: ${batch_size}",
    }.items():
        (conf / group).mkdir(parents=True)
        (conf / group / "mine.yaml").write_text("mine:\n" + textwrap.indent(body, "  ") + "\n")
    yield conf
    use_config_dirs(())
    sys.modules.pop("mine_ext", None)


def test_readme_examples_run_end_to_end_from_a_user_folder(user_extension, tmp_path, run_cfg, bench_home_tmp):
    cfg = bench.compose(["model=[mine]", "embedder=[mine]", "metric=[mine]"], config_dir=user_extension)
    validate(cfg)  # the option files' keys are constructor arguments
    groups = {g: OmegaConf.to_container(cfg[g], resolve=True) for g in ("model", "embedder", "metric")}
    groups["model"].update(run_cfg(tmp_path)["model"])  # next to the oracle, synth and noise brackets
    run_dir = bench.run(run_cfg(tmp_path, **groups))

    board = pd.read_csv(run_dir / "leaderboard.csv").set_index("model")
    col = next(c for c in board.columns if c.startswith("mine"))
    assert board[col].notna().all() and {"mine", "oracle", "noise"} <= set(board.index)
    assert board.loc["oracle", col] < board.loc["noise", col]  # the toy distance still ranks the brackets
    marker = json.loads((run_dir / "audio" / "mine" / "tiny" / "_model.json").read_text())
    assert marker["params"]["temperature"] == 0.5 and marker["params"]["class"] == "mine_ext.MineModel"

    from mine_ext import Mine, MineModel, MineNetEmbedder

    assert MineModel(temperature=0.5).params() != MineModel(temperature=0.6).params()  # regenerates
    emb = MineNetEmbedder(checkpoint=str(tmp_path / "mine.pt"))
    assert emb.params()["hop_s"] == 0.5 and len(emb.params()["checkpoint_sha256"]) == 64
    assert Mine(chunk=1).id == Mine(chunk=2).id != Mine(alpha=3.0).id
