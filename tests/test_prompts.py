"""bench.prompts.PromptSet and every shipped prompt config (bench/configs/prompts/*.yaml)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

import bench
from bench.pipeline import validate
from bench.prompts import PromptSet

REPO = Path(__file__).resolve().parents[1]
CLOTHO_EXCERPT = REPO / "tests" / "golden" / "prompts" / "clotho-evaluation-head12.csv"


def test_from_csv_from_jsonl_from_list_and_subset(tmp_path):
    (tmp_path / "p.csv").write_text('id,text,reference\n-a,"x, y",clips/a.wav\nb,z,\n')
    ps = PromptSet.from_csv("s", str(tmp_path / "p.csv"))
    assert [(p.id, p.text) for p in ps] == [("-a", "x, y"), ("b", "z")]
    assert ps.prompts[0].reference == str(tmp_path / "clips" / "a.wav") and ps.prompts[1].reference is None
    assert [p.id for p in ps.subset(1, offset=1)] == ["b"]
    (tmp_path / "p.jsonl").write_text(json.dumps({"id": "q", "text": "t", "mood": "sad"}) + "\n\n{bad\n")
    with pytest.raises(ValueError, match=r"p.jsonl:3"):
        PromptSet.from_jsonl("j", str(tmp_path / "p.jsonl"))
    assert [p.id for p in PromptSet.from_list("l", ["one", "two"])] == ["p000", "p001"]
    with pytest.raises(ValueError, match="duplicate prompt id"):
        PromptSet.from_list("d", [{"id": "a", "text": "1"}, {"id": "a", "text": "2"}])


def _compose_prompts(key: str, *extra: str):
    cfg = bench.compose([f"prompts=[{key}]", "model=[synth]", "reference=[]", "embedder=[]", "metric=[]", *extra])
    validate(cfg)
    return instantiate(OmegaConf.to_container(cfg.prompts[key], resolve=True))


@pytest.mark.parametrize(
    ("key", "n", "first_id"),
    [
        ("musiccaps", 5521, "-0Gj8-vB1q4"),
        ("musiccaps_eval", 2858, "-0Gj8-vB1q4"),
        ("musiccaps_balanced", 1000, None),
        ("musiccaps_refined", 5516, "-0Gj8-vB1q4"),
        ("audiocaps", 975, None),
        ("audiocaps_all", 4875, None),
    ],
)
def test_shipped_prompt_configs(key, n, first_id):
    ps = _compose_prompts(key)
    assert isinstance(ps, PromptSet) and ps.name == key and len(ps) == n and ps.license
    if first_id:
        assert ps.prompts[0].id == first_id


def test_user_table_configs(tmp_path):
    (tmp_path / "mine.csv").write_text("id,text\nx,a calm piano\n")
    (tmp_path / "mine.jsonl").write_text('{"id": "y", "text": "fast drums"}\n')
    assert [p.id for p in _compose_prompts("csv", f"prompts.csv.path={tmp_path / 'mine.csv'}")] == ["x"]
    assert [p.id for p in _compose_prompts("jsonl", f"prompts.jsonl.path={tmp_path / 'mine.jsonl'}")] == ["y"]


def test_clotho_config_reads_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv("CLOTHO_CAPTIONS", str(tmp_path / "missing.csv"))
    with pytest.raises(Exception, match="zenodo"):
        _compose_prompts("clotho")
    monkeypatch.setenv("CLOTHO_CAPTIONS", str(CLOTHO_EXCERPT))
    ps = _compose_prompts("clotho", "prompts.clotho.limit=10")
    assert len(ps) == 10 and "non-commercial" in ps.license


def test_reference_template_and_bad_jsonl_line(tmp_path):
    (tmp_path / "p.csv").write_text("\ufeffid,text\na/b,piano\nc,drums\n", encoding="utf-8")  # with a BOM
    ps = PromptSet.from_csv("t", str(tmp_path / "p.csv"), reference_column=None,
                            reference_template=str(tmp_path / "clips" / "{safe_id}.wav"))
    assert [p.id for p in ps] == ["a/b", "c"]
    assert ps.prompts[1].reference == str(tmp_path / "clips" / "c.wav")
    assert "/" not in Path(ps.prompts[0].reference).name  # raw ids never become path components
    (tmp_path / "p.jsonl").write_text('{"id": "x", "text": "a"}\n{"id": "y", "text": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"p\.jsonl:2: invalid JSON"):
        PromptSet.from_jsonl("j", str(tmp_path / "p.jsonl"))
    with pytest.raises(ValueError, match=r"needs columns 'id' and 'caption'; found \['id', 'text'\]"):
        PromptSet.from_csv("t", str(tmp_path / "p.csv"), text_column="caption")


def test_table_options_are_flat_keys_defined_once(tmp_path):
    import inspect

    from bench.errors import ConfigError
    from bench.prompt_sets import TableOptions, clotho, from_table

    shared = list(TableOptions.__dataclass_fields__)
    for loader in (PromptSet.from_csv, PromptSet.from_jsonl, from_table, clotho.load):
        params = inspect.signature(loader).parameters
        assert set(shared) <= set(params) and "opts" not in params
    assert inspect.signature(clotho.load).parameters["reference_pattern"].default == "{file_name}"
    (tmp_path / "p.csv").write_text("id,text\na,x\nb,y\nc,z\n")
    ps = PromptSet.from_csv("s", str(tmp_path / "p.csv"), "id", "text", None, 1, 1, source="here")
    assert [p.id for p in ps] == ["b"] and ps.source == "here"  # positional order as before
    with pytest.raises(TypeError, match="limt"):
        from_table(str(tmp_path / "p.csv"), limt=1)
    with pytest.raises(ConfigError, match="did you mean 'limit'"):
        _compose_prompts("csv", f"prompts.csv.path={tmp_path / 'p.csv'}", "+prompts.csv.limt=1")
