"""Identity from construction: an object's parameters are its constructor arguments.

As scikit-learn's ``BaseEstimator._get_param_names``: the names come from the ``__init__``
signatures (followed through ``**kwargs`` handed to ``super().__init__``), the values from the
attributes of the same names, so the id that keys a cache cannot drift from what the object was
built with. Arguments that only change where or how fast it runs (device, batch size, block
sizes) are listed once per base class in ``non_value_params``.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar


def init_params(cls: type) -> tuple[list[str], bool]:
    """Keyword names the ``__init__`` chain of ``cls`` accepts, in signature order, and whether the
    chain also takes arbitrary ``**kwargs`` (or has a signature that cannot be read)."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in klass.__dict__ or klass is object:
            continue
        try:
            sig = inspect.signature(klass.__dict__["__init__"])
        except (TypeError, ValueError):
            return names, True
        params = list(sig.parameters.values())[1:]
        names += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in names]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names, False
    return names, False


class Configured:
    """Mixin: :meth:`value_params` = the constructor arguments that change outputs, read back from
    the attributes of the same names (store each as ``self.<name>``, normalised)."""

    #: constructor arguments that do not change outputs (where / how fast / how much memory)
    non_value_params: ClassVar[tuple[str, ...]] = ()
    #: fixed facts about how outputs are computed, part of the identity (e.g. ``{"pooling": "clip_mean"}``)
    fixed_params: ClassVar[dict[str, Any]] = {}
    #: constructor argument -> the key of :meth:`params` that records its effect in resolved form
    #: (a weights path by its sha256, seconds by samples); the subclass's ``derived_params`` sets that key
    param_aliases: ClassVar[dict[str, str]] = {}

    #: label in tables and the prefix of :attr:`id`
    name: str = "configured"

    def params(self) -> dict[str, Any]:
        """Everything that changes the outputs; subclasses say how it is laid out."""
        raise NotImplementedError

    @property
    def id(self) -> str:
        """``<name>-<hash(params)>``: keys caches, names outputs in the manifest."""
        from bench.cache import stable_hash

        return f"{self.name}-{stable_hash(self.params(), 12)}"

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return init_params(cls)[0]

    def value_params(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            if name in self.non_value_params or name in self.param_aliases:
                continue
            try:
                value = getattr(self, name)
            except AttributeError:
                raise TypeError(
                    f"{type(self).__name__}.__init__ takes {name!r} but keeps no attribute of that name: store it "
                    f"as self.{name} (it is part of the id) or list it in non_value_params / param_aliases"
                ) from None
            out[name] = value.to_dict() if hasattr(value, "to_dict") else value
        return out
