"""Reference sets: the real audio generated sets are compared against.

Either audio files (a folder or a manifest CSV) that every embedder embeds, or precomputed
Gaussian statistics (npz with mu/cov, fadtk-compatible) valid for one embedder only. License and
provenance are carried into the run manifest.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.audio import AUDIO_EXTENSIONS
from bench.cache import sha256_file, stable_hash


@dataclass
class ReferenceSet:
    """A named reference set.

    items: ``{item_id: audio path}`` (ids are paths relative to the folder, without extension).
    stats_path: npz with precomputed statistics (then ``items`` is empty).
    stats_embedder: embedder key the statistics belong to (e.g. "vggish"); other embedders
        report the reference as unavailable.
    stats_key: model key inside a multi-model stats file (fadtk's fma_pop.npz keys), or None.
    """

    name: str
    items: dict[str, Path] = field(default_factory=dict)
    stats_path: Path | None = None
    stats_embedder: str | None = None
    stats_key: str | None = None
    license: str | None = None
    provenance: str | None = None
    missing: list[str] = field(default_factory=list)

    @property
    def is_stats(self) -> bool:
        return self.stats_path is not None

    def __len__(self) -> int:
        return len(self.items)

    def content_hash(self) -> str:
        """Hash of the file digests (or of the statistics file): equal hash => same reference."""
        if self.stats_path is not None:
            return stable_hash({"stats": sha256_file(self.stats_path), "key": self.stats_key})
        return stable_hash(sorted((k, sha256_file(p)) for k, p in self.items.items()))

    def provenance_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_items": len(self.items),
            "stats_path": str(self.stats_path) if self.stats_path else None,
            "stats_embedder": self.stats_embedder,
            "license": self.license,
            "provenance": self.provenance,
        }

    @classmethod
    def from_folder(
        cls,
        name: str,
        path: str,
        pattern: str = "**/*",
        limit: int | None = None,
        license: str | None = None,
        provenance: str | None = None,
    ) -> ReferenceSet:
        """Every audio file under ``path`` matching ``pattern`` (sorted, first ``limit``)."""
        root = Path(path).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(
                f"reference folder {root} does not exist (set reference.{name}.path, or run scripts/setup.sh "
                "for the demo reference audio)"
            )
        # everything named like audio is kept, even a broken link or a folder called x.wav: the embed
        # stage then gives it an errors.csv row instead of it vanishing from the set unnoticed
        files = sorted(
            p for p in root.glob(pattern) if p.suffix.lower() in AUDIO_EXTENSIONS and (p.is_file() or p.is_symlink()
                                                                                          or p.is_dir())
        )
        if limit is not None:
            files = files[: int(limit)]
        items = {str(p.relative_to(root).with_suffix("")): p for p in files}
        return cls(name, items, license=license, provenance=provenance or str(root))

    @classmethod
    def from_manifest(
        cls,
        name: str,
        path: str,
        id_column: str = "id",
        path_column: str = "path",
        license: str | None = None,
        provenance: str | None = None,
    ) -> ReferenceSet:
        """A CSV with ``id,path`` rows; relative paths are resolved against the CSV's folder.

        Rows whose file is missing are kept in ``missing`` (reported as errors by the pipeline).
        """
        mpath = Path(path).expanduser()
        with open(mpath, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        items, missing = {}, []
        for r in rows:
            p = Path(r[path_column]).expanduser()
            p = p if p.is_absolute() else mpath.parent / p
            items[str(r[id_column])] = p
            if not p.is_file():
                missing.append(str(r[id_column]))
        return cls(name, items, license=license, provenance=provenance or str(mpath), missing=missing)

    @classmethod
    def from_stats(
        cls,
        name: str,
        path: str,
        embedder: str,
        key: str | None = None,
        license: str | None = None,
        provenance: str | None = None,
    ) -> ReferenceSet:
        """Precomputed statistics for embedder ``embedder`` (npz with mu/cov or fadtk layout)."""
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"reference statistics {p} do not exist (set reference.{name}.path)")
        return cls(name, stats_path=p, stats_embedder=embedder, stats_key=key, license=license,
                   provenance=provenance or str(p))
