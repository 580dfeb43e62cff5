"""A prompt set made from file names: ids = the stems of the audio files below a folder, no text.

For FAD/KAD-style evaluation when there is no prompt file: ``prompts=[files]`` takes its folder from
``model.folders.path`` (or ``model.folder.path``) unless ``prompts.files.path`` is set, so every model
folder's stems are matched against the union of all stems. Text-conditioned metrics (CLAP score) and
generators have nothing to work with on such a set.
"""

from __future__ import annotations

from pathlib import Path

from bench.models.folder import _stem, list_audio
from bench.prompts import Prompt, PromptSet

LICENSE = "no text: ids are the file names of the audio under evaluation"


def load(path: str | None = None, name: str = "files", limit: int | None = None) -> PromptSet:
    """``PromptSet`` with one prompt per distinct audio file stem below ``path`` (sorted, text empty)."""
    if not path:
        raise FileNotFoundError("prompts=[files] needs a folder: set prompts.files.path=DIR (or use model=[folders] / "
                         "model=[folder], whose path it takes by default)")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"prompts.files: {root} is not a folder (set prompts.files.path)")
    stems = sorted({_stem(f) for f in list_audio(root)})
    if not stems:
        raise FileNotFoundError(f"prompts.files: no audio files below {root}")
    if limit is not None:
        stems = stems[: int(limit)]
    return PromptSet(name, [Prompt(s, "") for s in stems], LICENSE, f"file names below {root}")
