"""Identity from construction (bench.identity): params()/id come from the constructor arguments.

The pinned ids below were computed with the hand-written ``params()`` methods that preceded the
derived ones (commit 3217661): cache entries written before stay valid. Intended changes:
``clap_score`` (``per_item`` was missing from its id) and ``kl``, whose later ``report_directions``
argument (it decides which extras a result holds) enters the id because it is a constructor argument.
"""

from __future__ import annotations

from typing import Any

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from bench.embedders.base import EmbedderUnavailable
from bench.identity import Configured, init_params
from bench.metrics.base import BootstrapMetric, Metric, MetricInput, MetricResult
from bench.metrics.clap_score import CLAPScore
from bench.resources import CONFIG_DIR

PINNED = {
    ("metric", "fad"): "fad-1e80460d415d",
    ("metric", "fad_inf"): "fad_inf-fdb8a4cee6ac",
    ("metric", "inception_score"): "inception_score-900531a46311",
    ("metric", "kad"): "kad-3e8cab1f8e2d",
    ("metric", "kl"): "kl-f7ecf0caa8c1",  # kl-e40e8b04b82e before report_directions existed
    ("metric", "memorization"): "memorization-8020fdda2c3f",
    ("metric", "prdc"): "prdc-647eb03a58be",
    ("embedder", "logmel"): "logmel-9ba1298a7b77",
    # weights shipped as wheels (skipped where they are not installed)
    ("embedder", "aisfx"): "aisfx-791b328766a2",
    ("embedder", "musicnn"): "musicnn-4921640cd2da",
    ("embedder", "musicnn_mtt"): "musicnn_mtt-5b24c7613e74",
    ("embedder", "musicnn_vgg"): "musicnn_vgg-bbd156eecf18",
}


#: built with their former resampler: the polyphase form of resampy kaiser_best (docs/throughput.md)
#: became their default later and changes their ids on purpose
FORMER_RESAMPLER = {"musicnn", "musicnn_mtt", "musicnn_vgg"}


def build(group: str, key: str, **override: Any):
    node = OmegaConf.load(CONFIG_DIR / group / f"{key}.yaml")[key]
    if key in FORMER_RESAMPLER and "audio" not in override:
        assert node.audio.resampler == "kaiser_best_polyphase"
        override["audio"] = {**OmegaConf.to_container(node.audio), "resampler": "resampy_kaiser_best"}
    cfg = OmegaConf.merge({"device": "cpu", "batch_size": 2, "seed": 0}, {"x": node})
    return instantiate({**OmegaConf.to_container(cfg, resolve=True)["x"], **override})


@pytest.mark.parametrize(("group", "key"), sorted(PINNED), ids=lambda x: str(x))
def test_ids_unchanged_by_derived_identity(group, key):
    try:
        obj = build(group, key)
    except Exception as exc:  # hydra wraps the backend's EmbedderUnavailable
        if isinstance(exc.__cause__, EmbedderUnavailable) or "Unavailable" in str(exc):
            pytest.skip(f"{key} weights not installed")
        raise
    assert obj.id == PINNED[(group, key)]


def test_kl_id_depends_on_report_directions():
    from bench.metrics.kl import KL

    assert KL(report_directions=True).id != KL().id


def test_clap_score_id_depends_on_per_item():
    """Regression: a cached per-clip result must not be served for per_item="prompt"."""
    clip, prompt = CLAPScore(per_item="clip"), CLAPScore(per_item="prompt")
    assert clip.id != prompt.id
    assert clip.params()["per_item"] == "clip" and prompt.params()["per_item"] == "prompt"
    assert CLAPScore(text_batch=3).id == clip.id  # batch size of the text tower: speed only


def test_bootstrap_settings_come_from_the_base():
    from bench.metrics.fad import FAD
    from bench.metrics.kl import KL

    assert FAD().ci_method == "shifted" and KL().ci_method == "percentile"  # class defaults
    fad = FAD(n_bootstrap=7, ci=0.9, ci_method="basic")
    assert (fad.n_bootstrap, fad.ci, fad.ci_method) == (7, 0.9, "basic")
    assert {"n_bootstrap", "ci", "ci_method"} <= set(init_params(FAD)[0])
    with pytest.raises(ValueError, match="ci_method must be one of"):
        FAD(ci_method="bca")


class _Toy(BootstrapMetric):
    name = "toy"
    non_value_params = (*BootstrapMetric.non_value_params, "chunk")

    def __init__(self, alpha: float = 1.0, chunk: int = 4, forgotten: int = 0, **bootstrap: Any):
        super().__init__(**bootstrap)
        self.alpha = float(alpha)
        self.chunk = chunk
        del forgotten  # not stored: params() must refuse rather than leave it out of the id

    def compute(self, inp: MetricInput) -> MetricResult:
        return MetricResult(value=self.alpha)


def test_param_names_follow_kwargs_chain_and_unstored_args_are_refused():
    assert init_params(_Toy) == (["alpha", "chunk", "forgotten", "n_bootstrap", "ci", "ci_method"], False)
    with pytest.raises(TypeError, match=r"'forgotten'.*self\.forgotten"):
        _Toy().params()


def test_params_are_name_fixed_facts_and_value_args():
    class Toy(BootstrapMetric):
        name = "toy"
        non_value_params = (*BootstrapMetric.non_value_params, "chunk")
        fixed_params = {"pooling": "clip_mean"}

        def __init__(self, alpha: float = 1.0, chunk: int = 4, **bootstrap: Any):
            super().__init__(**bootstrap)
            self.alpha, self.chunk = float(alpha), chunk

        def compute(self, inp: MetricInput) -> MetricResult:
            return MetricResult(value=self.alpha)

    p = Toy(alpha=2, chunk=99, n_bootstrap=5).params()
    assert p == {"name": "toy", "pooling": "clip_mean", "alpha": 2.0, "n_bootstrap": 5, "ci": 0.95,
                 "ci_method": "percentile"}
    assert Toy(chunk=1).id == Toy(chunk=2).id != Toy(alpha=3).id
    assert issubclass(Toy, Configured) and issubclass(Toy, Metric)


# -- model adapters -------------------------------------------------------------------------------
#: params() of every model config, written by the hand-written ``params()`` methods that preceded the
#: derived ones (commit 0b31112), paths replaced by placeholders: generated outputs on disk (keyed by
#: the hash of these params) stay valid across the change
MODEL_GOLDEN = CONFIG_DIR.parents[1] / "tests" / "golden" / "model_params.json"
#: intended changes: the manifest column names of a folder model decide which file each prompt gets
COLUMNS = {"id_column": "id", "path_column": "path", "sample_column": "sample"}
INTENDED = {"folder": COLUMNS, "folders": COLUMNS}
DEGRADED = {"_target_": "bench.models.degraded.DegradedClips", "degradation": "lowpass", "level": 4000.0}


def model_params(key: str, tiny_checkpoint, folder) -> dict[str, Any]:
    """``params()`` of config ``key`` (defaults; a tiny checkpoint / a folder where one is needed), with
    the checkpoint and folder paths replaced by ``<checkpoint>`` / ``<folder>``."""
    import json

    from tests.tiny_generators import FAST

    node = DEGRADED if key == "degraded" else OmegaConf.load(CONFIG_DIR / "model" / f"{key}.yaml")[key]
    cfg = OmegaConf.merge({"device": "cpu", "batch_size": 2, "seed": 0}, {"x": node})
    node = OmegaConf.to_container(cfg, resolve=True)["x"]
    paths = {}
    if key in FAST:
        node["checkpoint"] = str(tiny_checkpoint(FAST[key][0]))
        paths[node["checkpoint"]] = "<checkpoint>"
    if "path" in node:
        node["path"] = str(folder)
        paths[str(folder.resolve())] = "<folder>"
    obj = instantiate(node)
    if isinstance(obj, dict):  # folders: one model per sub-folder
        ((_, obj),) = obj.items()
        paths[str((folder / "a").resolve())] = "<folder>/a"
    text = json.dumps(obj.params(), sort_keys=True)
    for path, placeholder in sorted(paths.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(json.dumps(path)[1:-1], placeholder)
    return json.loads(text)


MODEL_KEYS = [*sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml")), "degraded"]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    import numpy as np
    import soundfile as sf

    root = tmp_path_factory.mktemp("models")
    (root / "a").mkdir()
    sf.write(root / "a" / "p1.wav", np.zeros(160, dtype=np.float32), 16000)
    return root


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_model_params_unchanged_by_derived_identity(key, tiny_checkpoint, model_folder):
    import json
    import os

    golden = json.loads(MODEL_GOLDEN.read_text()) if MODEL_GOLDEN.is_file() else {}
    got = model_params(key, tiny_checkpoint, model_folder)
    if os.environ.get("GENAUDIO_BENCH_WRITE_GOLDEN") == "model_params":
        golden[key] = got
        MODEL_GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    assert got == {**golden[key], **INTENDED.get(key, {})}
