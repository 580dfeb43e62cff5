"""The HTML report: self-contained structure, and a real headless Chromium render."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from bench.report import build_board
from bench.report.html import audio_preview, render_html
from bench.report.merge import load_run, merge_runs


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _parse(text: str) -> list[tuple[str, dict]]:
    p = _Collect()
    p.feed(text)
    return p.tags


@pytest.fixture(scope="module")
def report(two_runs_shared, tmp_path_factory) -> Path:
    board = build_board(merge_runs([load_run(p) for p in two_runs_shared]))
    out = tmp_path_factory.mktemp("merged")
    (out / "report.html").write_text(render_html(board, out), encoding="utf-8")
    return out / "report.html"


def test_html_is_self_contained_with_tables_plots_and_audio(report):
    text = report.read_text(encoding="utf-8")
    tags = _parse(text)
    assert [a["data-prompt-set"] for t, a in tags if t == "table" and a.get("class") == "leaderboard"] == ["demo"]
    imgs = [a for t, a in tags if t == "img"]
    # bars, rank stability, per-item distributions, FAD-vs-n curves
    assert len(imgs) == 4 and all(a["src"].startswith("data:image/png;base64,") for a in imgs)
    for a in imgs:
        png = base64.b64decode(a["src"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    audios = [a for t, a in tags if t == "audio"]
    assert len(audios) == 2 * 3 * 3  # 2 per-item metrics x 3 models x 3 worst items
    assert all(a["src"].startswith(("data:audio/ogg;base64,", "data:audio/wav;base64,")) for a in audios)
    # nothing fetched from outside the file
    assert not [a for t, a in tags if t in ("script", "link") and (a.get("src") or a.get("href"))]
    assert not re.search(r"""(src|href)=["'](https?:)?//""", text)
    assert len(text.encode()) < 10 * 1024 * 1024
    # marks and CIs in the leaderboard table
    assert '<td class="best">3.04 <span class="mark">†</span> <span class="ci">[2.56, 3.53]</span></td>' in text
    assert "run_b" in text and "MERT weights not found" in text


def test_worst_outliers_follow_the_metric_direction(report):
    text = report.read_text(encoding="utf-8")
    fad = text.split("fad@vggish — prompt set demo", 1)[1].split("</table>", 1)[0]
    clap = text.split("clap@clap — prompt set demo", 1)[1].split("</table>", 1)[0]
    assert "(highest = worst)" in fad[:40] and "(lowest = worst)" in clap[:40]
    vals = [float(v) for v in re.findall(r'<td class="text">alpha</td><td class="text">p\d\d</td><td>([\d.]+)</td>',
                                         fad)]
    assert len(vals) == 3 and vals == sorted(vals, reverse=True)


def test_audio_budget_falls_back_to_relative_links(two_runs_shared, tmp_path):
    board = build_board(merge_runs([load_run(p) for p in two_runs_shared]))
    out = tmp_path / "elsewhere"
    out.mkdir()
    text = render_html(board, out, max_audio_bytes=0)
    links = re.findall(r'<a href="([^"]+\.wav)">', text)
    assert len(links) == 18 and "<audio" not in text
    assert all((out / link).resolve().is_file() for link in links)


def test_audio_preview_is_short_mono_16k(tmp_path):
    import soundfile as sf

    t = np.arange(44100 * 8) / 44100
    sf.write(tmp_path / "long.wav", np.stack([np.sin(2 * np.pi * 440 * t)] * 2, axis=1) * 0.5, 44100)
    data, mime = audio_preview(tmp_path / "long.wav")
    y, sr = sf.read(io.BytesIO(data))
    assert mime in ("audio/ogg", "audio/wav") and sr == 16000 and y.ndim == 1
    assert abs(len(y) / sr - 5.0) < 0.05
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * sr / len(y) - 440) < 5


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


_PROBE = """
<script>
function probe(id, obj) {
  const pre = document.createElement('pre');
  pre.id = id;
  pre.textContent = JSON.stringify(obj);
  document.body.appendChild(pre);
}
window.addEventListener('load', () => {
  // the load event waits for every <img>: naturalWidth is 0 for an image that failed to decode
  probe('probe', {imgs: [...document.images].map(i => [i.naturalWidth, i.naturalHeight, i.complete]),
                  tables: document.querySelectorAll('table.leaderboard').length,
                  rows: document.querySelectorAll('table.leaderboard tbody tr').length});
  Promise.all([...document.querySelectorAll('audio')].map(a => new Promise(resolve => {
    if (a.readyState >= 1) return resolve(a.duration);
    a.addEventListener('loadedmetadata', () => resolve(a.duration));
    a.addEventListener('error', () => resolve(-1));
  }))).then(durations => probe('probe-audio', durations));
});
</script>
"""


def _dump(base: list[str], page: Path) -> str:
    """The DOM after scripts ran; media decoding is asynchronous, so retry until the audio probe is in."""
    out = ""
    for _ in range(4):
        proc = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = proc.stdout
        if 'id="probe-audio"' in out:
            break
    return out


def _probe(dom: str, pid: str):
    m = re.search(rf'<pre id="{pid}">(.*?)</pre>', dom, re.S)
    assert m, f"{pid} missing in DOM: {dom[-1500:]}"
    return json.loads(html.unescape(m.group(1)))


@pytest.mark.skipif(_chromium() is None, reason="no chromium / chrome binary (apt-get install chromium)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    import matplotlib.image as mpimg

    probed = report.with_name("probed.html")
    probed.write_text(report.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    base = [_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--mute-audio",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000"]
    dom = _dump(base, probed)
    probe = _probe(dom, "probe")
    assert probe["tables"] == 1 and probe["rows"] == 3
    assert len(probe["imgs"]) == 4 and all(w > 100 and h > 100 and ok for w, h, ok in probe["imgs"])  # decoded
    durations = _probe(dom, "probe-audio")
    assert len(durations) == 18 and all(abs(d - 1.0) < 0.1 for d in durations)  # the 1 s previews decoded
    shot = tmp_path / "shot.png"
    run = subprocess.run([*base, "--window-size=1200,1600", f"--screenshot={shot}", report.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    img = mpimg.imread(shot)[..., :3]
    assert img.shape[:2] == (1600, 1200)
    dark = (img.mean(axis=2) < 0.5).mean()  # text, table borders and plot ink
    colour = (img.std(axis=2) > 0.1).mean()  # the plots' coloured bars / the highlighted best cells
    assert 0.005 < dark < 0.5 and colour > 0.002
