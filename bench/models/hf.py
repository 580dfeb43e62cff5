"""Weights hosted on the Hugging Face Hub (transformers / diffusers repos) and a base class for their generators.

Resolution order, like :mod:`bench.checkpoints` for single files:
``checkpoint`` (a saved model folder) > environment variable > Hugging Face cache (``HF_HOME``) >
download (only when online). Offline with nothing cached raises :class:`ModelUnavailable` whose
message names the repo, the config key and the variables that provide it. Loading the network
itself is lazy (first :meth:`HFModel.generate`), so a fully resumed run never loads weights.

The manifest gets the sha256 of every weight file. Files in the HF cache are links to blobs named by
their LFS sha256 (the digest the Hub publishes); their content is checked against that name before the
network is loaded (:func:`weight_digests`). Digests are computed once per file (``bench.checkpoints``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.checkpoints import CheckpointMismatch, file_digests, hub_cache_dir, is_offline, renamed_argument
from bench.embedders.base import resolve_device
from bench.models.base import Model, ModelUnavailable

log = logging.getLogger(__name__)

#: file name endings that hold weights (hashed into the manifest)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5", ".onnx")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class HFWeights:
    """A resolved model folder.

    path: local folder in ``save_pretrained`` layout.
    source: "local_path" | "env" | "hf_cache" | "download".
    commit: Hub commit of a cached snapshot (None for user folders).
    """

    path: Path
    model_id: str
    revision: str | None
    source: str
    commit: str | None = None


def how_to_provide(model_id: str, revision: str | None, config_key: str, env_var: str | None, note: str = "") -> str:
    """The "how do I get these weights" message of :class:`ModelUnavailable`."""
    rev = f" (revision {revision})" if revision else ""
    ways = [
        f"run once online so huggingface_hub caches {model_id}{rev} under $HF_HOME "
        f"(now {os.environ.get('HF_HOME', '~/.cache/huggingface')}), e.g. `huggingface-cli download {model_id}`",
        f"or set {config_key}=/path/to/saved/model (a save_pretrained folder)",
    ]
    if env_var:
        ways.append(f"or export {env_var}=/path/to/saved/model")
    return f"weights of {model_id}{rev} are not available offline{note}: " + "; ".join(ways)


def _commit_of(path: Path) -> str | None:
    """``.../snapshots/<commit>`` -> commit."""
    return path.name if path.parent.name == "snapshots" and _COMMIT.match(path.name) else None


def resolve_weights(
    model_id: str,
    revision: str | None = None,
    local_path: str | os.PathLike | None = None,
    config_key: str = "model.<key>.checkpoint",
    env_var: str | None = None,
    fetch: Callable[[bool], str] | None = None,
    allow_patterns: Sequence[str] | None = None,
    ignore_patterns: Sequence[str] | None = None,
) -> HFWeights:
    """Find a model folder (see module docstring). Raises :class:`ModelUnavailable`.

    ``fetch(local_files_only) -> folder`` overrides the default ``huggingface_hub.snapshot_download``
    (diffusers pipelines use ``DiffusionPipeline.download``, which picks the right files per component).
    """
    for source, value, key in (("local_path", local_path, config_key), ("env", os.environ.get(env_var or ""), env_var)):
        if value:
            p = Path(value).expanduser()
            if not p.is_dir():
                raise ModelUnavailable(
                    f"{key}={p} is not a folder. " + how_to_provide(model_id, revision, config_key, env_var)
                )
            return HFWeights(p, model_id, revision, source)

    if fetch is None:

        def fetch(local_only: bool) -> str:
            from huggingface_hub import snapshot_download

            return snapshot_download(
                model_id,
                revision=revision,
                cache_dir=hub_cache_dir(),
                local_files_only=local_only,
                allow_patterns=list(allow_patterns) if allow_patterns else None,
                ignore_patterns=list(ignore_patterns) if ignore_patterns else None,
            )

    try:
        p = Path(fetch(True))
        if (p / "config.json").is_file() or (p / "model_index.json").is_file():
            return HFWeights(p, model_id, revision, "hf_cache", _commit_of(p))
    except Exception as exc:  # LocalEntryNotFoundError, OSError, EnvironmentError
        log.debug("%s not in the HF cache: %s", model_id, exc)
    if is_offline():
        raise ModelUnavailable(how_to_provide(model_id, revision, config_key, env_var))
    try:
        p = Path(fetch(False))
    except Exception as exc:
        name = type(exc).__name__
        note = ""
        if "Gated" in name or "401" in str(exc) or "403" in str(exc):
            note = (
                f" (gated repo: accept its license at https://huggingface.co/{model_id} and log in with "
                "`huggingface-cli login` or export HF_TOKEN)"
            )
        raise ModelUnavailable(
            f"download of {model_id} failed ({name}: {exc}). "
            + how_to_provide(model_id, revision, config_key, env_var, note)
        ) from exc
    return HFWeights(p, model_id, revision, "download", _commit_of(p))


def weight_digests(root: Path, role: str) -> dict[str, dict[str, str]]:
    """``{"<role>/<relative file>": {"path", "sha256"}}`` for every weight file under ``root``."""
    out: dict[str, dict[str, str]] = {}
    for f in sorted(root.rglob("*")):
        if not f.name.endswith(WEIGHT_SUFFIXES) or not f.is_file():
            continue
        blob = Path(os.path.realpath(f))
        digest = file_digests(f)[0]
        if _SHA256.match(blob.name):  # Hugging Face cache: blobs/<sha256 of the LFS object>
            if digest != blob.name:
                raise CheckpointMismatch(
                    f"checkpoint {f}: sha256 is {digest}, expected {blob.name} (the Hugging Face cache names the "
                    "blob by its sha256): the download is corrupt; delete that blob and download it again"
                )
            check = "sha256 = its Hugging Face cache blob name (the LFS sha256 the Hub publishes)"
        else:
            check = "local model folder: sha256 recorded, not verified (no published digest is known here)"
        out[f"{role}/{f.relative_to(root).as_posix()}"] = {"path": str(f), "sha256": digest, "check": check}
    return out


def read_json_key(path: Path, *keys: str, default: Any = None) -> Any:
    """``json[keys[0]][keys[1]]...`` of a config file, or ``default`` when absent."""
    try:
        obj = json.loads(path.read_text())
        for k in keys:
            obj = obj[k]
        return obj
    except (OSError, ValueError, KeyError, TypeError):
        return default


def torch_dtype(name: str | None, device: str):
    """ "auto" -> float16 on CUDA, float32 elsewhere; else a ``torch`` dtype name."""
    import torch

    if name in (None, "", "auto"):
        return torch.float16 if device.startswith("cuda") else torch.float32
    dt = getattr(torch, str(name), None)
    if not isinstance(dt, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}; use auto, float32, float16 or bfloat16")
    return dt


def release(dist: str) -> tuple[int, ...]:
    """``(major, minor)`` of an installed distribution (e.g. ``(5, 17)`` for transformers 5.17.0)."""
    from importlib.metadata import version

    return tuple(int(part) for part in version(dist).split(".")[:2] if part.isdigit())


#: first release whose ``from_pretrained`` takes ``dtype`` (``torch_dtype`` before; deprecated since)
DTYPE_KWARG_SINCE = {"transformers": (4, 56), "diffusers": (0, 40)}


def dtype_kwarg(dtype, library: str = "transformers") -> dict[str, Any]:
    """``{"dtype": dtype}`` where ``library`` (transformers / diffusers) takes it, else ``{"torch_dtype": dtype}``."""
    return {"dtype": dtype} if release(library) >= DTYPE_KWARG_SINCE[library] else {"torch_dtype": dtype}


def fit_length(wav: np.ndarray, n: int | None) -> np.ndarray:
    """Cut ``(samples,)`` / ``(samples, channels)`` to at most ``n`` samples (never pads)."""
    return wav if n is None else wav[:n]


def channels_last(x: np.ndarray) -> np.ndarray:
    """``(channels, samples)`` -> ``(samples, channels)``; mono ``(1, samples)`` -> ``(samples,)``."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2 and x.shape[0] == 1:
        return x[0]
    if x.ndim == 2 and x.shape[0] < x.shape[1]:
        return np.ascontiguousarray(x.T)
    return x


class HFModel(Model):
    """A generator whose weights live in a Hub repo (or a local ``save_pretrained`` folder).

    Args:
        model_id: Hub repo id.
        revision: branch, tag or commit (pin a commit for reproducible benchmarks).
        checkpoint: a local model folder (``save_pretrained`` layout); skips the Hub entirely.
            ``local_path`` is its deprecated old name.
        dtype: "auto" (float16 on CUDA, float32 on CPU), "float32", "float16", "bfloat16"; the resolved
            dtype is part of :meth:`params` (outputs made in another precision are not reused).
        name: model name; use the config key (it is quoted in error messages).
        Other args: see :class:`bench.models.base.Model`.
    """

    #: default repo of the adapter
    default_model_id: str = ""
    #: environment variable that may name a local model folder
    env_var: str | None = None
    #: recorded resolved: the commit actually loaded, the weights folder, the torch dtype in use
    param_aliases = {"revision": "revision", "checkpoint": "local_path", "local_path": "local_path", "dtype": "dtype"}

    def __init__(
        self,
        model_id: str | None = None,
        revision: str | None = None,
        checkpoint: str | None = None,
        dtype: str | None = "auto",
        name: str | None = None,
        local_path: str | None = None,  # deprecated alias of checkpoint
        **kw,
    ):
        super().__init__(**kw)
        if name:
            self.name = name
        checkpoint = renamed_argument(checkpoint, local_path, "local_path", f"model.{self.name}")
        self.model_id = model_id or self.default_model_id
        self.revision = revision
        self.dtype = dtype
        self.weights = self._resolve(checkpoint)
        self._loaded: Any = None
        self._digests: dict[str, dict[str, str]] | None = None

    def _resolve(self, local_path: str | None) -> HFWeights:
        return resolve_weights(self.model_id, self.revision, local_path, self.config_key, self.env_var)

    @property
    def config_key(self) -> str:
        """The key quoted in "how to provide" messages (``name`` should equal the config key)."""
        return f"model.{self.name}.checkpoint"

    @property
    def torch_device(self) -> str:
        return resolve_device(self.device)

    def derived_params(self) -> dict[str, Any]:
        return {
            **super().derived_params(),
            "revision": self.weights.commit or self.revision,
            "weights_source": self.weights.source if self.weights.source == "local_path" else "hub",
            "local_path": str(self.weights.path) if self.weights.source in ("local_path", "env") else None,
            "dtype": str(torch_dtype(self.dtype, self.torch_device)).replace("torch.", ""),
        }

    def checkpoints(self) -> dict[str, dict[str, str]]:
        if self._digests is None:
            self._digests = weight_digests(self.weights.path, self.name)
        return self._digests

    def load(self) -> Any:
        """Load the network once (subclasses implement :meth:`_load`)."""
        if self._loaded is None:
            self.checkpoints()  # integrity first (Hugging Face cache blobs must match their sha256 names)
            try:
                self._loaded = self._load()
            except (OSError, ValueError) as exc:
                raise ModelUnavailable(f"loading {self.model_id} from {self.weights.path} failed: {exc}") from exc
        return self._loaded

    def _load(self) -> Any:
        raise NotImplementedError


def _missing_components(model_index: Path, skip: Sequence[str] = ()) -> list[str]:
    """Components of a diffusers ``model_index.json`` whose class cannot be imported here
    (e.g. CosineDPMSolverMultistepScheduler without ``torchsde``), as readable messages."""
    try:
        index = json.loads(model_index.read_text())
    except (OSError, ValueError):
        return []
    out = []
    for comp, spec in index.items():
        if comp.startswith("_") or comp in skip or not isinstance(spec, list) or len(spec) != 2 or spec[0] is None:
            continue
        lib, cls_name = spec
        if lib not in ("diffusers", "transformers"):
            continue
        mod = __import__(lib)
        cls = getattr(mod, cls_name, None)
        backends = getattr(cls, "_backends", None)  # diffusers/transformers dummy objects list what they need
        if cls is None:
            out.append(f"{comp}: {lib} has no class {cls_name} (upgrade {lib})")
        elif backends:
            need = [b for b in backends if importlib.util.find_spec(b) is None] or list(backends)
            out.append(f"{comp}: {cls_name} needs `pip install {' '.join(need)}`")
    return out


class DiffusersModel(HFModel):
    """A ``diffusers`` text-to-audio pipeline (subclasses name the class and its call arguments).

    Seeding: one CPU ``torch.Generator`` per item (seeded with the item seed) is passed as the
    pipeline's ``generator`` list, so initial latents (and SDE noise of schedulers that take the
    generator) are per item: outputs do not depend on batch composition, and CPU generators make
    the initial noise identical on every device.

    Args:
        num_inference_steps, guidance_scale, negative_prompt: the pipeline's arguments.
        scheduler: a diffusers scheduler class name replacing the repo's (loaded from the repo's
            scheduler config), e.g. "DPMSolverMultistepScheduler"; None keeps the repo's.
        pipeline_kwargs: extra keyword arguments for the pipeline call.
        Other args: see :class:`HFModel`.
    """

    pipeline_class: str = ""
    #: (json file relative to the model folder, key, ...) holding the output sample rate
    sample_rate_key: tuple[str, ...] = ()
    default_sample_rate: int = 16000

    def __init__(
        self,
        num_inference_steps: int = 50,
        guidance_scale: float = 3.0,
        negative_prompt: str | None = None,
        scheduler: str | None = None,
        pipeline_kwargs: dict | None = None,
        **kw,
    ):
        self.num_inference_steps = int(num_inference_steps)
        self.guidance_scale = float(guidance_scale)
        self.negative_prompt = negative_prompt or None
        self.scheduler = scheduler or None
        self.pipeline_kwargs = dict(pipeline_kwargs or {})
        super().__init__(**kw)
        if self.sample_rate_key:
            f, *keys = self.sample_rate_key
            self.sample_rate = int(read_json_key(self.weights.path / f, *keys, default=self.default_sample_rate))
        else:
            self.sample_rate = self.default_sample_rate
        skip = ("scheduler",) if self.scheduler else ()
        missing = _missing_components(self.weights.path / "model_index.json", skip)
        if missing:
            raise ModelUnavailable(f"{self.model_id}: " + "; ".join(missing))

    def _resolve(self, local_path: str | None) -> HFWeights:
        def fetch(local_only: bool) -> str:
            from diffusers import DiffusionPipeline

            return DiffusionPipeline.download(
                self.model_id,
                revision=self.revision,
                local_files_only=local_only,
                cache_dir=hub_cache_dir(),
                **self.download_kwargs(),
            )

        return resolve_weights(self.model_id, self.revision, local_path, self.config_key, self.env_var, fetch=fetch)

    def download_kwargs(self) -> dict[str, Any]:
        return {}

    def load_kwargs(self) -> dict[str, Any]:
        """Extra ``from_pretrained`` arguments (e.g. ``safety_checker=None``)."""
        return {}

    def call_kwargs(self) -> dict[str, Any]:
        """Pipeline call arguments besides prompt/generator/steps/guidance (duration, output type...)."""
        return {}

    def derived_params(self) -> dict[str, Any]:
        """The pipeline class and its resolved call arguments (duration, image size...)."""
        call = {k: v for k, v in self.call_kwargs().items() if k != "output_type"}
        return {**super().derived_params(), "pipeline": self.pipeline_class, **call}

    def _load(self) -> Any:
        import tempfile

        import diffusers

        cls = getattr(diffusers, self.pipeline_class)
        dev = self.torch_device
        with tempfile.TemporaryDirectory(prefix="bench-pipe-") as tmp:
            path = self._with_scheduler(Path(tmp)) if self.scheduler else self.weights.path
            try:
                pipe = cls.from_pretrained(
                    str(path),
                    local_files_only=True,
                    **dtype_kwarg(torch_dtype(self.dtype, dev), "diffusers"),
                    **self.load_kwargs(),
                )
            except ImportError as exc:  # a component class needs an optional package
                raise ModelUnavailable(str(exc)) from exc
        pipe.to(dev)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _with_scheduler(self, tmp: Path) -> Path:
        """A view of the model folder (symlinks) whose ``model_index.json`` names :attr:`scheduler`
        (diffusers refuses a passed scheduler when the repo's class cannot be imported here)."""
        import diffusers

        if not isinstance(getattr(diffusers, self.scheduler, None), type):
            raise ValueError(f"diffusers has no scheduler class {self.scheduler!r}")
        index = json.loads((self.weights.path / "model_index.json").read_text())
        index["scheduler"] = ["diffusers", self.scheduler]
        for entry in self.weights.path.iterdir():
            if entry.name != "model_index.json":
                (tmp / entry.name).symlink_to(entry.resolve(), target_is_directory=entry.is_dir())
        (tmp / "model_index.json").write_text(json.dumps(index))
        return tmp

    def to_waveforms(self, result: Any, seeds: Sequence[int]) -> list[np.ndarray]:
        """Pipeline result -> waveforms ``(samples,)`` / ``(samples, channels)`` at :attr:`sample_rate`."""
        audios = result.audios
        audios = audios.float().cpu().numpy() if hasattr(audios, "cpu") else np.asarray(audios)
        return [channels_last(a) for a in audios]

    def generate(self, prompts, seeds) -> list[np.ndarray]:
        import torch

        pipe = self.load()
        gens = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
        neg = [self.negative_prompt] * len(prompts) if self.negative_prompt else None
        with torch.inference_mode():
            result = pipe(
                prompt=[p.text for p in prompts],
                negative_prompt=neg,
                num_inference_steps=self.num_inference_steps,
                guidance_scale=self.guidance_scale,
                generator=gens,
                **self.call_kwargs(),
                **self.pipeline_kwargs,
            )
        n = int(round(self.duration_s * self.sample_rate))
        return [fit_length(w, n).astype(np.float32, copy=False) for w in self.to_waveforms(result, seeds)]
