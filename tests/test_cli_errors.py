"""Errors for people: every user-input mistake, through the real ``bench`` console command, prints one or
two lines naming the file or key and the fix, exits with status 2 and shows no traceback (``--debug``
or HYDRA_FULL_ERROR=1 shows it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

BASE = ["embedder=[logmel]", "metric=[fad]", "prepare_demo=false", "progress=false"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli_errors")
    (d / "dup.csv").write_text("id,text\na,x\nb,y\na,z\n")
    (d / "empty_id.csv").write_text("id,text\na,x\n,y\n")
    (d / "binary.csv").write_bytes(bytes(range(128, 256)) * 3)
    (d / "columns.csv").write_text("name,caption\na,x\n")
    (d / "out" / "only_a").mkdir(parents=True)
    return d


def bench_cmd(helpers, args, cwd, env, debug=False):
    exe = Path(helpers.python).parent / "bench"
    cmd = [str(exe)] if exe.is_file() else [helpers.python, "-m", "bench.cli"]
    argv = [*cmd, *(["--debug"] if debug else []), *BASE, f"output_dir={cwd}/results", f"cache_dir={cwd}/cache", *args]
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=180)


CASES = [
    ("bad model path", ["model=[folder]", "model.folder.path=/no/such/dir"],
     ["model.folder", "/no/such/dir does not exist"]),
    ("bad reference path", ["model=[synth]", "reference=[folder]", "reference.folder.path=/no/ref"],
     ["reference.folder", "/no/ref does not exist", "set reference.folder.path"]),
    ("unknown option", ["model=[synth]", "embedder=[logmel,vgish]"],
     ["unknown embedder option(s) ['vgish']", "did you mean 'vggish'"]),
    ("unknown top-level key", ["model=[synth]", "run_nam=x"], ["unknown config key 'run_nam'", "did you mean 'run_name'"]),
    ("unknown option key", ["model=[synth]", "model.synth.sampel_rate=1"],
     ["unknown config key 'model.synth.sampel_rate'", "+model.synth.sampel_rate="]),
    ("unknown option parameter", ["model=[synth]", "+model.synth.sampel_rate=1"],
     ["bench/configs/model/synth.yaml", "did you mean 'sample_rate'"]),
    ("braces in a pattern", ["model=[folder]", "model.folder.pattern={id}.opus"],
     ["model.folder.pattern=%id.opus", "'model.folder.pattern=\"{id}.opus\"'"]),
    ("duplicate prompt id", ["model=[synth]", "prompts=[csv]", "prompts.csv.path=dup.csv"],
     ["dup.csv", "duplicate prompt id 'a'", "ids must be unique"]),
    ("empty prompt id", ["model=[synth]", "prompts=[csv]", "prompts.csv.path=empty_id.csv"],
     ["empty_id.csv", "prompt 2 has an empty id"]),
    ("unreadable csv", ["model=[synth]", "prompts=[csv]", "prompts.csv.path=binary.csv"],
     ["binary.csv: not a readable UTF-8 CSV"]),
    ("csv without the columns", ["model=[synth]", "prompts=[csv]", "prompts.csv.path=columns.csv"],
     ["columns.csv: needs columns 'id' and 'text'", "id_column"]),
    ("missing prompt file", ["model=[synth]", "prompts=[csv]", "prompts.csv.path=nope.csv"],
     ["nope.csv does not exist"]),
    ("bad value", ["model=[synth]", "coverage=union"], ["coverage must be 'intersect', 'each' or 'error'"]),
    ("impossible metric", ["model=[synth]", "metric=[kl]"], ["metric kl cannot be computed with embedder=['logmel']"]),
    ("nothing to match", ["model=[folders]", "model.folders.path=out"], ["no sub-folder of", "holds audio files"]),
]


@pytest.mark.parametrize(("name", "args", "expect"), CASES, ids=[c[0] for c in CASES])
def test_user_error_is_two_lines_and_exit_2(name, args, expect, files, helpers, subprocess_env):
    res = bench_cmd(helpers, args, files, subprocess_env)
    assert res.returncode == 2, (name, res.stderr[-3000:])
    err = [ln for ln in res.stderr.splitlines() if ln.startswith("bench: error: ")]
    assert len(err) == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert len(err[0]) < 600, err[0]  # one or two lines of a terminal
    for text in expect:
        assert text in err[0], (text, err[0])


def test_debug_and_hydra_full_error_show_the_traceback(files, helpers, subprocess_env):
    args = ["model=[synth]", "prompts=[csv]", "prompts.csv.path=dup.csv"]
    res = bench_cmd(helpers, args, files, subprocess_env, debug=True)
    assert res.returncode not in (0, 2) and "Traceback" in res.stderr and "duplicate prompt id" in res.stderr
    res = bench_cmd(helpers, ["model=[synth]", "embedder=[vgish]"], files, {**subprocess_env, "HYDRA_FULL_ERROR": "1"})
    assert res.returncode not in (0, 2) and "Traceback" in res.stderr
