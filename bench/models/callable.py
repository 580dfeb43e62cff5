"""Any Python function as a model: the quickest way to benchmark your own generator.

The function gets the prompt texts and one seed per prompt and returns one waveform per prompt::

    # mypkg/gen.py
    import numpy as np

    def my_model(prompts: list[str], seeds: list[int], duration_s: float = 10.0, temperature: float = 1.0):
        sr = 24000
        waves = []
        for text, seed in zip(prompts, seeds):
            rng = np.random.default_rng(seed)          # use the seed: it makes runs reproducible
            waves.append(my_network(text, rng, int(duration_s * sr), temperature))  # (samples,) or (samples, ch)
        return waves, sr                               # or just `waves` when sr == the config's sample_rate

and is used from the command line without writing a class::

    bench model=callable model.callable.fn=mypkg.gen.my_model model.callable.sample_rate=24000 \
        +model.callable.fn_kwargs.temperature=0.8

Waveforms may be numpy arrays or torch tensors, ``(samples,)``, ``(samples, channels)`` or
``(channels, samples)``. ``duration_s`` is passed only when the function has a parameter of that
name. Audio returned at another rate than ``sample_rate`` is resampled (torchaudio sinc).
:func:`example_tone` is a complete, runnable example.
"""

from __future__ import annotations

import inspect
import logging
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bench.audio import resample
from bench.models.base import Model
from bench.prompts import Prompt

log = logging.getLogger(__name__)


def example_tone(
    prompts: list[str], seeds: list[int], duration_s: float = 2.0, sample_rate: int = 16000
) -> tuple[list[np.ndarray], int]:
    """A toy generator: a decaying tone whose pitch comes from the text and whose vibrato comes from the seed."""
    n = int(round(duration_s * sample_rate))
    t = np.arange(n) / sample_rate
    out = []
    for text, seed in zip(prompts, seeds):
        f0 = 110.0 * 2 ** ((zlib.crc32(text.encode("utf-8")) % 36) / 12)
        rng = np.random.default_rng(seed)
        vib = 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(3, 7) * t)
        out.append((0.5 * np.exp(-t) * np.sin(2 * np.pi * f0 * vib * t)).astype(np.float32))
    return out, sample_rate


def _as_waveform(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().float().cpu().numpy()
    x = np.asarray(x, dtype=np.float32)
    x = np.squeeze(x) if x.ndim > 2 else x
    if x.ndim == 2 and x.shape[0] < x.shape[1]:  # (channels, samples)
        x = x.T
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim not in (1, 2):
        raise ValueError(f"waveform must be (samples,) or (samples, channels), got shape {x.shape}")
    return np.ascontiguousarray(x)


class CallableModel(Model):
    """Wraps ``fn(prompts: list[str], seeds: list[int], **fn_kwargs) -> waveforms | (waveforms, sr)``.

    Args:
        fn: dotted path ("mypkg.gen.my_model", resolved with ``hydra.utils.get_method``) or a callable.
        fn_kwargs: extra keyword arguments for every call.
        sample_rate: rate (Hz) of the written files (and of the waveforms when fn returns no rate).
        version: free text recorded with the outputs; change it when the function changes so old
            outputs are not reused.
        name: model name in tables.
        Other args: see :class:`bench.models.base.Model`.
    """

    name = "callable"
    #: the function is recorded by its dotted path
    param_aliases = {"fn": "fn"}

    def __init__(
        self,
        fn: str | Callable,
        fn_kwargs: dict | None = None,
        sample_rate: int = 16000,
        version: str | None = None,
        name: str | None = None,
        **kw,
    ):
        super().__init__(**kw)
        if name:
            self.name = name
        if isinstance(fn, str):
            from hydra.utils import get_method

            self.fn_path = fn
            self.fn = get_method(fn)
        elif callable(fn):
            self.fn = fn
            self.fn_path = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        else:
            raise TypeError(f"fn must be a dotted path or a callable, got {type(fn).__name__}")
        self.fn_kwargs = dict(fn_kwargs or {})
        self.sample_rate = int(sample_rate)
        self.version = version
        try:
            self._takes_duration = "duration_s" in inspect.signature(self.fn).parameters
        except (TypeError, ValueError):
            self._takes_duration = False

    def derived_params(self) -> dict[str, Any]:
        return {**super().derived_params(), "fn": self.fn_path}

    def generate(self, prompts: Sequence[Prompt], seeds: Sequence[int]) -> list[np.ndarray]:
        kwargs = dict(self.fn_kwargs)
        if self._takes_duration and "duration_s" not in kwargs:
            kwargs["duration_s"] = self.duration_s
        result = self.fn([p.text for p in prompts], [int(s) for s in seeds], **kwargs)
        sr = self.sample_rate
        if isinstance(result, tuple) and len(result) == 2 and np.isscalar(result[1]):
            result, sr = result
            sr = int(sr)
        waves = [_as_waveform(w) for w in result]
        if len(waves) != len(prompts):
            raise RuntimeError(f"{self.fn_path} returned {len(waves)} waveforms for {len(prompts)} prompts")
        if sr != self.sample_rate:
            waves = [resample(w, sr, self.sample_rate) for w in waves]
        return waves
