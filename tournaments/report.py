"""Reports of a tournament: a terminal table, report.md (with PNGs beside it) and a
self-contained report.html (the same PNGs embedded as base64), each led by the one-sentence
answer to "which precision should I deploy for this game and deadline?"."""
from __future__ import annotations

import base64
import html
import io
import math
import time
from pathlib import Path

import numpy as np

from .analysis import ArenaSummary, analyze
from .runner import DB_NAME, spec_from_run
from .schedule import build_schedule
from .store import Store


# --------------------------------------------------------------------------- formatting

def _num(x, fmt="{:+.0f}", none="-"):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return none
    if isinstance(x, float) and math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    return fmt.format(x)


def _ms(x):
    return _num(x, "{:.1f}")


def _metric_keys(s: ArenaSummary) -> list[str]:
    keys: list[str] = []
    for r in s.rows:
        keys += [k for k in r.metrics if k not in keys]
    return keys


def headline_metrics(s: ArenaSummary) -> list[str]:
    """Metrics worth a column in the main table: the market's yield and the like."""
    return [k for k in _metric_keys(s) if any(w in k for w in ("yield", "pnl", "return"))][:2]


def agent_table(s: ArenaSummary, *, metrics: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    level = round(100 * (s.bt.confidence if s.bt else 0.95))
    metrics = headline_metrics(s) if metrics is None else metrics
    header = ["#", "agent", "spec", "Elo", f"{level}% CI", "games", "W-D-L", "score",
              "latency ms", "p99 ms", "missed %", "Pareto"]
    openskill = any(r.openskill for r in s.rows)
    if openskill:
        header.append("OpenSkill")
    header += [f"{m} [{level}% CI]" for m in metrics]
    rows = []
    for i, r in enumerate(s.rows, 1):
        row = [str(i), r.name + ("" if r.candidate else " *"), r.spec, _num(r.rating),
               f"[{_num(r.lower)}, {_num(r.upper)}]" if not r.upper - r.lower < 0.5 else "no spread", str(r.games), f"{r.wins}-{r.draws}-{r.losses}",
               _num(100 * r.score, "{:.1f}%"), _ms(r.latency_mean_ms), _ms(r.latency_p99_ms),
               _num(100 * r.missed_rate, "{:.1f}"), "yes" if r.pareto else ""]
        if openskill:
            row.append(_num(r.openskill["ordinal"], "{:.1f}") if r.openskill else "-")
        for m in metrics:
            v = r.metrics.get(m)
            row.append(f"{v['mean']:.4g} [{_num(v['lower'], '{:.4g}')}, {_num(v['upper'], '{:.4g}')}]" if v else "-")
        rows.append(row)
    return header, rows


def metrics_table(s: ArenaSummary) -> tuple[list[str], list[list[str]]]:
    """Every numeric metric the game reports, per agent: mean over its matches [t interval]."""
    keys = _metric_keys(s)
    level = round(100 * (s.bt.confidence if s.bt else 0.95))
    header = ["agent"] + [f"{k} [{level}% CI]" for k in keys]
    rows = []
    for r in s.rows:
        cells = [r.name]
        for k in keys:
            v = r.metrics.get(k)
            cells.append(f"{v['mean']:.4g} [{_num(v['lower'], '{:.4g}')}, {_num(v['upper'], '{:.4g}')}]" if v else "-")
        rows.append(cells)
    return header, rows


def pair_table(s: ArenaSummary) -> tuple[list[str], list[list[str]]]:
    header = ["pair", "games", "W-D-L", "score", "Elo +- 95%", "LOS", "pentanomial (0, .5, 1, 1.5, 2)"]
    rows = []
    for p in s.pairs:
        rows.append([f"{p.a} vs {p.b}", str(p.games), f"{p.wins}-{p.draws}-{p.losses}",
                     _num(100 * p.score, "{:.1f}%"), f"{_num(p.elo)} +- {_num(p.elo_error(), '{:.0f}')}" if math.isfinite(p.elo_error()) else _num(p.elo),
                     _num(100 * p.los(), "{:.1f}%"),
                     " ".join(map(str, p.pentanomial)) if sum(p.pentanomial) else "-"])
    return header, rows


def _text_table(header, rows) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _md_table(header, rows) -> str:
    esc = lambda x: str(x).replace("|", "\\|")
    out = ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(out)


def _html_table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _heading(s: ArenaSummary) -> str:
    title = s.label if s.label == s.game else f"{s.label} ({s.game})"
    return (f"{title}: {s.tick_hz:g} Hz, {s.clock} clock, deadline {s.deadline_ms:.1f} ms; "
            f"{s.matches} of {s.scheduled} matches")


def terminal_report(summaries: list[ArenaSummary]) -> str:
    parts = []
    for s in summaries:
        parts += [_heading(s), _text_table(*agent_table(s)), "", s.answer, ""]
    parts.append("(* = yardstick, not a deployment candidate; Elo from Bradley-Terry with a bootstrap CI; "
                 "'no spread': every seed of the agent's pairings gave the same result)")
    return "\n".join(parts)


# --------------------------------------------------------------------------- plots

def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def plots(s: ArenaSummary) -> dict[str, tuple[str, bytes]]:
    """{file stem: (caption, PNG bytes)} for one arena."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = {}
    rows = s.rows
    timed = [r for r in rows if r.latency_mean_ms is not None]
    if timed:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for i, r in enumerate(timed):
            colour = "tab:red" if r.pareto else "tab:blue" if r.candidate else "tab:gray"
            yerr = [[max(r.rating - r.lower, 0)], [max(r.upper - r.rating, 0)]] if math.isfinite(r.lower) else None
            ax.errorbar(r.latency_mean_ms, r.rating, yerr=yerr, fmt="o", color=colour, capsize=3)
            ax.annotate(r.name, (r.latency_mean_ms, r.rating), textcoords="offset points", xytext=(5, 4 - 11 * (i % 3)),
                        fontsize=8)  # staggered: agents often share a latency
        front = sorted((r for r in timed if r.pareto), key=lambda r: r.latency_mean_ms)
        if len(front) > 1:
            ax.step([r.latency_mean_ms for r in front], [r.rating for r in front], where="post",
                    color="tab:red", alpha=0.6, label="Pareto front")
        ax.axvline(s.deadline_ms, color="k", ls=":", lw=1, label=f"one tick ({s.deadline_ms:.1f} ms)")
        lats = [r.latency_mean_ms for r in timed]
        if max(lats) > 50 * max(min(lats), 1.0):  # scripted bots at ~0 ms beside models at ~1 s
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_xlim(0, max(lats) * 2)
        ax.set_xlabel("mean decision latency (ms)")
        ax.set_ylabel("Elo (Bradley-Terry, 95% CI)")
        ax.set_title(f"{s.label}: rating against latency")
        ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)
        out["rating-latency"] = ("Rating against mean decision latency; red points are the Pareto front "
                                 "(no agent is both faster and stronger).", _png(fig))
    names, matrix = s.winrate
    if names:
        fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(names), 0.8 + 0.5 * len(names)))
        im = ax.imshow(np.ma.masked_invalid(matrix), cmap="RdYlGn", vmin=0, vmax=1)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        for i in range(len(names)):
            for j in range(len(names)):
                if not np.isnan(matrix[i, j]):
                    ax.text(j, i, f"{100 * matrix[i, j]:.0f}", ha="center", va="center", fontsize=7)
        fig.colorbar(im, ax=ax, fraction=0.046, label="score of row against column")
        ax.set_title(f"{s.label}: score matrix (%)")
        out["winrate"] = ("Score of each row agent against each column agent (wins + draws/2).", _png(fig))
        fig, ax = plt.subplots(figsize=(6.4, 0.8 + 0.35 * len(rows)))
        ax.barh([r.name for r in rows][::-1], [100 * r.missed_rate for r in rows][::-1], color="tab:orange")
        ax.set_xlabel("ticks on the late policy (%)")
        ax.set_title(f"{s.label}: missed ticks")
        ax.grid(axis="x", alpha=0.3)
        out["missed"] = ("Share of ticks each agent spent without a fresh decision (its late policy acted).", _png(fig))
    with_lat = [(r.name, s.latencies[r.name]) for r in rows if len(s.latencies.get(r.name, ()))]
    if with_lat:
        fig, ax = plt.subplots(figsize=(6.4, 0.8 + 0.4 * len(with_lat)))
        data = [v for _, v in with_lat][::-1]
        try:  # matplotlib >= 3.10 says orientation=, older ones vert=
            ax.boxplot(data, orientation="horizontal", showfliers=False)
        except TypeError:
            ax.boxplot(data, vert=False, showfliers=False)
        ax.set_yticks(range(1, len(data) + 1), [n for n, _ in with_lat][::-1])
        ax.axvline(s.deadline_ms, color="k", ls=":", lw=1)
        ax.set_xlabel("decision latency (ms); dotted: one tick")
        ax.set_title(f"{s.label}: latency distributions")
        ax.grid(axis="x", alpha=0.3)
        out["latency"] = ("Decision latency per agent (box: quartiles, whiskers: 1.5 IQR).", _png(fig))
    return out


# --------------------------------------------------------------------------- files

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .5em;
text-align:right}th{background:#f3f3f3}td:nth-child(2),td:nth-child(3){text-align:left}
.answer{background:#eef6ee;border-left:4px solid #3a3;padding:.6em 1em;font-size:1.1em}
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}img{max-width:100%}"""


def write_reports(run_dir, *, n_bootstrap: int | None = None, openskill: bool | None = None,
                  plots_enabled: bool = True) -> dict:
    """Analyse the run in run_dir and write report.md, report.html and plots/*.png there.
    Returns {"summaries", "text", "md", "html"}."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        run_dir = run_dir.parent
    spec = spec_from_run(run_dir)
    with Store.open(run_dir / DB_NAME) as store:
        records = store.matches()
        meta = store.meta()
        skipped = store.skipped_agents()
    try:
        tasks = build_schedule(spec)
        scheduled = {}
        for t in tasks:
            if not set(t.seats) & set(skipped):
                scheduled[t.arena] = scheduled.get(t.arena, 0) + 1
    except Exception:  # the games may be gone from this install; counts are a nicety
        scheduled = None
    summaries = analyze(spec, records, scheduled=scheduled, n_bootstrap=n_bootstrap, openskill=openskill)
    text = terminal_report(summaries)
    title = f"Tournament {spec.name}"
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(meta.get("created_at", time.time())))
    md = [f"# {title}", "", f"Started {started}; format {spec.format}, {spec.games_per_pairing} games per "
          f"pairing{' (paired seeds, sides swapped)' if spec.paired else ''}; fpx-arena {meta.get('fpx_arena_version', '?')}.", ""]
    md += [f"**{s.answer}**" for s in summaries] + [""]
    hs = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(md[2])}</p>"]
    hs += [f'<p class="answer">{html.escape(s.answer)}</p>' for s in summaries]
    if skipped:
        lines = [f"- skipped {name}: {reason}" for name, reason in skipped.items()]
        md += ["Agents that could not play:", ""] + lines + [""]
        hs.append("<ul>" + "".join(f"<li>{html.escape(x[2:])}</li>" for x in lines) + "</ul>")
    (run_dir / "plots").mkdir(exist_ok=True)
    for s in summaries:
        md += [f"## {_heading(s)}", "", _md_table(*agent_table(s)), "",
               "Agents marked * are yardsticks, not deployment candidates.", "", "### Pairs", "",
               _md_table(*pair_table(s)), ""]
        hs += [f"<h2>{html.escape(_heading(s))}</h2>", _html_table(*agent_table(s)),
               "<p>Agents marked * are yardsticks, not deployment candidates.</p>", "<h3>Pairs</h3>",
               _html_table(*pair_table(s))]
        if _metric_keys(s):
            md += ["### Game metrics (mean per match)", "", _md_table(*metrics_table(s)), ""]
            hs += ["<h3>Game metrics (mean per match)</h3>", _html_table(*metrics_table(s))]
        if plots_enabled:
            for stem, (caption, png) in plots(s).items():
                name = f"plots/{s.label}-{stem}.png"
                (run_dir / name).write_bytes(png)
                md += [f"![{caption}]({name})", "", f"*{caption}*", ""]
                data = base64.b64encode(png).decode()
                hs.append(f'<figure><img alt="{html.escape(stem)}" src="data:image/png;base64,{data}">'
                          f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    md += ["Elo: Bradley-Terry maximum likelihood (draws count half), bootstrap interval over "
           f"{'seed pairs' if spec.paired else 'games'} resampled within each pairing. Pairs: Elo +- "
           "95% error and LOS from the pentanomial counts of paired games (trinomial where unpaired).", ""]
    (run_dir / "report.md").write_text("\n".join(md), encoding="utf-8")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(hs)}<p>{html.escape(md[-2])}</p></body></html>")
    (run_dir / "report.html").write_text(page, encoding="utf-8")
    return {"summaries": summaries, "text": text, "md": run_dir / "report.md", "html": run_dir / "report.html"}


__all__ = ["write_reports", "terminal_report", "agent_table", "pair_table", "metrics_table", "plots"]
