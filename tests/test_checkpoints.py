"""Weight resolution and safe loading (bench.checkpoints), shared by every backend."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from bench.checkpoints import (
    TOFU_FILE,
    CheckpointMismatch,
    CheckpointSpec,
    CheckpointUnavailable,
    check_of,
    resolve,
    torch_load_weights,
)


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
    ledger = tmp_path / "home" / "checkpoints" / TOFU_FILE
    ledger.unlink()  # each step below stands for another machine (else trust on first use refuses new content)
    (tmp_path / "home" / "checkpoints" / "w.pt").write_bytes(b"cache")
    path, digest = resolve(spec, extra_dirs=[extra])  # the standard cache wins over other tools' dirs
    assert path.read_bytes() == b"cache" and digest == hashlib.sha256(b"cache").hexdigest()
    ledger.unlink()
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


# -- integrity: publisher digests, Hugging Face blobs, trust on first use -----------------------------------
def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUDIO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GENAUDIO_BENCH_OFFLINE", "1")
    (tmp_path / "home" / "checkpoints").mkdir(parents=True)
    return tmp_path / "home" / "checkpoints"


def test_pinned_sha256_mismatch_names_file_expected_and_actual(home, tmp_path):
    good = b"the published weights"
    spec = CheckpointSpec("m.pt", url="https://example.org/m.pt", sha256=_sha(good), source="HF LFS sha256")
    (home / "m.pt").write_bytes(good)
    path, digest = resolve(spec)
    assert digest == _sha(good) and "sha256 pinned (HF LFS sha256)" in check_of(path)
    bad = tmp_path / "elsewhere" / "m.pt"  # the published name given explicitly: checked as well
    bad.parent.mkdir()
    bad.write_bytes(b"truncated")
    with pytest.raises(CheckpointMismatch) as exc:
        resolve(spec, bad)
    msg = str(exc.value)
    assert str(bad) in msg and _sha(good) in msg and _sha(b"truncated") in msg and "https://example.org/m.pt" in msg
    mine = tmp_path / "elsewhere" / "m_finetuned.pt"  # another name: a user checkpoint, recorded, not verified
    mine.write_bytes(b"fine-tuned")
    assert resolve(spec, mine)[1] == _sha(b"fine-tuned")
    assert check_of(mine).startswith("user checkpoint")


def test_pinned_md5(home):
    data = b"zenodo file"
    spec = CheckpointSpec("z.pth", md5=hashlib.md5(data).hexdigest(), source="Zenodo md5")
    (home / "z.pth").write_bytes(data)
    assert "md5 pinned (Zenodo md5)" in check_of(resolve(spec)[0])
    (home / "z.pth").write_bytes(b"zenodo fil")
    with pytest.raises(CheckpointMismatch, match=hashlib.md5(data).hexdigest()):
        resolve(spec)


def test_hugging_face_cache_blob_name_and_alias_pin(home, tmp_path):
    data = b"hub weights"
    snap = tmp_path / "hub" / "models--org--m" / "snapshots" / "rev"
    blobs = tmp_path / "hub" / "models--org--m" / "blobs"
    snap.mkdir(parents=True)
    blobs.mkdir()
    (blobs / _sha(data)).write_bytes(data)
    (snap / "pytorch_model.bin").symlink_to(blobs / _sha(data))
    spec = CheckpointSpec("m.bin", sha256=_sha(data), hub_aliases=("pytorch_model.bin",), source="HF LFS")
    path, _ = resolve(spec, snap / "pytorch_model.bin")
    assert "blob name" in check_of(path) and "sha256 pinned" in check_of(path)
    other = CheckpointSpec("m.bin", sha256=_sha(b"another release"), hub_aliases=("pytorch_model.bin",))
    with pytest.raises(CheckpointMismatch, match=_sha(b"another release")):
        resolve(other, snap / "pytorch_model.bin")
    (blobs / _sha(data)).write_bytes(b"bit rot")  # content no longer matches the blob's name
    with pytest.raises(CheckpointMismatch, match="blob"):
        resolve(spec, snap / "pytorch_model.bin")


def test_trust_on_first_use(home, tmp_path):
    spec = CheckpointSpec("t.pt", url="https://example.org/t.pt")
    (home / "t.pt").write_bytes(b"first")
    path, _ = resolve(spec)
    assert "recorded on first use" in check_of(path)
    assert (home / TOFU_FILE).is_file()
    assert "matches the one recorded" in check_of(resolve(spec)[0])
    (home / "t.pt").write_bytes(b"swapped")
    with pytest.raises(CheckpointMismatch) as exc:
        resolve(spec)
    assert _sha(b"first") in str(exc.value) and _sha(b"swapped") in str(exc.value) and TOFU_FILE in str(exc.value)
    given = tmp_path / "t.pt"  # an explicit path is checked against pins only (never written to the ledger)
    given.write_bytes(b"given")
    assert "given explicitly" in check_of(resolve(spec, given)[0])


def test_bad_download_is_removed(home, monkeypatch):
    import bench.checkpoints as C

    monkeypatch.delenv("GENAUDIO_BENCH_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(C, "download", lambda url, dest, timeout=30.0: dest.write_bytes(b"captive portal page"))
    spec = CheckpointSpec("d.pt", url="https://example.org/d.pt", sha256=_sha(b"weights"))
    with pytest.raises(CheckpointMismatch, match=_sha(b"weights")):
        resolve(spec)
    assert not (home / "d.pt").exists()


def test_hf_model_folder_blobs_are_verified_and_checks_reach_the_manifest(home, tmp_path):
    from bench.checkpoints import with_checks
    from bench.models.hf import weight_digests

    data = b"diffusers weights"
    snap, blobs = tmp_path / "snap", tmp_path / "blobs"
    snap.mkdir()
    blobs.mkdir()
    (blobs / _sha(data)).write_bytes(data)
    (snap / "model.safetensors").symlink_to(blobs / _sha(data))
    got = with_checks(weight_digests(snap, "m"))
    assert got["m/model.safetensors"]["sha256"] == _sha(data) and "blob name" in got["m/model.safetensors"]["check"]
    (blobs / _sha(data)).write_bytes(b"half a download")
    with pytest.raises(CheckpointMismatch, match=_sha(data)):
        weight_digests(snap, "m")
    spec = CheckpointSpec("x.pt")
    (tmp_path / "x.pt").write_bytes(b"x")
    path, digest = resolve(spec, tmp_path / "x.pt")
    assert with_checks({"x": {"path": str(path), "sha256": digest}})["x"]["check"] == check_of(path) != ""


OLD_NAMES = ("weights_path", "checkpoint_dir", "local_path")


def test_one_config_name_for_the_weights():
    """Every embedder / model option that loads weights takes ``checkpoint``; the old names are gone from the
    shipped configs (they remain accepted, deprecated, by the constructors)."""
    from omegaconf import OmegaConf

    from bench.config import accepted_params, locate_target
    from bench.resources import CONFIG_DIR

    with_weights = 0
    for group in ("embedder", "model"):
        for f in sorted((CONFIG_DIR / group).glob("*.yaml")):
            for key, node in OmegaConf.load(f).items():
                if not hasattr(node, "get") or "_target_" not in node:
                    continue
                assert not set(OLD_NAMES) & set(node.keys()), f"{f.name}: use checkpoint"
                params, _ = accepted_params(locate_target(node["_target_"]))
                if any(n in params for n in OLD_NAMES) or "checkpoint" in node:
                    with_weights += 1
                    assert "checkpoint" in node and "checkpoint" in params, f"{f.name} ({key})"
    assert with_weights >= 20


def test_old_weight_argument_names_are_deprecated_aliases(tmp_path):
    from bench.checkpoints import renamed_argument

    with pytest.warns(FutureWarning, match=r"embedder\.passt\.weights_path is deprecated: use embedder\.passt\.checkpoint"):
        assert renamed_argument(None, "/w.pt", "weights_path", "embedder.passt") == "/w.pt"
    assert renamed_argument("/new.pt", None, "weights_path", "embedder.passt") == "/new.pt"
    with pytest.raises(ValueError, match=r"embedder\.passt\.checkpoint only"):
        renamed_argument("/new.pt", "/old.pt", "weights_path", "embedder.passt")


def test_docs_table_lists_every_pinned_digest():
    """docs/checkpoints.md is the user's answer to "which checkpoint gets which check": every digest pinned
    in the code is in it (and the table's published names are the code's)."""
    from pathlib import Path

    from bench.embedders import aisfx, clap, encodec, mert, musicnn, pann, passt, vggish

    doc = (Path(__file__).parents[1] / "docs" / "checkpoints.md").read_text(encoding="utf-8")
    pins = [v.sha256 for v in clap.VARIANTS.values() if v.sha256] + list(mert.WEIGHTS_SHA256.values())
    pins += [v.md5 for v in pann.VARIANTS.values()] + [aisfx.CHECKPOINT_SHA256]
    assert all(p and p in doc for p in pins)
    names = [v.filename for v in clap.VARIANTS.values()] + [v.filename for v in pann.VARIANTS.values()]
    names += [v.filename for v in encodec.VARIANTS.values()] + [Path(passt.PASST_URL).name]
    names += [Path(vggish.VGGISH_URL).name, Path(vggish.PCA_URL).name]
    assert all(n in doc for n in names), [n for n in names if n not in doc]
    assert all(m in doc for m in ("musicnn", "openl3")) and len(musicnn.MODELS) == 4
