"""`bench sensitivity` end to end on tiny synthetic clips: a metric that must see a change sees it,
one that cannot (a 16 kHz embedder vs a low-pass above 8 kHz) is reported blind; reruns are cached."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import bench
from bench.errors import ConfigError
from bench.meta import sensitivity as S

pytestmark = pytest.mark.usefixtures("single_thread")
SR = 32000


def _clips(root: Path, n: int = 12, seconds: float = 1.5) -> Path:
    rng = np.random.default_rng(7)
    t = np.arange(int(SR * seconds)) / SR
    for i in range(n):
        f0 = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        x = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) / h for h in range(1, 6))
        x = x * np.exp(-t * rng.uniform(0.5, 2.0)) + 0.002 * rng.standard_normal(t.size)
        sf.write(str(root / f"c{i:02d}.wav"), (0.4 * x / np.max(np.abs(x))).astype(np.float32), SR)
    return root


def _cfg(tmp: Path, clips: Path, *extra: str):
    from bench.cli import compose

    return compose(_overrides(tmp, clips, *extra), config_name="sensitivity")


def _overrides(tmp: Path, clips: Path, *extra: str) -> list[str]:
    return [
        "reference=[folder]", f"reference.folder.path={clips}", "embedder=[logmel]", "metric=[fad,kad]",
        "metric.fad.n_bootstrap=100", "metric.kad.n_bootstrap=100", f"cache_dir={tmp / 'cache'}",
        f"output_dir={tmp / 'out'}", "prepare_demo=false", "progress=false", "sensitivity.only=[noise,lowpass]",
        "sensitivity.degradations.noise=[20,5,-5]", "sensitivity.degradations.lowpass=[12000,10000]",
        f"sensitivity.sample_rate={SR}", "sensitivity.duration_s=1.5", *extra,
    ]


@pytest.fixture(scope="module")
def sens_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sens")
    (tmp / "clips").mkdir()
    clips = _clips(tmp / "clips")
    rdir = S.run_sensitivity(_cfg(tmp, clips))
    first = (rdir / "sensitivity.csv").read_text()
    again = bench.sensitivity(_overrides(tmp, clips))  # the Python API, same config
    return {"dir": rdir, "first": first, "manifest2": json.loads((again / "manifest.json").read_text())}


def _summary(run) -> pd.DataFrame:
    return pd.read_csv(run["dir"] / "sensitivity.csv").set_index(["degradation", "embedder", "metric"])


def test_noise_is_detected_monotonically(sens_run):
    s = _summary(sens_run)
    for metric in ("fad", "kad"):
        r = s.loc[("noise", "logmel", metric)]
        assert r["verdict"] == "sensitive", r.to_dict()
        assert r["rho"] == pytest.approx(1.0)
        assert r["z"] > 2 and r["delta"] > 0 and r["n_levels"] == 3 and r["top_level"] == -5
    lv = pd.read_csv(sens_run["dir"] / "sensitivity_levels.csv")
    fad = lv[(lv.degradation == "noise") & (lv.metric == "fad")].sort_values("severity")
    assert fad["severity"].tolist() == [0, 1, 2, 3]
    assert fad["delta"].iloc[0] == 0 and fad["value"].is_monotonic_increasing


def test_16khz_embedder_is_blind_to_a_lowpass_above_8khz(sens_run):
    s = _summary(sens_run)
    r = s.loc[("lowpass", "logmel", "fad")]
    assert r["verdict"] == "blind", r.to_dict()
    assert abs(r["z"]) < 0.5
    html = (sens_run["dir"] / "sensitivity.html").read_text()
    assert "fad@logmel</code> is blind to lowpass" in html and "data:image/png;base64" in html


def test_split_reference_and_degraded_halves_are_disjoint(sens_run):
    d = sens_run["dir"]
    info = json.loads((d / "sensitivity_design.json").read_text())
    assert info["n_reference"] == 6 and info["n_degraded"] == 6
    ref = set(pd.read_csv(d / "sensitivity_reference.csv")["id"])
    deg = set(pd.read_csv(d / "sensitivity_clips.csv")["id"])
    assert len(ref) == 6 and len(deg) == 6 and not ref & deg
    models = set(pd.read_csv(d / "leaderboard_long.csv")["model"])
    assert models == {"clean", "noise_1", "noise_2", "noise_3", "lowpass_1", "lowpass_2"}


def test_rerun_is_cached_and_identical(sens_run):
    c = sens_run["manifest2"]["counters"]
    assert c["embedded"] == 0 and c["scored"] == 0 and c["generated"] == 0
    assert (sens_run["dir"] / "sensitivity.csv").read_text() == sens_run["first"]


def test_verdicts_and_effect_sizes():
    assert S.verdict(5.0, 1.0) == "sensitive"
    assert S.verdict(5.0, 0.4) == "sensitive, non-monotonic"
    assert S.verdict(-3.0, -1.0) == "wrong direction"
    assert S.verdict(1.0, 1.0) == "blind"
    assert S.verdict(math.nan, 1.0) == "no bootstrap"
    z, sd = S.effect_size(3.0, np.array([1.0, 2.0, 3.0]))
    assert sd == pytest.approx(1.0) and z == pytest.approx(3.0)
    assert S.spearman(np.arange(4), np.array([1.0, 3.0, 2.0, 4.0])) == pytest.approx(0.8)


def test_bad_settings_are_config_errors(tmp_path):
    clips = _clips(tmp_path)
    with pytest.raises(ConfigError, match="unknown degradation 'reverb'"):
        S.run_sensitivity(_cfg(tmp_path, clips, "+sensitivity.degradations.reverb=[1]"))
    with pytest.raises(ConfigError, match=r"sensitivity\.only names"):
        S.run_sensitivity(_cfg(tmp_path, clips, "sensitivity.only=[flanger]"))
    with pytest.raises(ConfigError, match="at least 4"):
        S.run_sensitivity(_cfg(tmp_path, clips, "sensitivity.max_clips=3"))
    with pytest.raises(ConfigError, match="unknown sensitivity key"):
        S.run_sensitivity(_cfg(tmp_path, clips, "+sensitivity.sevrity=1"))


def test_explicit_reference_set_degrades_every_source_clip(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    _clips(src, n=5)
    _clips(other, n=4)
    from bench.cli import compose

    cfg = compose(_overrides(tmp_path, src, "reference=[folder,demo]", f"reference.demo.path={other}",
                             "sensitivity.source=folder", "sensitivity.reference=demo", "metric=[fad,kad,clap_score]"),
                  config_name="sensitivity")
    pcfg, info = S.build_run_config(cfg, tmp_path / "run")
    assert list(pcfg.metric) == ["fad", "kad"] and info["skipped_metrics"] == ["clap_score"]  # no prompt texts
    assert info["n_degraded"] == 5 and info["n_reference"] is None and info["reference"] == "demo"
    assert list(pcfg.reference) == ["demo"] and pcfg.reference.demo.path == str(other)
    assert len(pd.read_csv(tmp_path / "run" / "sensitivity_clips.csv")) == 5
    assert set(pcfg.model) == {"clean", "noise_1", "noise_2", "noise_3", "lowpass_1", "lowpass_2"}
    assert pcfg.model.noise_3.level == -5 and pcfg.model.clean.degradation == "none"
    with pytest.raises(ConfigError, match="another configured reference set"):
        S.build_run_config(compose(_overrides(tmp_path, src, "sensitivity.reference=elsewhere"),
                                   config_name="sensitivity"), tmp_path / "run2")


def test_cli_reports_bad_input_with_exit_2(tmp_path):
    import subprocess
    import sys

    code = "import sys; from bench.cli import main; sys.argv = ['bench', *sys.argv[1:]]; main()"
    for args, needle in ((["sensitivity.only=[flanger]"], "flanger"), (["embedder=[vgish]"], "vgish")):
        r = subprocess.run([sys.executable, "-c", code, "sensitivity", "prepare_demo=false", *args],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert needle in r.stderr and "Traceback" not in r.stderr
