"""Hub weight resolution (local path > env var > HF cache > download) on a hand-built HF cache layout."""

from __future__ import annotations

import hashlib
import json

import pytest

from bench.cache import sha256_file
from bench.models.base import ModelUnavailable
from bench.models.hf import resolve_weights, weight_digests

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """``$HF_HUB_CACHE/models--org--tiny`` as huggingface_hub lays it out: blobs named by their sha256 (LFS)
    or git sha1, snapshot files symlinked to them, ``refs/main`` naming the commit."""
    hub = tmp_path / "hub"
    repo = hub / "models--org--tiny"
    snap = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True)
    (snap / "sub").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    weights = b"\x00\x01fake safetensors payload"
    digest = hashlib.sha256(weights).hexdigest()
    (repo / "blobs" / digest).write_bytes(weights)
    (repo / "blobs" / ("a" * 40)).write_text(json.dumps({"model_type": "tiny"}))
    (snap / "sub" / "model.safetensors").symlink_to(repo / "blobs" / digest)
    (snap / "config.json").symlink_to(repo / "blobs" / ("a" * 40))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TINY_PATH", raising=False)
    return snap, digest


def test_cached_snapshot_commit_and_lfs_digests(hf_cache):
    snap, digest = hf_cache
    w = resolve_weights("org/tiny", config_key="model.tiny.local_path")
    assert (w.path, w.source, w.commit) == (snap, "hf_cache", COMMIT)
    d = weight_digests(w.path, "tiny")
    assert list(d) == ["tiny/sub/model.safetensors"]
    assert d["tiny/sub/model.safetensors"]["sha256"] == digest == sha256_file(snap / "sub" / "model.safetensors")


def test_precedence_local_path_then_env(hf_cache, tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "w.bin").write_bytes(b"abc")
    monkeypatch.setenv("TINY_PATH", str(mine))
    assert resolve_weights("org/tiny", env_var="TINY_PATH").source == "env"
    w = resolve_weights("org/tiny", local_path=str(mine), env_var="TINY_PATH")
    assert w.source == "local_path" and w.commit is None
    assert weight_digests(mine, "r")["r/w.bin"]["sha256"] == hashlib.sha256(b"abc").hexdigest()


def test_offline_miss_names_repo_key_and_env(hf_cache):
    with pytest.raises(ModelUnavailable) as info:
        resolve_weights("org/other", revision="v1", config_key="model.other.local_path", env_var="OTHER_PATH")
    msg = str(info.value)
    assert "org/other (revision v1)" in msg and "model.other.local_path" in msg and "OTHER_PATH" in msg
    assert "huggingface-cli download org/other" in msg
