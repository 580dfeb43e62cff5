"""Resolving model weights: explicit path > env var > cache dirs > download (when online).

Offline failure raises :class:`CheckpointUnavailable` whose message names the file, its URL, the
config key and the environment variable that provide it. Nothing here executes downloaded code.

Integrity (:func:`verify`, on every use; the outcome is recorded per file, see :func:`check_of`, and
goes into the run manifest). A file carrying the published file name (``spec.filename``, ``spec.aliases``,
or ``spec.hub_aliases`` inside a Hugging Face hub cache) must match the check its publisher supports:

1. ``spec.sha256``: the publisher's sha256 (Hugging Face shows it as the LFS object id);
2. ``spec.md5``: the publisher's md5 (Zenodo records publish one per file);
3. the torch.hub naming convention ``name-<sha256 prefix>.ext`` (torchvggish, EnCodec);
4. a file in a Hugging Face hub cache is a link to ``blobs/<sha256>``: its content must match that name;
5. none of these: the sha256 seen on first use is recorded in
   ``$GENAUDIO_BENCH_HOME/checkpoints/trust-on-first-use.json`` and later uses must match it
   (trust on first use; only for files the project found or downloaded itself).

A mismatch raises :class:`CheckpointMismatch` naming the file, the expected and the actual digest.
A checkpoint under another file name (a fine-tuned or converted model given explicitly) is
accepted; its sha256 is recorded, marked as not verified. docs/checkpoints.md lists every
published checkpoint and its check.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
import re
import urllib.request
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cache import atomic_path

#: Environment variable naming the root of all genaudio-bench caches.
HOME_ENV = "GENAUDIO_BENCH_HOME"


class CheckpointUnavailable(RuntimeError):
    """Weights could not be found or fetched; ``str(exc)`` says how to provide them."""


class CheckpointMismatch(CheckpointUnavailable):
    """A file's digest differs from the published (or first recorded) one."""


def bench_home() -> Path:
    return Path(os.environ.get(HOME_ENV, Path.home() / ".cache" / "genaudio-bench")).expanduser()


def is_offline() -> bool:
    return any(os.environ.get(v, "") not in ("", "0") for v in ("GENAUDIO_BENCH_OFFLINE", "HF_HUB_OFFLINE"))


@dataclass(frozen=True)
class CheckpointSpec:
    """A weights file a backend needs.

    filename: name of the file in the cache dirs.
    url: where it is published (None when it only ships inside a package).
    sha256: the publisher's sha256 of the file (None: not published).
    env_var: environment variable that may hold a path to the file.
    config_key: the Hydra key a user sets to a local path (quoted in error messages).
    md5: the publisher's md5 (Zenodo), checked when no sha256 is pinned.
    source: where the pinned digest is published (for messages and docs/checkpoints.md).
    aliases: other names the published file is distributed under (pins apply to them too).
    hub_aliases: its names inside a Hugging Face hub cache (pins apply there: ``pytorch_model.bin``).
    """

    filename: str
    url: str | None = None
    sha256: str | None = None
    env_var: str | None = None
    config_key: str | None = None
    md5: str | None = None
    source: str | None = None
    aliases: tuple[str, ...] = ()
    hub_aliases: tuple[str, ...] = ()

    @classmethod
    def published(cls, url: str, **kw: Any) -> CheckpointSpec:
        """The spec of a file cached under its published name (the last part of ``url``)."""
        return cls(filename=url.rsplit("/", 1)[-1], url=url, **kw)

    def how_to_provide(self) -> str:
        ways = []
        if self.config_key:
            ways.append(f"set {self.config_key}=/path/to/{self.filename}")
        if self.env_var:
            ways.append(f"export {self.env_var}=/path/to/{self.filename}")
        ways.append(f"place it at {bench_home() / 'checkpoints' / self.filename}")
        src = f" (published at {self.url})" if self.url else ""
        return f"checkpoint {self.filename}{src} is not available: " + "; or ".join(ways)


def renamed_argument(checkpoint: Any, old_value: Any, old_name: str, where: str) -> Any:
    """``checkpoint`` is the one name for "where the weights are" in every backend; ``old_name`` (``weights_path``,
    ``checkpoint_dir``, ``local_path``) is a deprecated alias: accepted with a warning, refused next to
    ``checkpoint``. ``where``: the config node (``embedder.passt``) for the messages."""
    if old_value is None:
        return checkpoint
    if checkpoint is not None:
        raise ValueError(f"{where}: give the weights as {where}.checkpoint only ({old_name} is its old name)")
    msg = f"{where}.{old_name} is deprecated: use {where}.checkpoint (same meaning)"
    warnings.warn(msg, FutureWarning, stacklevel=3)
    logging.getLogger(__name__).warning(msg)
    return old_value


def search_dirs() -> list[Path]:
    dirs = [bench_home() / "checkpoints"]
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")).expanduser()
    dirs.append(torch_home / "hub" / "checkpoints")
    return dirs


_HUB_HASH = re.compile(r"-([a-f0-9]{8,64})\.")


def hub_hash_prefix(filename: str) -> str | None:
    """torch.hub's naming convention: ``name-<first hex digits of sha256>.ext`` -> the hex prefix."""
    m = _HUB_HASH.search(filename)
    return m.group(1) if m else None


def hub_cache_dir() -> str | None:
    """``$HF_HUB_CACHE`` or ``$HF_HOME/hub`` read now (huggingface_hub reads them once, at import);
    None when neither is set (huggingface_hub's default, ``~/.cache/huggingface/hub``, applies)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


#: path -> what :func:`verify` checked (for the manifest)
_CHECKS: dict[str, str] = {}
TOFU_FILE = "trust-on-first-use.json"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def check_of(path: str | os.PathLike) -> str:
    """How the file at ``path`` was checked by :func:`verify` in this process ("" if it was not resolved)."""
    return _CHECKS.get(str(path), "")


DIGEST_CACHE_FILE = "digests.json"


@functools.lru_cache(maxsize=64)
def _digests(path: str, size: int, mtime_ns: int, md5: bool) -> tuple[str, str | None]:
    import json

    from bench.cache import atomic_write_bytes

    cache = bench_home() / "checkpoints" / DIGEST_CACHE_FILE
    key = f"{path}|{size}|{mtime_ns}"
    try:
        known = json.loads(cache.read_text(encoding="utf-8")) if cache.is_file() else {}
    except (OSError, ValueError):
        known = {}
    hit = known.get(key)
    if hit and (not md5 or hit.get("md5")):
        return hit["sha256"], hit.get("md5")
    h, m = hashlib.sha256(), (hashlib.md5(usedforsecurity=False) if md5 else None)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
            if m is not None:
                m.update(block)
    out = (h.hexdigest(), (m.hexdigest() if m is not None else None))
    if size >= 1 << 24:  # remember digests of large files (>= 16 MiB) across runs
        try:
            from filelock import FileLock

            cache.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(cache) + ".lock"):
                known = json.loads(cache.read_text(encoding="utf-8")) if cache.is_file() else {}
                known[key] = {"sha256": out[0], **({"md5": out[1]} if out[1] else {})}
                atomic_write_bytes(cache, json.dumps(known, indent=1, sort_keys=True).encode("utf-8"))
        except (OSError, ValueError):
            pass
    return out


def file_digests(path: str | os.PathLike, md5: bool = False) -> tuple[str, str | None]:
    """``(sha256, md5 or None)`` of a file. Computed once per (real path, size, mtime): kept for the process
    and, for files of 16 MiB or more, in ``$GENAUDIO_BENCH_HOME/checkpoints/digests.json``."""
    real = os.path.realpath(path)
    st = os.stat(real)
    return _digests(real, st.st_size, st.st_mtime_ns, md5)


def with_checks(checkpoints: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """A backend's ``checkpoints()`` with each file's integrity check added (``"check"``; for the manifest)."""
    return {
        role: {**info, "check": info.get("check") or check_of(info.get("path", "")) or "not verified"}
        for role, info in checkpoints.items()
    }


def _mismatch(path: Path, algo: str, expected: str, actual: str, what: str, spec: CheckpointSpec) -> CheckpointMismatch:
    src = f" from {spec.url}" if spec.url else ""
    return CheckpointMismatch(
        f"checkpoint {path}: {algo} is {actual}, expected {expected} ({what}). The file is corrupt, truncated or "
        f"not the published {spec.filename}: delete it and download it again{src}. To use a different checkpoint "
        "on purpose, give it another file name (it is then recorded as a user checkpoint, not verified)."
    )


def _hf_blob_digest(path: Path) -> str | None:
    """The sha256 a Hugging Face hub cache names a file's blob by (``snapshots/<rev>/f -> blobs/<sha256>``)."""
    real = Path(os.path.realpath(path))
    return real.name if real.parent.name == "blobs" and _HEX64.match(real.name) else None


def _tofu(path: Path, spec: CheckpointSpec, digest: str) -> str:
    """Compare with / record in the trust-on-first-use ledger. Returns the check description."""
    import json
    import time

    from filelock import FileLock

    ledger = bench_home() / "checkpoints" / TOFU_FILE
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(ledger) + ".lock"):
        try:
            known = json.loads(ledger.read_text(encoding="utf-8")) if ledger.is_file() else {}
        except ValueError:
            known = {}
        entry = known.get(spec.filename)
        if entry is None:
            known[spec.filename] = {
                "sha256": digest, "path": str(path), "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            from bench.cache import atomic_write_bytes

            atomic_write_bytes(ledger, json.dumps(known, indent=1, sort_keys=True).encode("utf-8"))
            return "no published digest: sha256 recorded on first use (trust on first use)"
    if entry["sha256"] != digest:
        raise CheckpointMismatch(
            f"checkpoint {path}: sha256 is {digest}, expected {entry['sha256']} (recorded on first use of "
            f"{spec.filename} at {entry.get('recorded', '?')} from {entry.get('path', '?')}; no digest is published). "
            f"If you replaced the file on purpose, delete its entry from {ledger}; else download it again"
            + (f" from {spec.url}" if spec.url else "") + "."
        )
    return "no published digest: sha256 matches the one recorded on first use (trust on first use)"


def verify(path: Path, spec: CheckpointSpec, found: bool = False) -> str:
    """Check ``path`` as the module docstring says; returns its sha256. ``found``: the project located the
    file itself (cache dir, env var, download), which enables trust on first use."""
    path = Path(path)
    blob = _hf_blob_digest(path)
    published = path.name == spec.filename or path.name in spec.aliases or bool(blob and path.name in spec.hub_aliases)
    digest, md5 = file_digests(path, md5=bool(published and spec.md5 and not spec.sha256))
    checks = []
    if blob:
        if digest != blob:
            raise _mismatch(path, "sha256", blob, digest, "the Hugging Face cache names its blob by its sha256", spec)
        checks.append("sha256 = its Hugging Face cache blob name")
    prefix = hub_hash_prefix(path.name)
    if prefix:
        if not digest.startswith(prefix):
            raise CheckpointMismatch(
                f"checkpoint {path}: sha256 is {digest}, but its name promises a digest starting with {prefix} "
                "(torch.hub convention): the file is corrupt or not the published one; delete it and download it "
                f"again{f' from {spec.url}' if spec.url else ''}"
            )
        checks.append(f"sha256 prefix {prefix} in the published file name (torch.hub convention)")
    if published and spec.sha256:
        if digest != spec.sha256:
            raise _mismatch(path, "sha256", spec.sha256, digest, spec.source or "published", spec)
        checks.append(f"sha256 pinned ({spec.source or 'published'})")
    elif published and spec.md5:
        if md5 != spec.md5:
            raise _mismatch(path, "md5", spec.md5, md5 or "", spec.source or "published md5", spec)
        checks.append(f"md5 pinned ({spec.source or 'published'})")
    if not checks:
        if published and found:
            checks.append(_tofu(path, spec, digest))
        elif published:
            checks.append("no published digest: sha256 recorded (file given explicitly)")
        else:
            checks.append(f"user checkpoint (not named {spec.filename}): sha256 recorded, not verified")
    _CHECKS[str(path)] = "; ".join(checks)
    return digest


def download(url: str, dest: Path, timeout: float = 30.0) -> None:
    with atomic_path(dest) as tmp, urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
        while block := resp.read(1 << 20):
            out.write(block)


def resolve(
    spec: CheckpointSpec, path: str | os.PathLike | None = None, extra_dirs: Sequence[str | Path] = ()
) -> tuple[Path, str]:
    """Find (or download) the file. Returns ``(path, sha256)``.

    ``extra_dirs`` (other tools' caches, e.g. ``~/panns_data``) are searched after the standard cache
    dirs and before a download.
    """
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise CheckpointUnavailable(f"{spec.config_key or 'checkpoint'}={p} does not exist. " + spec.how_to_provide())
        return p, verify(p, spec)
    if spec.env_var and os.environ.get(spec.env_var):
        p = Path(os.environ[spec.env_var]).expanduser()
        if not p.is_file():
            raise CheckpointUnavailable(f"{spec.env_var}={p} does not exist. " + spec.how_to_provide())
        return p, verify(p, spec, found=True)
    candidates = [d / spec.filename for d in search_dirs()]
    for c in [*candidates, *(Path(d).expanduser() / spec.filename for d in extra_dirs)]:
        if c.is_file():
            return c, verify(c, spec, found=True)
    if spec.url and not is_offline():
        dest = candidates[0]
        try:
            download(spec.url, dest)
        except Exception as exc:  # network down, 404, proxy refusal
            raise CheckpointUnavailable(f"download of {spec.url} failed ({exc}). " + spec.how_to_provide()) from exc
        try:
            return dest, verify(dest, spec, found=True)
        except CheckpointMismatch:
            dest.unlink(missing_ok=True)  # never leave a bad download where the next run would find it
            raise
    raise CheckpointUnavailable(spec.how_to_provide())


def numpy_data_globals() -> list:
    """numpy array / scalar / dtype reconstructors for ``torch.load(weights_only=True)``: they build data only."""
    import numpy as np

    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:
        from numpy.core import multiarray

    out: list = [np.ndarray, np.dtype]
    for name in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out += [(multiarray._reconstruct, f"{name}._reconstruct"), (multiarray.scalar, f"{name}.scalar")]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        out += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType") and n not in ("ObjectDType", "VoidDType")]
    else:
        out += [type(np.dtype(c)) for c in "?bhilqBHILQefdgFDGSU"]
    return out


def torch_load_weights(path: str | os.PathLike, allowed: Sequence[Any] | None = None) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` that also accepts the pickled globals in
    ``allowed`` (default :func:`numpy_data_globals`: epoch counters, PCA matrices and the like).

    Anything else pickled in the file (i.e. code) is refused, and corrupt files fail, with
    :class:`CheckpointUnavailable`; nothing is ever unpickled beyond tensors and the allowed data types.
    """
    import torch

    allowed = numpy_data_globals() if allowed is None else list(allowed)
    try:
        if not hasattr(torch.serialization, "safe_globals"):  # torch < 2.5: tensors-only files still load
            return torch.load(path, map_location="cpu", weights_only=True)
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointUnavailable(
            f"{path} pickles objects other than tensors and numpy data; refusing to unpickle them ({exc}). "
            "Convert it once, in a trusted environment, to a plain state dict or .safetensors file and point "
            "the config at that."
        ) from exc
    except Exception as exc:  # RuntimeError / EOFError / zip errors for corrupt or truncated files
        raise CheckpointUnavailable(f"cannot load weights from {path} with weights_only=True: {exc}") from exc
