"""Per-item error log: every file that could not be used gets a row in errors.csv."""

from __future__ import annotations

import csv
import io
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.cache import atomic_write_text

log = logging.getLogger(__name__)

ERROR_COLUMNS = ("stage", "model", "set", "item_id", "path", "reason")


class RunFailed(RuntimeError):
    """Raised under ``on_error=fail`` at the first bad item."""


@dataclass(frozen=True)
class ItemError:
    stage: str  # gather | embed | score
    model: str  # model / reference-set name
    set: str  # prompt set or reference set
    item_id: str
    path: str
    reason: str


class ErrorLog:
    """Collects :class:`ItemError` rows; ``policy`` is "skip" (log and go on) or "fail" (raise)."""

    def __init__(self, policy: str = "skip"):
        if policy not in ("skip", "fail"):
            raise ValueError(f"on_error must be 'skip' or 'fail', got {policy!r}")
        self.policy = policy
        self.rows: list[ItemError] = []
        self._lock = threading.Lock()

    def add(self, stage: str, model: str, set: str, item_id: str, path: str | Path, reason: str) -> None:
        err = ItemError(stage, model, set, str(item_id), str(path), reason)
        with self._lock:
            if err not in self.rows:
                self.rows.append(err)
        log.warning("%s error for %s/%s item %r (%s): %s", stage, model, set, item_id, path, reason)
        if self.policy == "fail":
            raise RunFailed(f"{stage} failed for {model}/{set} item {item_id!r} ({path}): {reason}")

    def write(self, path: str | Path) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=ERROR_COLUMNS)
        w.writeheader()
        for r in self.rows:
            w.writerow(asdict(r))
        atomic_write_text(path, buf.getvalue())
