"""Per-item error log: every file that could not be used (or was used with a caveat) gets a row in errors.csv.

Rows have a ``severity``: ``"error"`` (the item was left out of every score) or ``"warning"``
(the item was used, but something about it is worth knowing: truncated to ``max_duration_s``,
all-silent, a misleading file extension). Under ``on_error=fail`` the first *error* raises
:class:`RunFailed`; warnings never do.

Text fields are written with control characters escaped (``"\\x00"`` for NUL, ``"\\n"`` ...),
because several CSV readers (pandas among them) stop a field at a raw NUL. Everything else
(emoji, ``../..``) is written as is.
"""

from __future__ import annotations

import csv
import io
import logging
import threading
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.cache import atomic_write_text

log = logging.getLogger(__name__)

#: columns of errors.csv (``severity`` last, so readers of the older six-column layout keep working)
ERROR_COLUMNS = ("stage", "model", "set", "item_id", "path", "reason", "severity")
SEVERITIES = ("error", "warning")


class RunFailed(RuntimeError):
    """Raised under ``on_error=fail`` at the first bad item."""


class ConfigError(ValueError):
    """The run config is invalid; the message lists the valid choices (also ``bench.pipeline.ConfigError``)."""


@dataclass(frozen=True)
class ItemError:
    stage: str  # gather | embed | score
    model: str  # model / reference-set name
    set: str  # prompt set or reference set
    item_id: str
    path: str
    reason: str
    severity: str = "error"  # error | warning


def escape_control(text: str) -> str:
    """Escape control characters (Unicode category ``Cc``) as ``\\xNN`` / ``\\n`` / ``\\t``; keep the rest."""
    if all(unicodedata.category(c) != "Cc" for c in text):
        return text
    special = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return "".join(
        special.get(c, f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        if unicodedata.category(c) == "Cc" else c
        for c in text
    )


_STAGE_ORDER = {"gather": 0, "embed": 1, "score": 2}


def _order(r: ItemError) -> tuple:
    return (_STAGE_ORDER.get(r.stage, 9), r.stage, r.model, r.set, r.item_id, r.path, r.severity, r.reason)


class ErrorLog:
    """Collects :class:`ItemError` rows; ``policy`` is "skip" (log and go on) or "fail" (raise on errors)."""

    def __init__(self, policy: str = "skip"):
        if policy not in ("skip", "fail"):
            raise ValueError(f"on_error must be 'skip' or 'fail', got {policy!r}")
        self.policy = policy
        self.rows: list[ItemError] = []
        self._seen: set[ItemError] = set()
        self._lock = threading.Lock()

    def add(
        self, stage: str, model: str, set: str, item_id: str, path: str | Path, reason: str, severity: str = "error"
    ) -> None:
        """Record one bad item. Raises :class:`RunFailed` for errors under ``policy="fail"``."""
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
        err = ItemError(stage, model, set, str(item_id), str(path), reason, severity)
        with self._lock:
            if err in self._seen:
                return
            self._seen.add(err)
            self.rows.append(err)
        level = logging.WARNING if severity == "error" else logging.INFO
        log.log(level, "%s %s for %s/%s item %r (%s): %s", stage, severity, model, set, item_id, path, reason)
        if severity == "error" and self.policy == "fail":
            raise RunFailed(f"{stage} failed for {model}/{set} item {item_id!r} ({path}): {reason}")

    def warn(self, stage: str, model: str, set: str, item_id: str, path: str | Path, reason: str) -> None:
        """Record a caveat about an item that *was* used (never raises)."""
        self.add(stage, model, set, item_id, path, reason, severity="warning")

    @property
    def n_errors(self) -> int:
        return sum(r.severity == "error" for r in self.rows)

    @property
    def n_warnings(self) -> int:
        return sum(r.severity == "warning" for r in self.rows)

    def write(self, path: str | Path) -> None:
        """Write ``errors.csv`` atomically, rows in a stable order (stage, model, set, item, path, severity),
        so reruns give identical files; header only when there is nothing to report."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=ERROR_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in sorted(self.rows, key=_order):
            w.writerow({k: escape_control(v) for k, v in asdict(r).items()})
        atomic_write_text(path, buf.getvalue())
