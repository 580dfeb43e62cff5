"""HTML sections and figures of the meta-evaluation commands (self-contained: plots as base64 PNG).

* :func:`sensitivity_section`: verdict table (metric@embedder x degradation), a heatmap of the
  top-severity effect size z, and z-vs-severity curves per degradation;
* :func:`agreement_section`: the ranked agreement table and bars of Kendall tau with intervals;
* :func:`write_page`: wraps sections into one standalone page.
"""

from __future__ import annotations

import base64
import html
import math

import numpy as np
import pandas as pd

from bench.report.plots import _plt, to_png

_VERDICT_COLOURS = {
    "sensitive": "#d8f0d0",
    "sensitive, non-monotonic": "#fff4d6",
    "wrong direction": "#f8d0d0",
    "blind": "#e8e8e8",
    "no bootstrap": "#ffffff",
}
_CSS = """body{font-family:-apple-system,"Segoe UI","DejaVu Sans",Arial,sans-serif;margin:2em auto;max-width:1200px;
padding:0 1em;color:#222;line-height:1.4}table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f0f0f0}td.text,th.text{text-align:left}
img.plot{max-width:100%;height:auto;display:block;margin:.5em 0;border:1px solid #eee}.legend{font-size:.85em;color:#444}"""


def esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return f'<img class="plot" alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def write_page(path, title: str, body: str) -> None:
    from bench.cache import atomic_write_text

    atomic_write_text(path, f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
                            f"<style>{_CSS}</style></head><body><h1>{esc(title)}</h1>\n{body}\n</body></html>\n")


def _num(x: float, d: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.{d}f}"


def _level(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{float(x):g}"


# -- sensitivity -------------------------------------------------------------------------------
def sensitivity_heatmap(summary: pd.DataFrame) -> bytes | None:
    """z at the top severity, rows metric@embedder, columns degradation (clipped to +-10 for colour)."""
    summary = summary[np.isfinite(summary["z"].astype(float))] if len(summary) else summary
    if summary.empty:
        return None
    s = summary.assign(label=summary["metric"] + "@" + summary["embedder"])
    pv = s.pivot_table(index="label", columns="degradation", values="z", aggfunc="first", sort=False)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.3 * pv.shape[1] + 3, 0.35 * pv.shape[0] + 1.6))
    data = pv.to_numpy(dtype=np.float64)
    ax.imshow(np.clip(np.nan_to_num(data, nan=0.0), -10, 10), cmap="RdYlGn", vmin=-10, vmax=10, aspect="auto")
    ax.set_xticks(range(pv.shape[1]), pv.columns, rotation=30, ha="right")
    ax.set_yticks(range(pv.shape[0]), pv.index)
    for i in range(pv.shape[0]):
        for j in range(pv.shape[1]):
            ax.text(j, i, _num(data[i, j], 1), ha="center", va="center", fontsize=7)
    ax.set_title("effect size z at the top severity (|z| < 2: blind; < 0: wrong direction)", fontsize=9)
    fig.tight_layout()
    return to_png(fig)


def sensitivity_curves(levels: pd.DataFrame) -> bytes | None:
    """One panel per degradation: z (change / bootstrap sd of the clean set) vs severity, a line per metric@embedder."""
    if len(levels):  # metrics without bootstrap replicates have no z to draw
        has_z = levels[levels["severity"] > 0].groupby(["metric", "embedder"])["z"].apply(
            lambda z: bool(np.isfinite(z.astype(float)).any()))
        keep = set(has_z[has_z].index)
        levels = levels[[k in keep for k in zip(levels["metric"], levels["embedder"])]]
    if levels.empty:
        return None
    degs = list(dict.fromkeys(levels["degradation"]))
    plt = _plt()
    ncols = min(3, len(degs))
    nrows = int(math.ceil(len(degs) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, deg in zip(axes.ravel(), degs):
        d = levels[levels["degradation"] == deg]
        for i, ((met, emb), g) in enumerate(d.groupby(["metric", "embedder"], sort=True)):
            g = g.sort_values("severity")
            ax.plot(g["severity"], np.clip(g["z"].astype(float), -50, 50), marker="os^vD<>"[i // 10 % 7], ms=3,
                    ls="-" if i < 10 else "--", label=f"{met}@{emb}")
        ticks = d.drop_duplicates("severity").sort_values("severity")
        ax.set_xticks(ticks["severity"], ["clean" if s == 0 else _level(lv) for s, lv in zip(ticks["severity"],
                                                                                              ticks["level"])])
        ax.axhspan(-2, 2, color="#ddd", alpha=0.5, lw=0)
        ax.set_title(deg, fontsize=10)
        ax.set_ylabel("z (clipped to ±50)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(degs):]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=7)
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(labels) // 6), 1, 1))
    return to_png(fig)


def sensitivity_section(summary: pd.DataFrame, levels: pd.DataFrame, info: dict | None = None) -> str:
    info = info or {}
    st = info.get("settings", {})
    parts = ['<section id="sensitivity"><h2>Metric sensitivity to controlled degradations</h2>']
    parts.append(
        f'<p class="legend">{esc(info.get("n_degraded", "?"))} clips of reference set '
        f'<code>{esc(info.get("source", "?"))}</code> degraded at increasing severity and scored against '
        f'<code>{esc(info.get("reference", "?"))}</code>'
        + (f' ({esc(info["n_reference"])} other clips of the same set)' if info.get("n_reference") else "")
        + ". Cell: z = (worse-oriented change at the top severity) / (standard deviation of the metric's prompt-bootstrap replicates on the clean set), "
        "then Spearman ρ of severity vs. value. Verdict: sensitive (z ≥ "
        f'{esc(st.get("z_threshold", 2))}, ρ ≥ {esc(st.get("rho_threshold", 0.8))}), non-monotonic, blind '
        "(|z| below the threshold: the metric cannot tell this change from resampling noise), wrong direction "
        "(the metric prefers the degraded audio).</p>"
    )
    if summary.empty:
        parts.append("<p>No metric produced values.</p></section>")
        return "".join(parts)
    s = summary.assign(label=summary["metric"] + "@" + summary["embedder"])
    degs = list(dict.fromkeys(s["degradation"]))
    parts.append('<table class="sensitivity"><tr><th class="text">metric@embedder</th>'
                 + "".join(f"<th>{esc(d)}</th>" for d in degs) + "</tr>")
    for label, g in s.groupby("label", sort=True):
        row = [f'<td class="text">{esc(label)}</td>']
        by = {r.degradation: r for r in g.itertuples(index=False)}
        for d in degs:
            r = by.get(d)
            if r is None:
                row.append("<td>n/a</td>")
                continue
            colour = _VERDICT_COLOURS.get(r.verdict, "#fff")
            row.append(f'<td style="background:{colour}" title="{esc(r.verdict)}">z {_num(r.z, 1)}<br>'
                       f"ρ {_num(r.rho)}<br><small>{esc(r.verdict)}</small></td>")
        parts.append("<tr>" + "".join(row) + "</tr>")
    parts.append("</table>")
    blind = s[s["verdict"].isin(["blind", "wrong direction"])]
    if len(blind):
        items = "".join(f"<li><code>{esc(r.label)}</code> is {esc(r.verdict)} to {esc(r.degradation)} "
                        f"(up to {esc(_level(r.top_level))}; z {_num(r.z, 1)})</li>"
                        for r in blind.itertuples(index=False))
        parts.append(f"<p>Findings (not failures: e.g. a 16 kHz model cannot see an 8 kHz low-pass):</p><ul>{items}</ul>")
    parts.append(img(sensitivity_heatmap(summary), "effect size heatmap"))
    parts.append(img(sensitivity_curves(levels), "effect size vs severity"))
    parts.append("</section>")
    return "\n".join(parts)


# -- agreement ---------------------------------------------------------------------------------
def agreement_bars(table: pd.DataFrame) -> bytes | None:
    """Kendall tau with its bootstrap interval per metric@embedder, one panel per level."""
    if table.empty:
        return None
    lv = list(dict.fromkeys(table["level"]))
    plt = _plt()
    fig, axes = plt.subplots(1, len(lv), figsize=(5.5 * len(lv), 0.35 * table.groupby("level").size().max() + 1.5),
                             squeeze=False)
    for ax, level in zip(axes[0], lv):
        t = table[table["level"] == level].sort_values("kendall_tau")
        y = np.arange(len(t))
        v = t["kendall_tau"].to_numpy(dtype=float)
        lo = v - t["kendall_tau_low"].to_numpy(dtype=float)
        hi = t["kendall_tau_high"].to_numpy(dtype=float) - v
        ax.barh(y, np.nan_to_num(v), color="#1f77b4")
        ax.errorbar(np.nan_to_num(v), y, xerr=[np.nan_to_num(lo), np.nan_to_num(hi)], fmt="none", ecolor="#333",
                    capsize=2, lw=1)
        ax.set_yticks(y, t["metric"] + "@" + t["embedder"], fontsize=7)
        ax.axvline(0, color="#888", lw=0.8)
        ax.set_xlim(-1.05, 1.05)
        ax.set_title(f"{level} level: Kendall τ with humans", fontsize=9)
    fig.tight_layout()
    return to_png(fig)


def agreement_section(table: pd.DataFrame, info: dict | None = None) -> str:
    info = info or {}
    parts = ['<section id="agreement"><h2>Agreement with human judgements</h2>',
             f'<p class="legend">Judgements: <code>{esc(info.get("judgements", "?"))}</code> '
             f'({esc(info.get("kind", "?"))}, {esc(info.get("n_judgements", "?"))} rows, '
             f'{esc(info.get("n_systems", "?"))} systems, {esc(info.get("n_prompts", "?"))} prompts). '
             f'Intervals: {esc(info.get("level_ci", 0.95))} percentile bootstrap over prompts '
             f'({esc(info.get("n_bootstrap", "?"))} resamples; set-level metrics are held at their full-set value). '
             "Ranked by Kendall τ within each level.</p>"]
    if table.empty:
        parts.append("<p>No metric could be compared with the judgements.</p></section>")
        return "".join(parts)
    cols = [("rank", "rank"), ("level", "level"), ("metric", "metric"), ("embedder", "embedder"), ("n", "n")]
    stats = [("pairwise_accuracy", "pairwise acc."), ("kendall_tau", "Kendall τ"), ("spearman_rho", "Spearman ρ")]
    head = "".join(f"<th>{esc(h)}</th>" for _, h in cols) + "".join(f"<th>{esc(h)}</th>" for _, h in stats)
    parts.append(f'<table class="agreement"><tr>{head}</tr>')
    for r in table.to_dict("records"):
        cells = "".join(f'<td class="text">{esc(r[c])}</td>' for c, _ in cols)
        for c, _ in stats:
            cells += f"<td>{_num(r[c], 3)} <small>[{_num(r[c + '_low'], 2)}, {_num(r[c + '_high'], 2)}]</small></td>"
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</table>")
    parts.append(img(agreement_bars(table), "Kendall tau per metric"))
    parts.append("</section>")
    return "\n".join(parts)
