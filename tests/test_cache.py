"""bench.cache: atomic writes, checksummed entries (corruption => miss), locks, hashing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from filelock import Timeout

from bench.cache import (
    ArrayCache,
    atomic_path,
    atomic_write_json,
    read_json_checked,
    sha256_file,
    stable_hash,
    write_json_checked,
)


def test_sha256_file_matches_hashlib(tmp_path):
    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)  # spans several read chunks
    p = tmp_path / "blob"
    p.write_bytes(data)
    assert sha256_file(p) == hashlib.sha256(data).hexdigest()
    assert sha256_file(p, chunk=1000) == hashlib.sha256(data).hexdigest()


def test_stable_hash_ignores_key_order_and_has_requested_length():
    a = stable_hash({"x": 1, "y": [1, 2, {"z": "w"}]}, 20)
    assert a == stable_hash({"y": [1, 2, {"z": "w"}], "x": 1}, 20) and len(a) == 20
    assert a != stable_hash({"x": 1, "y": [2, 1, {"z": "w"}]}, 20)
    blob = json.dumps({"a": 1}, sort_keys=True, separators=(",", ":")).encode()
    assert stable_hash({"a": 1}, 64) == hashlib.sha256(blob).hexdigest()


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"v": 1}  # old content intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]  # no temp file left


def test_array_cache_round_trip_with_meta(tmp_path):
    c = ArrayCache(tmp_path)
    arrays = {"emb": np.arange(12, dtype=np.float32).reshape(3, 4), "probs": np.array([0.25, 0.75], np.float32)}
    assert c.get("ab" * 16) is None and not c.has("ab" * 16)
    c.put("ab" * 16, arrays, meta={"notes": ["all-silent"], "format": "WAV"})
    got, meta = c.get_with_meta("ab" * 16)
    assert set(got) == {"emb", "probs"} and meta == {"notes": ["all-silent"], "format": "WAV"}
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k])
    assert set(c.get("ab" * 16)) == {"emb", "probs"}  # meta never leaks into the arrays
    assert c.path("ab" * 16) == tmp_path / "ab" / f"{'ab' * 16}.npz"
    with pytest.raises(ValueError, match="reserved"):
        c.put("cd" * 16, {"__meta__": np.zeros(1)})


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_corrupt_entry_is_a_miss(tmp_path, damage):
    c = ArrayCache(tmp_path)
    key = "0f" * 16
    c.put(key, {"emb": np.random.default_rng(1).standard_normal((50, 8)).astype(np.float32)})
    p = c.path(key)
    raw = bytearray(p.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":  # flip bytes inside the array payload (the zip container stays readable)
        for i in range(len(raw) // 3, len(raw) // 3 + 40):
            raw[i] ^= 0xFF
    elif damage == "empty":
        raw = bytearray()
    else:
        raw = bytearray(b"not an npz at all")
    p.write_bytes(bytes(raw))
    assert c.get(key) is None and not c.has(key)


def test_coherent_but_wrong_entry_is_caught_by_the_checksum(tmp_path):
    """A well-formed npz (valid zip CRCs) whose array was changed after the checksum was taken."""
    c = ArrayCache(tmp_path)
    key = "1e" * 16
    c.put(key, {"emb": np.ones((64, 4), np.float32)})
    p = c.path(key)
    with np.load(p) as z:
        members = {k: z[k] for k in z.files}
    members["emb"][3, 1] = 1.0000001
    with open(p, "wb") as f:
        np.savez(f, **members)
    with np.load(p) as z:  # numpy and zipfile are satisfied
        assert z["emb"][3, 1] != 1.0
    assert c.get(key) is None


def test_lock_excludes_other_processes(tmp_path):
    c = ArrayCache(tmp_path)
    key = "2d" * 16
    script = textwrap.dedent(f"""
        import sys, time
        from filelock import FileLock
        lock = FileLock({str(c.path(key)) + '.lock'!r})
        lock.acquire()
        print("locked", flush=True)
        time.sleep(30)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(Timeout):
            c.lock(key).acquire(timeout=0)
    finally:
        proc.kill()
        proc.wait()
    lock = c.lock(key)
    lock.acquire(timeout=5)  # released by the kernel when the holder died
    lock.release()


def test_checked_json_round_trip_and_tamper(tmp_path):
    p = tmp_path / "s" / "x.json"
    obj = {"value": 1.25, "per_item": {"a": 0.5}, "replicates": [1.0, float("nan")]}
    write_json_checked(p, obj)
    got = read_json_checked(p)
    assert got["value"] == 1.25 and got["per_item"] == {"a": 0.5} and np.isnan(got["replicates"][1])
    doc = json.loads(p.read_text())
    doc["data"]["value"] = 1.5
    p.write_text(json.dumps(doc))
    assert read_json_checked(p) is None
    p.write_text('{"sha256": "x", "da')
    assert read_json_checked(p) is None
    assert read_json_checked(tmp_path / "missing.json") is None
    p.write_text(json.dumps({"value": 1.0}))  # the old, unwrapped layout counts as a miss
    assert read_json_checked(p) is None


def test_sweep_tmp_removes_only_old_temp_files(tmp_path):
    c = ArrayCache(tmp_path)
    c.put("aa" * 16, {"emb": np.zeros(3, np.float32)})
    old = tmp_path / "aa" / ".x.npz.123.tmp"
    new = tmp_path / "aa" / ".y.npz.456.tmp"
    old.write_bytes(b"partial")
    new.write_bytes(b"partial")
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert c.sweep_tmp(max_age_s=3600) == 1
    assert not old.exists() and new.exists() and c.has("aa" * 16)
    assert ArrayCache(tmp_path / "none").sweep_tmp() == 0
