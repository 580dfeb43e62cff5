"""Self-contained HTML report of a :class:`bench.report.Board`.

One file, no external resources: CSS inline (``templates/report.html``), plots as base64 PNG
``<img>``, audio previews of the worst per-item outliers as base64 OGG/Vorbis (or WAV) ``<audio>``
players: the first :data:`PREVIEW_SECONDS` s, mono, 16 kHz. Previews stop being embedded once
``max_audio_bytes`` is used up; later ones link to the file relative to the report instead, so
the page stays small (a few MB at most).

Sections: runs, one block per table (leaderboard with CIs and marks, bar plot, pairwise
significance, rank stability), per-item distributions, FAD-vs-n curves, worst outliers,
errors, merge notes.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import os
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np
import pandas as pd

from bench.report import plots
from bench.report.board import DAGGER, Board, LeaderTable, cell_text, legend
from bench.report.significance import format_p

log = logging.getLogger(__name__)

PREVIEW_SECONDS = 5.0
PREVIEW_SR = 16_000
MAX_AUDIO_BYTES = 4 * 1024 * 1024
OUTLIERS_PER_MODEL = 3


def esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="plot" alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def _template() -> Template:
    text = resources.files("bench.report").joinpath("templates/report.html").read_text(encoding="utf-8")
    return Template(text)


# -- audio previews ------------------------------------------------------------------------------
def audio_preview(path: str | Path, seconds: float = PREVIEW_SECONDS, sr: int = PREVIEW_SR) -> tuple[bytes, str]:
    """The first ``seconds`` of a file as mono ``sr`` Hz OGG/Vorbis (WAV PCM16 when Vorbis fails).

    Returns ``(bytes, mime type)``; raises :class:`bench.audio.AudioError` for unreadable files.
    """
    import soundfile as sf

    from bench.audio import mixdown, read_audio, resample

    x, sr_in = read_audio(path, max_seconds=seconds)
    y = np.clip(resample(mixdown(x, "mean"), sr_in, sr), -1.0, 1.0).astype(np.float32)
    buf = io.BytesIO()
    try:
        sf.write(buf, y, sr, format="OGG", subtype="VORBIS")
        return buf.getvalue(), "audio/ogg"
    except Exception:  # libsndfile without Vorbis
        buf = io.BytesIO()
        sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
        return buf.getvalue(), "audio/wav"


class _AudioBudget:
    """Embeds previews until ``limit`` bytes are used, then links files relative to ``out_dir``."""

    def __init__(self, out_dir: Path, limit: int):
        self.out_dir, self.limit, self.used = out_dir, limit, 0

    def player(self, path: Path | None) -> str:
        if path is None:
            return '<span class="na">no audio in manifest</span>'
        if not path.is_file():
            return f'<span class="na">missing: {esc(path.name)}</span>'
        if self.used < self.limit:
            try:
                data, mime = audio_preview(path)
            except Exception as exc:
                return f'<span class="na">cannot preview: {esc(exc)}</span>'
            if self.used + len(data) <= self.limit:
                self.used += len(data)
                b64 = base64.b64encode(data).decode("ascii")
                return f'<audio controls preload="metadata" src="data:{mime};base64,{b64}"></audio>'
            self.used = self.limit
        rel = os.path.relpath(path.resolve(), self.out_dir.resolve())
        return f'<a href="{esc(Path(rel).as_posix())}">{esc(path.name)}</a>'


# -- sections ------------------------------------------------------------------------------------
def _table_html(table: LeaderTable, show_runs: bool) -> str:
    head = ["rank", "model", *(["run"] if show_runs else []), "n", "P(rank)"]
    out = [f'<table class="leaderboard" data-prompt-set="{esc(table.prompt_set)}" '
           f'data-reference-set="{esc(table.reference_set)}"><thead><tr>']
    out += [f'<th class="text">{esc(h)}</th>' if h in ("model", "run") else f"<th>{esc(h)}</th>" for h in head]
    out += [f'<th data-column="{esc(c.label)}">{esc(c.label)} {c.arrow}</th>' for c in table.columns]
    out.append("</tr></thead><tbody>")
    for row in table.rows:
        rank = table.rank.get(row)
        held = table.rank_held.get(row, math.nan)
        tds = [f"<td>{rank or '—'}</td>", f'<td class="text">{esc(row)}</td>']
        if show_runs:
            tds.append(f'<td class="text">{esc(table.runs.get(row, ""))}</td>')
        tds += [f"<td>{table.n.get(row, 0)}</td>", f"<td>{f'{held:.2f}' if math.isfinite(held) else '—'}</td>"]
        for col in table.columns:
            c = table.cell(row, col)
            value, ci = cell_text(c, col.decimals)
            classes = [cls for cls, on in (("best", c.best and c.ok), ("na", not c.ok)) if on]
            title = f' title="{esc(c.reason)}"' if c.reason else ""
            mark = f' <span class="mark">{DAGGER}</span>' if c.dagger else ""
            ci_html = f' <span class="ci">{esc(ci)}</span>' if ci else ""
            tds.append(f'<td class="{" ".join(classes)}"{title}>{esc(value)}{mark}{ci_html}</td>')
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _pairwise_html(board: Board, table: LeaderTable) -> str:
    pw = board.pairwise
    if pw.empty:
        return ""
    pw = pw[(pw["prompt_set"] == table.prompt_set) & (pw["reference_set"] == table.reference_set)]
    if pw.empty:
        return ""
    dec = {c.label: c.decimals for c in table.columns}
    parts = []
    for label, g in pw.groupby("column", sort=False):
        d = dec.get(label, 3)
        rows = []
        for _, r in g.iterrows():
            ci = "" if not math.isfinite(r["diff_ci_low"]) else f" [{r['diff_ci_low']:.{d}f}, {r['diff_ci_high']:.{d}f}]"
            sig = "yes" if r["significant"] else ("n/a" if not math.isfinite(r["p"]) else "no")
            rows.append(
                f'<tr><td class="text">{esc(r["model_a"])}</td><td class="text">{esc(r["model_b"])}</td>'
                f"<td>{r['diff']:+.{d}f}{esc(ci)}</td><td>{format_p(r['p'], int(r['n_replicates']))}</td>"
                f"<td>{format_p(r['p_holm'], int(r['n_replicates']))}</td>"
                f'<td class="{"sig" if r["significant"] else ""}">{sig}</td><td>{int(r["n_replicates"])}</td>'
                f'<td class="text">{esc(r["note"])}</td></tr>'
            )
        n_sig, n_tested = int(g["significant"].sum()), int(g["p"].notna().sum())
        summary = f"{n_sig} of {n_tested} tested pairs significant" if n_tested else \
            f"not tested ({esc(g['note'].iloc[0]) or 'no replicates'})"
        if 0 < n_tested < len(g):
            summary += f"; {len(g) - n_tested} pair(s) not tested"
        parts.append(
            f"<details><summary>{esc(label)}: {summary}</summary>"
            '<table class="pairwise"><thead><tr><th class="text">A (better estimate)</th><th class="text">B</th>'
            "<th>A − B [CI]</th><th>p</th><th>p (Holm)</th><th>significant</th><th>B reps</th>"
            '<th class="text">note</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table></details>"
        )
    return "<h3>Pairwise paired-bootstrap tests</h3>" + "".join(parts)


def _stability_html(board: Board, table: LeaderTable) -> str:
    st = board.stability
    if st.empty or not table.sort_by:
        return ""
    st = st[(st["prompt_set"] == table.prompt_set) & (st["reference_set"] == table.reference_set)
            & (st["column"] == table.sort_by)].dropna(axis=1, how="all")
    if st.empty:
        return ""
    png = plots.rank_heatmap(st, f"rank distribution on {table.sort_by}")
    return f"<h3>Rank stability ({esc(table.sort_by)})</h3>" + _img(png, f"rank stability {table.title}")


def _outliers_html(board: Board, budget: _AudioBudget) -> str:
    pi = board.merged.per_item
    if pi.empty:
        return ""
    long = board.long
    direction = {
        (e, m): bool(g["lower_is_better"].iloc[0]) for (e, m), g in long.groupby(["embedder", "metric"], sort=False)
    }
    pi = pi[np.isfinite(pd.to_numeric(pi["value"], errors="coerce"))]
    blocks = []
    for (ps, ref, emb, met), g in pi.groupby(["prompt_set", "reference_set", "embedder", "metric"], sort=False):
        lower = direction.get((emb, met))
        if lower is None:
            continue
        rows = []
        for model, gm in g.groupby("model", sort=True):
            worst = gm.sort_values("value", ascending=not lower, kind="stable").head(OUTLIERS_PER_MODEL)
            for _, r in worst.iterrows():
                run = board.merged.runs.get(r["run_id"])
                path = run.audio_path(model, ps, r["item_id"]) if run else None
                rows.append(
                    f'<tr><td class="text">{esc(model)}</td><td class="text">{esc(r["item_id"])}</td>'
                    f'<td>{float(r["value"]):.4g}</td><td class="text">{budget.player(path)}</td></tr>'
                )
        label = f"{met}@{emb}" if emb else met
        blocks.append(
            f"<h3>{esc(label)} — prompt set {esc(ps)}{' vs ' + esc(ref) if ref else ''} "
            f"({'highest' if lower else 'lowest'} = worst)</h3>"
            '<table class="outliers"><thead><tr><th class="text">model</th><th class="text">item</th>'
            '<th>value</th><th class="text">audio</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>"
        )
    if not blocks:
        return ""
    return (f"<h2>Worst per-item outliers</h2><p class=\"legend\">The {OUTLIERS_PER_MODEL} worst items per model; "
            f"previews: first {PREVIEW_SECONDS:g} s, mono, {PREVIEW_SR // 1000} kHz.</p>" + "".join(blocks))


def _distributions_html(board: Board) -> str:
    pi = board.merged.per_item
    if pi.empty:
        return ""
    parts = []
    for ps, g in pi.groupby("prompt_set", sort=False):
        order = next((t.rows for t in board.tables if t.prompt_set == ps), None)
        parts.append(f"<h3>Prompt set {esc(ps)}</h3>" + _img(plots.item_distributions(g, order),
                                                                f"per-item distributions {ps}"))
    return "<h2>Per-item score distributions</h2>" + "".join(parts)


def _curves_html(board: Board) -> str:
    png = plots.fad_curves(board.merged.curves)
    if not png:
        return ""
    return ("<h2>Metric vs number of clips (FAD-∞)</h2><p class=\"legend\">Points: metric on subsets of n clips; "
            "dashed: least-squares line in 1/n; star: its value at 1/n = 0 (the FAD-∞ estimate).</p>"
            + _img(png, "metric vs 1/n curves"))


def _runs_html(board: Board) -> str:
    rows = []
    for rid, run in board.merged.runs.items():
        m = run.manifest
        versions = m.get("versions") or {}
        v = ", ".join(f"{k} {versions[k]}" for k in ("genaudio-bench", "torch") if versions.get(k))
        rows.append(
            f'<tr><td class="text">{esc(rid)}</td><td class="text"><code>{esc(run.config_hash or "n/a")}</code></td>'
            f'<td class="text">{esc(m.get("started", ""))}</td><td class="text">{esc(m.get("finished", ""))}</td>'
            f"<td>{len(run.long)}</td><td class=\"text\">{esc(v)}</td></tr>"
        )
    return ('<h2>Runs</h2><table class="runs"><thead><tr><th class="text">run</th><th class="text">config hash</th>'
            '<th class="text">started</th><th class="text">finished</th><th>rows</th><th class="text">versions</th>'
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _errors_html(board: Board, limit: int = 50) -> str:
    err = board.merged.errors
    if err.empty:
        return ""
    counts = err.groupby(["run_id", "stage", "model"], sort=True).size().reset_index(name="count")
    rows = "".join(
        f'<tr><td class="text">{esc(r.run_id)}</td><td class="text">{esc(r.stage)}</td>'
        f'<td class="text">{esc(r.model)}</td><td>{r.count}</td></tr>'
        for r in counts.itertuples(index=False)
    )
    detail = "".join(
        f'<tr><td class="text">{esc(r.stage)}</td><td class="text">{esc(r.model)}</td>'
        f'<td class="text">{esc(r.item_id)}</td><td class="text">{esc(r.reason)}</td></tr>'
        for r in err.head(limit).itertuples(index=False)
    )
    return (f"<h2>Errors ({len(err)})</h2>"
            '<table class="errors"><thead><tr><th class="text">run</th><th class="text">stage</th>'
            f'<th class="text">model</th><th>count</th></tr></thead><tbody>{rows}</tbody></table>'
            f"<details><summary>first {min(limit, len(err))} rows</summary>"
            '<table class="errors-detail"><thead><tr><th class="text">stage</th><th class="text">model</th>'
            '<th class="text">item</th><th class="text">reason</th></tr></thead>'
            f"<tbody>{detail}</tbody></table></details>")


def render_html(board: Board, out_dir: str | Path, max_audio_bytes: int = MAX_AUDIO_BYTES) -> str:
    """The report page; audio links (beyond the embedding budget) are relative to ``out_dir``."""
    budget = _AudioBudget(Path(out_dir), max_audio_bytes)
    show_runs = len(board.merged.runs) > 1
    body = ["<h1>genaudio-bench leaderboard</h1>", _runs_html(board)]
    if board.merged.notes:
        body.append("<h2>Merge notes</h2><ul>" + "".join(f'<li class="note">{esc(n)}</li>'
                                                        for n in board.merged.notes) + "</ul>")
    legend_html = '<p class="legend">' + "<br>".join(esc(s) for s in legend(board)) + "</p>"
    for table in board.tables:
        body.append(f"<h2>{esc(table.title)}</h2>")
        if table.sort_by:
            body.append(f'<p class="legend">Sorted by {esc(table.sort_by)}.</p>')
        body.append(_table_html(table, show_runs))
        body.append(legend_html)
        if table.notes:
            body.append("<ul>" + "".join(f'<li class="note">{esc(n)}</li>' for n in table.notes) + "</ul>")
        body.append(_img(plots.metric_bars(table), f"metric bars {table.title}"))
        body.append(_pairwise_html(board, table))
        body.append(_stability_html(board, table))
    body += [_distributions_html(board), _curves_html(board), _outliers_html(board, budget), _errors_html(board)]
    return _template().substitute(title=esc("genaudio-bench leaderboard"), body="\n".join(b for b in body if b))
