"""Resolving model weights: explicit path > env var > cache dirs > download (when online).

Every file is sha256-verified when a digest is known. Offline failure raises
:class:`CheckpointUnavailable` whose message names the file, its URL, the config key
and the environment variable that provide it. Nothing here executes downloaded code.
"""

from __future__ import annotations

import os
import pickle
import re
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cache import atomic_path, sha256_file

#: Environment variable naming the root of all genaudio-bench caches.
HOME_ENV = "GENAUDIO_BENCH_HOME"


class CheckpointUnavailable(RuntimeError):
    """Weights could not be found or fetched; ``str(exc)`` says how to provide them."""


def bench_home() -> Path:
    return Path(os.environ.get(HOME_ENV, Path.home() / ".cache" / "genaudio-bench")).expanduser()


def is_offline() -> bool:
    return any(os.environ.get(v, "") not in ("", "0") for v in ("GENAUDIO_BENCH_OFFLINE", "HF_HUB_OFFLINE"))


@dataclass(frozen=True)
class CheckpointSpec:
    """A weights file a backend needs.

    filename: name of the file in the cache dirs.
    url: where it is published (None when it only ships inside a package).
    sha256: expected digest (None skips verification; recorded either way in the manifest).
    env_var: environment variable that may hold a path to the file.
    config_key: the Hydra key a user sets to a local path (quoted in error messages).
    """

    filename: str
    url: str | None = None
    sha256: str | None = None
    env_var: str | None = None
    config_key: str | None = None

    def how_to_provide(self) -> str:
        ways = []
        if self.config_key:
            ways.append(f"set {self.config_key}=/path/to/{self.filename}")
        if self.env_var:
            ways.append(f"export {self.env_var}=/path/to/{self.filename}")
        ways.append(f"place it at {bench_home() / 'checkpoints' / self.filename}")
        src = f" (published at {self.url})" if self.url else ""
        return f"checkpoint {self.filename}{src} is not available: " + "; or ".join(ways)


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


def verify(path: Path, spec: CheckpointSpec) -> str:
    """sha256 of ``path``, checked against ``spec.sha256`` and against the digest prefix a torch.hub-style
    file name promises (``vggish-10086976.pth``). Returns the digest."""
    digest = sha256_file(path)
    if spec.sha256 and digest != spec.sha256:
        raise CheckpointUnavailable(
            f"checkpoint {path} has sha256 {digest}, expected {spec.sha256} for {spec.filename}; "
            f"delete it and download again from {spec.url}"
        )
    prefix = hub_hash_prefix(path.name)
    if prefix and not digest.startswith(prefix):
        raise CheckpointUnavailable(
            f"checkpoint {path} has sha256 {digest[:16]}..., but its name promises a digest starting with "
            f"{prefix} (torch.hub convention): the file is corrupt or not the published one; delete it and "
            f"download it again{f' from {spec.url}' if spec.url else ''}"
        )
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
        return p, verify(p, spec)
    candidates = [d / spec.filename for d in search_dirs()]
    for c in [*candidates, *(Path(d).expanduser() / spec.filename for d in extra_dirs)]:
        if c.is_file():
            return c, verify(c, spec)
    if spec.url and not is_offline():
        dest = candidates[0]
        try:
            download(spec.url, dest)
        except Exception as exc:  # network down, 404, proxy refusal
            raise CheckpointUnavailable(f"download of {spec.url} failed ({exc}). " + spec.how_to_provide()) from exc
        return dest, verify(dest, spec)
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
