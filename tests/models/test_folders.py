"""``folders`` (every sub-folder a model row), ``pattern: auto`` (ids, MusicCaps rows, AudioSet Y-names),
``%name`` pattern fields typeable on a command line, and the ``files`` prompt set (ids = file stems)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import bench
from bench.config import validate
from bench.errors import ErrorLog
from bench.models.folder import FilePattern, FolderModel, folders, percent_fields
from bench.prompt_sets.files import load as files_prompts
from bench.prompts import Prompt


def wav(path, seconds=0.05, sr=8000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(seconds * sr), np.float32), sr)
    return path


def musiccaps_like(n=30):
    """Prompts shaped like MusicCaps': ids are YouTube ids (with dashes), meta has the 0-based row."""
    return [Prompt(f"-yt{r:02d}-x_y", f"caption {r}", None, {"row": r, "ytid": f"-yt{r:02d}-x_y"}) for r in range(n)]


def test_percent_fields_are_brace_fields():
    assert percent_fields("mg-%row.opus") == "mg-{row}.opus"
    assert percent_fields("%id%_%k%.wav") == "{id}_{k}.wav"
    assert percent_fields("100%%-%safe_id.flac") == "100%-{safe_id}.flac"
    assert FilePattern("%id.*").fields == {"id"} and FilePattern("{id}.*").pattern == FilePattern("%id.*").pattern
    with pytest.raises(ValueError, match="must contain a prompt field"):
        FilePattern("plain.wav")


def test_auto_matches_musiccaps_rows_like_fadtk_samples(tmp_path):
    root = tmp_path / "mg"
    for r in (1, 11, 21):  # mg-1 must not also take mg-11 / mg-21
        wav(root / f"mg-{r}.opus".replace(".opus", ".wav"))
    m = FolderModel(path=str(root), pattern="auto", name="mg")
    errors = ErrorLog()
    out = m.gather(musiccaps_like(), tmp_path / "o", errors, "musiccaps", progress=False)
    assert m.matched_by == "row"
    assert {k: v.name for k, v in out.items()} == {"-yt01-x_y": "mg-1.wav", "-yt11-x_y": "mg-11.wav",
                                                   "-yt21-x_y": "mg-21.wav"}
    assert len(m.missing) == 27 and len(errors.rows) == 1
    assert errors.rows[0].reason.startswith("no file for 27 of 30 prompts")


def test_auto_prefers_ids_and_knows_audioset_y_names(tmp_path):
    prompts = musiccaps_like(5)
    wav(tmp_path / "a" / "-yt02-x_y.wav")
    wav(tmp_path / "a" / "-yt03-x_y.flac")
    wav(tmp_path / "b" / "Y-yt04-x_y.wav")
    a = FolderModel(path=str(tmp_path / "a"), pattern="auto")
    assert sorted(a.gather(prompts, tmp_path / "oa", ErrorLog(), "s", progress=False)) == ["-yt02-x_y", "-yt03-x_y"]
    assert a.matched_by == "id"
    b = FolderModel(path=str(tmp_path / "b"), pattern="auto")
    assert list(b.gather(prompts, tmp_path / "ob", ErrorLog(), "s", progress=False)) == ["-yt04-x_y"]


def test_folders_makes_one_model_per_subfolder(tmp_path):
    for name in ("mine", "musicgen", "suno"):
        wav(tmp_path / "out" / name / "p0.wav")
    (tmp_path / "out" / "empty").mkdir()
    (tmp_path / "out" / ".hidden").mkdir()
    models = folders(str(tmp_path / "out"), pattern="%id.wav", license="test")
    assert list(models) == ["mine", "musicgen", "suno"]  # empty and hidden sub-folders are no rows
    assert all(m.name == k and m.license == "test" for k, m in models.items())
    assert list(folders(str(tmp_path / "out"), exclude=["suno"])) == ["mine", "musicgen"]
    with pytest.raises(FileNotFoundError, match="include names"):
        folders(str(tmp_path / "out"), include=["nope"])
    with pytest.raises(FileNotFoundError, match="use model=\\[folder\\]"):
        folders(str(tmp_path / "out" / "mine"))


def test_files_prompt_set_takes_the_folders_path(tmp_path):
    wav(tmp_path / "out" / "a" / "x1.wav")
    wav(tmp_path / "out" / "b" / "x1.flac")
    wav(tmp_path / "out" / "b" / "x2.wav")
    ps = files_prompts(str(tmp_path / "out"))
    assert [(p.id, p.text) for p in ps] == [("x1", ""), ("x2", "")]
    cfg = bench.compose(["model=[folders]", f"model.folders.path={tmp_path / 'out'}", "prompts=[files]",
                         "reference=[]", "embedder=[logmel]", "metric=[fad]"])
    validate(cfg)
    assert cfg.prompts.files.path == str(tmp_path / "out")
    with pytest.raises(FileNotFoundError, match=r"prompts\.files\.path"):
        files_prompts(None)


def test_folders_run_scores_every_subfolder_on_common_ids(tmp_path, tiny_audio_dir, helpers):
    rng = np.random.default_rng(0)
    out = tmp_path / "out"
    for name, ids in {"alpha": ["p0", "p1", "p2", "p3"], "beta": ["p1", "p2", "p3"], "gamma": ["p2", "p3", "p4"]}.items():
        for i in ids:
            helpers.write_clip(out / name / f"{i}.wav", helpers.tone_clip(rng, 16000, 1.0), 16000)
    cfg = helpers.tiny_run_config(tmp_path, tiny_audio_dir, model={"folders": {
        "_target_": "bench.models.folder.folders", "path": str(out), "pattern": "%id.wav"}})
    d = bench.run(cfg)
    import pandas as pd

    board = pd.read_csv(d / "leaderboard.csv")
    assert sorted(board["model"]) == ["alpha", "beta", "gamma"]
    assert (board["n_samples"] == 2).all() and board["same_n"].all()  # p2, p3: the ids all three have
    missing = pd.read_csv(d / "missing.csv")
    assert set(missing.loc[missing["status"] == "excluded", "item_id"]) == {"p0", "p1", "p4"}
    errors = pd.read_csv(d / "errors.csv", keep_default_na=False)
    assert len(errors[errors["stage"] == "gather"]) == 3  # one summary row per model, not one per prompt
