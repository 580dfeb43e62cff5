"""Dataclasses built from config dicts: a key that is not a field is named in one clear error."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def from_fields(cls: type[T], d: Mapping[str, Any] | None, what: str, noun: str = "key", hint: bool = False) -> T:
    """``cls(**d)`` for a dataclass ``cls`` (``cls()`` for None).

    Keys that are not fields raise ``ValueError("unknown <what> <noun>(s) [...]; valid <noun>s: [...]")``,
    with "did you mean" suggestions appended when ``hint``.
    """
    if d is None:
        return cls()
    d = dict(d)
    valid = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(d) - set(valid))
    if unknown:
        msg = f"unknown {what} {noun}(s) {unknown}; valid {noun}s: {valid}"
        if hint:
            close = {k: difflib.get_close_matches(k, valid, n=1) for k in unknown}
            said = "; ".join(f"{k!r}: did you mean {h[0]!r}?" for k, h in close.items() if h)
            msg += f" ({said})" if said else ""
        raise ValueError(msg)
    return cls(**d)
