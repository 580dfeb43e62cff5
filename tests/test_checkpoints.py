"""Weight resolution and safe loading (bench.checkpoints), shared by every backend."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from bench.checkpoints import CheckpointSpec, CheckpointUnavailable, resolve, torch_load_weights


class _Code:
    pass


def test_resolve_order_explicit_env_cache_extra_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GENAUDIO_BENCH_OFFLINE", "1")
    spec = CheckpointSpec("w.pt", url="https://example.org/w.pt", env_var="W_PATH", config_key="embedder.x.checkpoint")
    with pytest.raises(CheckpointUnavailable, match=r"embedder\.x\.checkpoint.*W_PATH"):
        resolve(spec)
    extra = tmp_path / "other_tool"
    extra.mkdir()
    (extra / "w.pt").write_bytes(b"extra")
    assert resolve(spec, extra_dirs=[extra])[0] == extra / "w.pt"
    (tmp_path / "home" / "checkpoints").mkdir(parents=True)
    (tmp_path / "home" / "checkpoints" / "w.pt").write_bytes(b"cache")
    path, digest = resolve(spec, extra_dirs=[extra])  # the standard cache wins over other tools' dirs
    assert path.read_bytes() == b"cache" and digest == hashlib.sha256(b"cache").hexdigest()
    (tmp_path / "env.pt").write_bytes(b"env")
    monkeypatch.setenv("W_PATH", str(tmp_path / "env.pt"))
    assert resolve(spec)[0] == tmp_path / "env.pt"
    (tmp_path / "mine.pt").write_bytes(b"mine")
    assert resolve(spec, tmp_path / "mine.pt")[0] == tmp_path / "mine.pt"


def test_name_with_hub_digest_prefix_must_match_content(tmp_path):
    data = b"weights"
    good = tmp_path / f"model-{hashlib.sha256(data).hexdigest()[:8]}.pt"
    good.write_bytes(data)
    assert resolve(CheckpointSpec("model.pt"), good)[1] == hashlib.sha256(data).hexdigest()
    bad = tmp_path / "model-deadbeef.pt"
    bad.write_bytes(data)
    with pytest.raises(CheckpointUnavailable, match="deadbeef"):
        resolve(CheckpointSpec("model.pt"), bad)


def test_torch_load_weights_accepts_numpy_data_and_refuses_code(tmp_path):
    ok = tmp_path / "ok.pt"
    torch.save({"w": torch.ones(2), "epoch": np.int64(3), "pca": np.eye(2)}, ok)
    sd = torch_load_weights(ok)
    assert sd["epoch"] == 3 and np.array_equal(sd["pca"], np.eye(2)) and torch.equal(sd["w"], torch.ones(2))
    code = tmp_path / "code.pt"
    torch.save({"w": torch.ones(2), "obj": _Code()}, code)
    with pytest.raises(CheckpointUnavailable, match="refusing"):
        torch_load_weights(code)
    with pytest.raises(CheckpointUnavailable, match="refusing"):  # a narrower allow-list refuses arrays
        torch_load_weights(ok, allowed=[])
    broken = tmp_path / "broken.pt"
    broken.write_bytes(ok.read_bytes()[:100])
    with pytest.raises(CheckpointUnavailable, match="cannot load weights"):
        torch_load_weights(broken)
