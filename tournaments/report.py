"""Reports of a tournament: a terminal table, report.md (with PNGs beside it) and a
self-contained report.html (the same PNGs embedded as base64), each led by the one-sentence
answer to "which precision should I deploy for this game and deadline?"."""
from __future__ import annotations

import base64
import html
import io
import math
import textwrap
import time
from pathlib import Path

import numpy as np

from .analysis import ArenaSummary, analyze
from .ratings import MIN_GAMES, MIN_PAIRS
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


def _interval(lo, hi, fmt="{:+.0f}") -> str:
    return f"[{_num(lo, fmt)}, {_num(hi, fmt)}]"


def _latency_cells(s: ArenaSummary, r) -> list[str]:
    if s.clock == "lockstep":  # the world waits: no latency is charged, so none is shown
        return ["n/a (lockstep)", "-"]
    return [_ms(r.latency_mean_ms), _ms(r.latency_p99_ms)]


def _metric_cell(v, digits: int = 4) -> str:
    if not v:
        return "-"
    fmt = f"{{:.{digits}g}}"
    if not math.isfinite(v["lower"]):
        return f"{fmt.format(v['mean'])} (n={v['n']})"
    return f"{fmt.format(v['mean'])} {_interval(v['lower'], v['upper'], fmt)}"


def agent_table(s: ArenaSummary, *, metrics: list[str] | None = None, compact: bool = False) -> tuple[list[str], list[list[str]]]:
    """The per-agent table. compact (the terminal): no spec column (a legend follows the table)
    and the interval beside the rating, so that it fits 120 columns."""
    level = round(100 * (s.bt.confidence if s.bt else 0.95))
    metrics = headline_metrics(s) if metrics is None else metrics
    if compact:
        metrics = metrics[:1]  # the rest are in report.md
    openskill = any(r.openskill for r in s.rows)
    if compact:
        header = ["#", "agent", f"Elo [{level}% CI]", "W-D-L", "score", "ms mean", "ms p99", "missed %", "Pareto"]
    else:
        header = ["#", "agent", "spec", "Elo", f"{level}% CI", "games", "W-D-L", "score",
                  "latency ms", "p99 ms", "missed %", "Pareto"]
    if openskill:
        header.append("OpenSkill")
    header += [f"{m} [{level}% CI]" for m in metrics]
    rows = []
    for i, r in enumerate(s.rows, 1):
        name = r.name + ("" if r.candidate else " *")
        if compact:
            row = [str(i), name, f"{_num(r.rating)} {_interval(r.lower, r.upper)}"]
        else:
            row = [str(i), name, r.spec, _num(r.rating), _interval(r.lower, r.upper), str(r.games)]
        row += [f"{r.wins}-{r.draws}-{r.losses}", _num(100 * r.score, "{:.1f}%"), *_latency_cells(s, r),
                _num(100 * r.missed_rate, "{:.1f}"), "yes" if r.pareto else ""]
        if openskill:
            row.append(_num(r.openskill["ordinal"], "{:.1f}") if r.openskill else "-")
        row += [_metric_cell(r.metrics.get(m), 3 if compact else 4) for m in metrics]
        rows.append(row)
    return header, rows


def metrics_table(s: ArenaSummary) -> tuple[list[str], list[list[str]]]:
    """Every numeric metric the game reports, per agent: mean over its matches [bootstrap
    percentile interval over seeds, which stays within the values' range]."""
    keys = _metric_keys(s)
    level = round(100 * (s.bt.confidence if s.bt else 0.95))
    header = ["agent"] + [f"{k} [{level}% CI]" for k in keys]
    rows = [[r.name] + [_metric_cell(r.metrics.get(k)) for k in keys] for r in s.rows]
    return header, rows


def candidate_table(s: ArenaSummary) -> tuple[list[str], list[list[str]]]:
    """Adaptive agents: each candidate's share of the decisions and its mean charged latency."""
    header = ["agent", "candidate", "share of decisions", "decisions", "mean latency ms"]
    rows = [[r.name, key, f"{c['share']:.1%}", str(c["decisions"]), f"{c['mean_ms']:.1f}"]
            for r in s.rows for key, c in r.candidates.items()]
    return header, rows


def pair_table(s: ArenaSummary) -> tuple[list[str], list[list[str]]]:
    header = ["pair", "games", "W-D-L", "score", "Elo", "+- 95%", "LOS", "pentanomial (0, .5, 1, 1.5, 2)"]
    rows = []
    for p in s.pairs:
        if not p.enough():
            error = los = "too few games"
        elif not p.spread():
            error = los = "all alike"
        else:
            error, los = _num(p.elo_error(), "{:.0f}"), _num(100 * p.los(), "{:.1f}%")
        rows.append([f"{p.a} vs {p.b}", str(p.games), f"{p.wins}-{p.draws}-{p.losses}",
                     _num(100 * p.score, "{:.1f}%"), _num(p.elo), error, los,
                     " ".join(map(str, p.pentanomial)) if sum(p.pentanomial) else "-"])
    return header, rows


WIDTH = 120  # terminal tables fit this many columns


def _wrap(text: str, width: int) -> list[str]:
    lines = textwrap.wrap(str(text), width, break_long_words=True, break_on_hyphens=True)
    return lines or [""]


def text_table(header, rows, width: int = WIDTH) -> str:
    """A plain table that fits `width` columns: the widest columns wrap (names are never cut)."""
    table = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(x) for x in col) for col in zip(*table)]
    gap = 2
    while sum(widths) + gap * (len(widths) - 1) > width:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= 8:
            break
        widths[widest] -= 1
    lines = []
    for n, cells in enumerate(table):
        wrapped = [_wrap(c, w) for c, w in zip(cells, widths)]
        for k in range(max(len(w) for w in wrapped)):
            lines.append((" " * gap).join((w[k] if k < len(w) else "").ljust(wd)
                                          for w, wd in zip(wrapped, widths)).rstrip())
        if n == 0:
            lines.append((" " * gap).join("-" * w for w in widths))
    return "\n".join(lines)


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


def _legend(summaries: list[ArenaSummary], width: int = WIDTH) -> str:
    specs = {}
    for s in summaries:
        for r in s.rows:
            specs.setdefault(r.name, r.spec)
    text = "agents: " + "; ".join(f"{n} = {sp}" for n, sp in specs.items() if n != sp)
    return "\n".join(textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False))


def machine_line(meta: dict) -> str:
    """Where a run's matches were played: CPU/GPU, workers and threads, load (from the runner's
    record in the database)."""
    sessions = meta.get("sessions") or []
    if not sessions:
        return ""
    parts = []
    for m in sessions:
        load = m.get("loadavg_start"), m.get("loadavg_end")
        fmt = lambda x: "/".join(f"{v:.2f}" for v in x) if x else "?"
        gpus = f", GPUs {', '.join(m['gpus'])}" if m.get("gpus") else ""
        parts.append(f"{m.get('cpu', '?')} ({m.get('cpu_count', '?')} cores){gpus}; {m.get('workers', '?')} "
                     f"worker(s), {m.get('worker_threads', '?')} torch/OpenMP thread(s) each (LLM agents: "
                     f"their threads= option, 1 by default); load average (1/5/15 min) {fmt(load[0])} at "
                     f"the start, {fmt(load[1])} at the end; {m.get('played', '?')} matches")
    return "Played on " + " | then ".join(parts) + "."


def terminal_report(summaries: list[ArenaSummary], meta: dict | None = None) -> str:
    parts = []
    for s in summaries:
        parts += [_heading(s), text_table(*agent_table(s, compact=True)), "", *textwrap.wrap(s.answer, WIDTH), ""]
    parts.append(_legend(summaries))
    parts += textwrap.wrap("* = yardstick, not a deployment candidate. Elo: Bradley-Terry with a weak prior (two "
                           "virtual draws per pair), 95% interval from the paired-seed bootstrap.", WIDTH)
    if meta and any(s.clock in ("measured", "wall") for s in summaries):
        # real time was measured: the numbers are this machine's and its load's
        parts += textwrap.wrap(machine_line(meta), WIDTH)
    return "\n".join(parts)


# --------------------------------------------------------------------------- plots

def _png(fig) -> bytes:
    buf = io.BytesIO()
    # no timestamp in the PNG, so that two runs with the same results write the same bytes
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _place_labels(ax, points, labels, fontsize=8):
    """Label each point without overlaps: each label starts just right (else left) of its point
    and moves down or up in steps of one text line until its box stays inside the axes and
    touches no other label nor point; a thin line joins a moved label to its point."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed = []
    marks = [ax.transData.transform(p) for p in points]
    order = sorted(range(len(points)), key=lambda i: (-marks[i][1], marks[i][0]))
    line = fontsize * 1.35  # points
    tries = [(k, side) for k in range(40) for side in (1, -1)]
    for i in order:
        best = None
        for k, side in tries:
            dy = 0 if k == 0 else (-1) ** (k + 1) * ((k + 1) // 2) * line
            text = ax.annotate(labels[i], points[i], xytext=(6 * side, dy), textcoords="offset points",
                               fontsize=fontsize, va="center", ha="left" if side > 0 else "right",
                               arrowprops=dict(arrowstyle="-", lw=0.5, color="0.5") if k else None)
            box = text.get_window_extent(renderer).expanded(1.04, 1.1)
            inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1)
            clear = not any(box.contains(mx, my) for j, (mx, my) in enumerate(marks) if j != i) and \
                not any(box.overlaps(b) for b in placed)
            if inside and clear:
                best = (text, box)
                break
            text.remove()
        if best is None:  # too crowded: keep the name beside its point rather than drop it
            text = ax.annotate(labels[i], points[i], xytext=(6, 0), textcoords="offset points", fontsize=fontsize,
                               va="center")
            best = (text, text.get_window_extent(renderer))
        placed.append(best[1])


def plots(s: ArenaSummary) -> dict[str, tuple[str, bytes]]:
    """{file stem: (caption, PNG bytes)} for one arena."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = {}
    rows = s.rows
    level = round(100 * (s.bt.confidence if s.bt else 0.95))
    timed = [r for r in rows if r.latency_mean_ms is not None]
    floor = 0.01  # ms: a log axis cannot show 0; scripted bots deciding "instantly" sit here
    if timed:
        fig, ax = plt.subplots(figsize=(7.2, 4.6))
        points = []
        for r in timed:
            colour = "tab:red" if r.pareto else "tab:blue" if r.candidate else "tab:gray"
            x = max(r.latency_mean_ms, floor)
            if math.isfinite(r.lower):
                yerr = [[max(r.rating - r.lower, 0)], [max(r.upper - r.rating, 0)]]
                ax.errorbar(x, r.rating, yerr=yerr, fmt="o", color=colour, capsize=4, elinewidth=1.2)
            else:
                ax.plot(x, r.rating, "o", color=colour)
            points.append((x, r.rating))
        front = sorted((r for r in timed if r.pareto), key=lambda r: r.latency_mean_ms)
        if len(front) > 1:
            ax.step([max(r.latency_mean_ms, floor) for r in front], [r.rating for r in front], where="post",
                    color="tab:red", alpha=0.6, label="Pareto front")
        ax.axvline(s.deadline_ms, color="k", ls=":", lw=1, label=f"one tick ({s.deadline_ms:.1f} ms)")
        ax.set_xscale("log")
        lats = [p[0] for p in points] + [s.deadline_ms]
        ax.set_xlim(min(lats) / 2, max(lats) * 6)  # room on the right for the labels
        _place_labels(ax, points, [r.name for r in timed])
        ax.set_xlabel("mean decision latency (ms, log scale)")
        bars = "bars: bootstrap interval" if any(math.isfinite(r.lower) for r in timed) else "no intervals"
        ax.set_ylabel(f"Elo (Bradley-Terry; {bars}, {level}%)")
        ax.set_title(f"{s.label}: rating against latency")
        ax.legend(fontsize=8, loc="lower left")
        ax.grid(alpha=0.3, which="both")
        out["rating-latency"] = (f"Rating against mean decision latency, with {level}% bootstrap intervals; red "
                                 "points are the Pareto front (no agent is both faster and stronger).", _png(fig))
    names, matrix = s.winrate
    if names:
        side = 1.6 + 0.55 * len(names)
        fig, ax = plt.subplots(figsize=(side + 1.6, side), layout="constrained")
        im = ax.imshow(np.ma.masked_invalid(matrix), cmap="RdYlGn", vmin=0, vmax=1)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        for i in range(len(names)):
            for j in range(len(names)):
                if not np.isnan(matrix[i, j]):
                    ax.text(j, i, f"{100 * matrix[i, j]:.0f}", ha="center", va="center", fontsize=7)
        bar = fig.colorbar(im, ax=ax, shrink=0.8)
        bar.set_label("score of row against column", fontsize=8)
        ax.set_title(f"{s.label}: score matrix (%)")
        out["winrate"] = ("Score of each row agent against each column agent (wins + draws/2); blank: never met.",
                          _png(fig))
        if s.clock != "lockstep":
            fig, ax = plt.subplots(figsize=(6.4, 0.8 + 0.35 * len(rows)))
            ax.barh([r.name for r in rows][::-1], [100 * r.missed_rate for r in rows][::-1], color="tab:orange")
            ax.set_xlabel("ticks on the late policy (%)")
            ax.set_title(f"{s.label}: missed ticks")
            ax.grid(axis="x", alpha=0.3)
            out["missed"] = ("Share of ticks each agent spent without a fresh decision (its late policy acted).",
                             _png(fig))
    with_lat = [(r.name, np.maximum(s.latencies[r.name], floor)) for r in rows if len(s.latencies.get(r.name, ()))]
    if with_lat:
        fig, ax = plt.subplots(figsize=(6.4, 0.8 + 0.4 * len(with_lat)))
        data = [v for _, v in with_lat][::-1]
        try:  # matplotlib >= 3.10 says orientation=, older ones vert=
            ax.boxplot(data, orientation="horizontal", showfliers=False)
        except TypeError:
            ax.boxplot(data, vert=False, showfliers=False)
        ax.set_yticks(range(1, len(data) + 1), [n for n, _ in with_lat][::-1])
        ax.set_xscale("log")
        ax.axvline(s.deadline_ms, color="k", ls=":", lw=1)
        ax.set_xlabel(f"decision latency (ms, log scale; dotted: one tick; under {floor} ms drawn at {floor})")
        ax.set_title(f"{s.label}: latency distributions")
        ax.grid(axis="x", alpha=0.3, which="both")
        out["latency"] = ("Decision latency per agent (box: quartiles, whiskers: 1.5 IQR), log scale.", _png(fig))
    return out


# --------------------------------------------------------------------------- files

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .5em;
text-align:right}th{background:#f3f3f3}td:nth-child(2),td:nth-child(3){text-align:left}
.answer{background:#eef6ee;border-left:4px solid #3a3;padding:.6em 1em;font-size:1.1em}
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}img{max-width:100%}"""


def write_reports(run_dir, *, n_bootstrap: int | None = None, openskill: bool | None = None,
                  plots_enabled: bool = True) -> dict:
    """Analyse the run in run_dir and write report.md, report.html, plots/*.png and results.txt
    there. results.txt holds the tables and answers only (no dates, no machine): two runs of a
    reproducible tournament write it byte for byte alike. Returns {"summaries", "text", "md",
    "html", "results"}."""
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
    text = terminal_report(summaries, meta)
    (run_dir / "results.txt").write_text(terminal_report(summaries) + "\n", encoding="utf-8")
    title = f"Tournament {spec.name}"
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(meta.get("created_at", time.time())))
    md = [f"# {title}", "", f"Started {started}; format {spec.format}, {spec.games_per_pairing} games per "
          f"pairing{' (paired seeds, sides swapped)' if spec.paired else ''}; fpx-arena {meta.get('fpx_arena_version', '?')}.", ""]
    machine = machine_line(meta)
    if machine:
        md[2] += " " + machine
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
        if any(r.candidates for r in s.rows):
            md += ["### Adaptive agents: decisions per candidate", "", _md_table(*candidate_table(s)), ""]
            hs += ["<h3>Adaptive agents: decisions per candidate</h3>", _html_table(*candidate_table(s))]
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
    md += ["Elo: Bradley-Terry (draws count half) with a weak prior, two virtual draws between agents that met, "
           "so that a sweep is finite; interval from a Bayesian bootstrap over "
           f"{'seed pairs' if spec.paired else 'games'} within each pairing, with one virtual seed per pairing "
           "spread over every result, so that few seeds give a wide interval. Pairs: Elo with the same prior; "
           f"+- 95% error and LOS from the pentanomial counts of paired games (trinomial where unpaired), shown "
           f"from {MIN_PAIRS} seed pairs ({MIN_GAMES} games) on. Game metrics: bootstrap percentile intervals, "
           "which stay within the values' range.", ""]
    (run_dir / "report.md").write_text("\n".join(md), encoding="utf-8")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(hs)}<p>{html.escape(md[-2])}</p></body></html>")
    (run_dir / "report.html").write_text(page, encoding="utf-8")
    return {"summaries": summaries, "text": text, "md": run_dir / "report.md", "html": run_dir / "report.html",
            "results": run_dir / "results.txt"}


__all__ = ["write_reports", "terminal_report", "agent_table", "pair_table", "metrics_table", "candidate_table", "plots", "machine_line"]
