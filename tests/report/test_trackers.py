"""Optional tracker logging: real W&B in offline mode (when installed), MLflow's API via a recorder."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import sys
import time
import types

import pytest

from bench.report import build_board
from bench.report.merge import load_run, merge_runs
from bench.report.trackers import TrackerUnavailable, log_board, metric_values, mlflow_name


@pytest.fixture(scope="module")
def board(two_runs_shared):
    return build_board(merge_runs([load_run(p) for p in two_runs_shared]))


def test_metric_values_and_names(board):
    vals = metric_values(board)
    assert len(vals) == 3 * 2  # ok cells only (fad@mert is unavailable)
    assert vals["demo/ref/fad@vggish/alpha"] == pytest.approx(board.tables[0].cell(
        "alpha", board.tables[0].columns[0]).value)
    assert mlflow_name("demo/ref/fad@vggish/alpha [r|1]") == "demo/ref/fad_at_vggish/alpha _r_1_"


def test_missing_tracker_is_skipped_or_strict(board, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # makes `import mlflow` raise ImportError
    with caplog.at_level(logging.WARNING):
        assert log_board(board, ["mlflow"]) == []
    assert "pip install mlflow" in caplog.text
    with pytest.raises(TrackerUnavailable):
        log_board(board, ["mlflow"], strict=True)
    with pytest.raises(ValueError, match="unknown tracker"):
        log_board(board, ["tensorboard"])


class _MlflowRecorder(types.ModuleType):
    """Records the calls of the MLflow fluent API that trackers.log_mlflow uses."""

    def __init__(self):
        super().__init__("mlflow")
        self.calls: list[tuple] = []

    def set_experiment(self, name):
        self.calls.append(("set_experiment", name))

    def start_run(self, run_name=None):
        rec = self

        class _Run:
            def __enter__(self):
                rec.calls.append(("start_run", run_name))

            def __exit__(self, *exc):
                rec.calls.append(("end_run",))

        return _Run()

    def set_tags(self, tags):
        self.calls.append(("set_tags", dict(tags)))

    def log_params(self, params):
        self.calls.append(("log_params", dict(params)))

    def log_metrics(self, metrics):
        self.calls.append(("log_metrics", dict(metrics)))

    def log_artifact(self, path):
        self.calls.append(("log_artifact", path))


def test_mlflow_logging_calls(board, monkeypatch, tmp_path):
    rec = _MlflowRecorder()
    monkeypatch.setitem(sys.modules, "mlflow", rec)
    f = tmp_path / "leaderboard.md"
    f.write_text("x")
    assert log_board(board, ["mlflow"], files=[f, tmp_path / "missing.md"], project="p", name="n") == ["mlflow"]
    names = [c[0] for c in rec.calls]
    assert names == ["set_experiment", "start_run", "set_tags", "log_params", "log_metrics", "log_artifact", "end_run"]
    metrics = dict(rec.calls[4][1])
    assert set(metrics) == {mlflow_name(k) for k in metric_values(board)}
    assert rec.calls[2][1]["genaudio_bench.run_ids"] == "run_a,run_b" and rec.calls[5][1] == str(f)


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb not installed")
def test_wandb_offline_run(board, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    f = tmp_path / "leaderboard.md"
    f.write_text("# board")
    assert log_board(board, ["wandb"], files=[f], project="genaudio-bench-test", name="t") == ["wandb"]
    (run_dir,) = list((tmp_path / "wandb").glob("offline-run-*"))
    tables = {re.sub(r"_\d+_[0-9a-f]+\.table\.json$", "", p.name): p
              for p in (run_dir / "files" / "media" / "table").glob("*.table.json")}
    assert set(tables) == {"leaderboard_long", "leaderboard", "significance"}
    long = json.loads(tables["leaderboard_long"].read_text())
    assert long["columns"][:3] == ["run_id", "config_hash", "model"] and len(long["data"]) == 3 * 4
    assert {"alpha", "beta", "gamma"} == {row[2] for row in long["data"]}
    # the summary goes to the run's record log, written by wandb's service process: allow it to flush
    record = next(run_dir.glob("run-*.wandb"))
    deadline = time.monotonic() + 30
    while b"demo/ref/fad@vggish/alpha" not in record.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b"demo/ref/fad@vggish/alpha" in record.read_bytes()


def test_write_reports_logs_to_a_tracker_on_request(two_runs, monkeypatch):
    from bench.report import write_reports

    rec = _MlflowRecorder()
    monkeypatch.setitem(sys.modules, "mlflow", rec)
    written = write_reports(two_runs[0], formats=("md",))
    assert rec.calls == []  # off by default
    written = write_reports(two_runs[0], formats=("md",), trackers=("mlflow",), tracker_project="proj")
    assert ("set_experiment", "proj") in rec.calls and ("start_run", "run_a") in rec.calls
    assert ("log_artifact", str(written[0])) in rec.calls
