"""TF checkpoint reader: CRC32C against published check values, wire format, the real musicnn checkpoints.

Real-checkpoint tests need the ``musicnn==0.1.0`` wheel (installed by scripts/setup.sh) and skip without it.
"""

from __future__ import annotations

import os
import shutil
import struct

import numpy as np
import pytest

from bench.formats.tf_checkpoint import (
    CheckpointFormatError,
    TFCheckpoint,
    crc32c,
    mask_crc,
    parse_fields,
    read_table,
    read_varint,
    unmask_crc,
)


def _bitwise_crc32c(data: bytes) -> int:
    """Textbook bit-at-a-time CRC-32C (reflected 0x82F63B78), independent of the table/lane code."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"123456789", 0xE3069283),  # the standard CRC-32C check value
        (bytes(32), 0x8A9136AA),  # RFC 3720 appendix B.4 test vectors
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
        (b"", 0x0),
    ],
)
def test_crc32c_known_vectors(data: bytes, expected: int) -> None:
    assert crc32c(data) == expected


@pytest.mark.parametrize("n", [1, 511, 8192, 9001, 20011])  # >= 8192 bytes take the parallel-lane path
@pytest.mark.parametrize("lanes", [2, 7, 4096])
def test_crc32c_parallel_lanes_match_bitwise(n: int, lanes: int) -> None:
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()
    assert crc32c(data, lanes=lanes) == _bitwise_crc32c(data)


def test_mask_roundtrip() -> None:
    for crc in (0, 1, 0xE3069283, 0xFFFFFFFF):
        assert unmask_crc(mask_crc(crc)) == crc
        assert mask_crc(crc) != crc
        assert unmask_crc(unmask_crc(mask_crc(mask_crc(crc)))) == crc


def test_varint_and_wire_format() -> None:
    assert read_varint(b"\xac\x02", 0) == (300, 2)  # protobuf docs example
    minus_one = b"\xff" * 9 + b"\x01"  # int64 -1 as a 10-byte varint
    assert read_varint(minus_one, 0) == ((1 << 64) - 1, 10)
    # field 1 varint 150, field 2 bytes "ab", field 6 fixed32, field 4 fixed64
    msg = b"\x08\x96\x01" + b"\x12\x02ab" + b"\x35" + struct.pack("<I", 0xDEADBEEF) + b"\x21" + struct.pack("<Q", 7)
    assert parse_fields(msg) == [(1, 0, 150), (2, 2, b"ab"), (6, 5, 0xDEADBEEF), (4, 1, 7)]
    with pytest.raises(CheckpointFormatError):
        parse_fields(b"\x12\x05ab")  # length beyond the buffer


# -- the real musicnn checkpoints ---------------------------------------------------------------


def _musicnn_root():
    from bench.embedders.musicnn import installed_package_dir

    root = installed_package_dir()
    if root is None or not (root / "MSD_musicnn" / ".index").is_file():
        pytest.skip("musicnn==0.1.0 wheel not installed (pip install --no-deps musicnn==0.1.0)")
    return root


@pytest.mark.parametrize("model", ["MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"])
def test_real_checkpoint_variables_match_model(model: str) -> None:
    torch = pytest.importorskip("torch")
    from bench.embedders.musicnn import MODELS, MusicnnNet, MusicnnVGG, model_variables, tf_to_state_dict

    ckpt = TFCheckpoint(_musicnn_root() / model)
    assert ckpt.num_shards == 1
    names = model_variables(ckpt.names())
    # every Adam slot mirrors a model variable; only the two beta powers are left
    extra = set(ckpt.names()) - set(names)
    assert {n for n in extra if "/Adam" not in n} == {"beta1_power", "beta2_power"}
    assert {n.split("/Adam")[0] for n in extra if "/Adam" in n} == set(names) - {
        n for n in names if n.endswith(("moving_mean", "moving_variance"))
    }
    tf = ckpt.read_all(names)  # CRC32C-verified
    assert all(a.dtype == np.float32 for a in tf.values())
    arch = MODELS[model][0]
    net = MusicnnNet(50) if arch == "musicnn" else MusicnnVGG(50)
    sd = tf_to_state_dict(arch, tf)
    ref = net.state_dict()
    assert set(sd) == set(ref)
    assert {k: tuple(v.shape) for k, v in sd.items()} == {k: tuple(v.shape) for k, v in ref.items()}
    if arch == "musicnn":
        assert ckpt.entries["conv2d/kernel"].shape == (7, 38, 1, 204)  # timbral 7 x int(0.4 * 96)
        assert ckpt.entries["conv2d_1/kernel"].shape == (7, 67, 1, 204)  # timbral 7 x int(0.7 * 96)
        assert ckpt.entries["dense/kernel"].shape == (1506, 200)  # 2 x 753 pooled -> 200
    # moving variances are positive, as after real training
    assert all((v > 0).all() for k, v in tf.items() if k.endswith("moving_variance"))
    assert torch.is_tensor(sd["out.weight"])


def _copy_model(tmp_path, model: str = "MTT_musicnn"):
    src = _musicnn_root() / model
    dst = tmp_path / model
    dst.mkdir()
    for f in (".index", ".data-00000-of-00001"):
        shutil.copyfile(src / f, dst / f)
    return dst


def test_flipped_byte_in_data_is_caught(tmp_path) -> None:
    dst = _copy_model(tmp_path)
    ckpt = TFCheckpoint(dst)
    entry = ckpt.entries["dense/kernel"]
    path = dst / ".data-00000-of-00001"
    raw = bytearray(path.read_bytes())
    raw[entry.offset + entry.size // 2] ^= 0x10
    path.write_bytes(bytes(raw))
    ckpt = TFCheckpoint(dst)
    with pytest.raises(CheckpointFormatError, match=r"dense/kernel.*crc32c"):
        ckpt.read("dense/kernel")
    assert ckpt.read("dense/kernel", verify=False).shape == (1506, 200)
    assert ckpt.read("dense_1/kernel").shape == (200, 50)  # other tensors unaffected


def test_flipped_byte_in_index_is_caught(tmp_path) -> None:
    dst = _copy_model(tmp_path)
    path = dst / ".index"
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointFormatError, match="crc32c"):
        TFCheckpoint(dst)


def test_truncated_data_and_bad_magic(tmp_path) -> None:
    dst = _copy_model(tmp_path)
    data = dst / ".data-00000-of-00001"
    with open(data, "r+b") as fh:
        fh.truncate(os.path.getsize(data) // 2)
    ckpt = TFCheckpoint(dst)
    last = max(ckpt.entries.values(), key=lambda e: e.offset)
    with pytest.raises(CheckpointFormatError, match="outside"):
        ckpt.read(last.name)
    bogus = tmp_path / "bogus.index"
    bogus.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointFormatError, match="magic"):
        read_table(bogus)
