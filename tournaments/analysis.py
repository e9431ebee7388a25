"""From stored matches to the numbers a report shows, per arena: ratings with intervals, pair
statistics, latency and missed ticks, game metrics (the market's daily yield) with intervals,
the Pareto front of rating against latency, and the one-sentence answer to "which precision
should I deploy for this game and deadline?"."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..agents.spec import AgentSpec
from .ratings import (BTResult, Game, PairStats, fit_bradley_terry, mean_interval, openskill_ratings,
                      pair_stats, pareto_front)
from .spec import TournamentSpec
from .store import MatchRecord


@dataclass
class AgentRow:
    name: str
    spec: str
    rating: float
    lower: float
    upper: float
    games: int = 0
    wins: int = 0
    draws: int = 0
    losses: int = 0
    decisions: int = 0
    latency_mean_ms: float | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    missed_rate: float = 0.0  # missed ticks / ticks played
    errors: int = 0
    invalid: int = 0
    timeouts: int = 0
    reward_mean: float = 0.0
    openskill: dict | None = None
    metrics: dict = field(default_factory=dict)  # metric -> mean_interval dict
    pareto: bool = False
    candidate: bool = False

    @property
    def score(self) -> float:
        return (self.wins + 0.5 * self.draws) / self.games if self.games else float("nan")


@dataclass
class ArenaSummary:
    label: str
    game: str
    clock: str
    tick_hz: float
    deadline_ms: float
    matches: int
    scheduled: int
    rows: list  # AgentRow, best rating first
    pairs: list  # PairStats
    winrate: tuple  # (names, matrix of row's score against column, NaN where unplayed)
    latencies: dict  # name -> np.ndarray of decision latencies (ms)
    bt: BTResult | None
    answer: str = ""

    def row(self, name: str) -> AgentRow:
        return next(r for r in self.rows if r.name == name)


def games_of(records: list[MatchRecord], paired: bool) -> list[Game]:
    """Rating inputs: with paired seeds, the two games of a seed form one bootstrap unit."""
    return [Game(m.agent_a, m.agent_b, m.score_a, unit=m.seed_index if paired else None,
                 stratum=(m.agent_a, m.agent_b)) for m in records]


def candidates(spec: TournamentSpec, names: list[str]) -> list[str]:
    """The agents the deployment question is about: a gauntlet's challengers; otherwise the
    model-backed agents if there are any (scripted bots are yardsticks), else everyone."""
    if spec.format == "gauntlet":
        return [n for n in names if n not in spec.baselines]
    models = [n for n in names if AgentSpec.parse(spec.agent(n).spec).model_backed]
    return models or list(names)


def analyze(spec: TournamentSpec, records: list[MatchRecord], *, scheduled: dict | None = None,
            n_bootstrap: int | None = None, openskill: bool | None = None, seed: int | None = None) -> list[ArenaSummary]:
    opts = spec.ratings
    n_bootstrap = opts.bootstrap if n_bootstrap is None else n_bootstrap
    openskill = opts.openskill if openskill is None else openskill
    seed = opts.seed if seed is None else seed
    out = []
    for arena in spec.arenas:
        recs = [m for m in records if m.arena == arena.label]
        names = [a.name for a in spec.agents if any(a.name in (m.agent_a, m.agent_b) for m in recs)]
        games = games_of(recs, spec.paired)
        anchor = opts.anchor if opts.anchor in names else None
        bt = fit_bradley_terry(games, agents=names, n_bootstrap=n_bootstrap, seed=seed, anchor=anchor,
                               confidence=opts.confidence) if names else None
        skill = openskill_ratings(games) if openskill and games else {}
        pairs = pair_stats(games)
        rows = []
        lat_samples = {}
        cands = set(candidates(spec, names))
        for i, name in enumerate(names):
            row = AgentRow(name=name, spec=spec.agent(name).spec, rating=float(bt.ratings[i]),
                           lower=float(bt.lower[i]), upper=float(bt.upper[i]), openskill=skill.get(name),
                           candidate=name in cands)
            samples, ticks, missed, rewards, metric_values = [], 0, 0, [], {}
            for m in recs:
                a = m.agents.get(name)
                if a is None:
                    continue
                row.games += 1
                s = m.score_a if m.agent_a == name else 1.0 - m.score_a
                row.wins += s == 1.0
                row.losses += s == 0.0
                row.draws += s == 0.5
                row.decisions += a["decisions"]
                row.errors += a["errors"]
                row.invalid += a["invalid"]
                row.timeouts += a["timeouts"]
                ticks += m.ticks
                missed += a["missed_ticks"]
                rewards.append(a["reward"])
                if "latencies" in a:
                    samples.append(a["latencies"])
                for key, value in (a["metrics"] or {}).items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        metric_values.setdefault(key, []).append(float(value))
            lat = np.concatenate(samples) if samples else np.zeros(0)
            lat_samples[name] = lat
            if len(lat):
                row.latency_mean_ms = float(lat.mean())
                row.latency_p50_ms, row.latency_p99_ms = (float(v) for v in np.percentile(lat, [50, 99]))
            row.missed_rate = missed / ticks if ticks else 0.0
            row.reward_mean = float(np.mean(rewards)) if rewards else 0.0
            row.metrics = {k: mean_interval(v, confidence=opts.confidence) for k, v in sorted(metric_values.items())}
            rows.append(row)
        points = {r.name: (r.rating, r.latency_mean_ms) for r in rows if r.latency_mean_ms is not None}
        for name in pareto_front(points):
            next(r for r in rows if r.name == name).pareto = True
        # equal ratings: the faster agent first (at equal strength, latency decides)
        rows.sort(key=lambda r: (-round(r.rating, 6), r.latency_mean_ms if r.latency_mean_ms is not None else math.inf))
        order = [r.name for r in rows]
        matrix = np.full((len(order), len(order)), np.nan)
        for (a, b), st in pairs.items():
            i, j = order.index(a), order.index(b)
            matrix[i, j], matrix[j, i] = st.score, 1.0 - st.score
        tick_hz = arena.tick_hz or (recs[0].tick_hz if recs else 60.0)
        summary = ArenaSummary(
            label=arena.label, game=arena.game, clock=arena.clock, tick_hz=tick_hz,
            deadline_ms=arena.deadline_ms or 1000.0 / tick_hz, matches=len(recs),
            scheduled=(scheduled or {}).get(arena.label, len(recs)), rows=rows,
            pairs=sorted(pairs.values(), key=lambda p: (order.index(p.a), order.index(p.b))),
            winrate=(order, matrix), latencies=lat_samples, bt=bt)
        summary.answer = recommendation(summary)
        out.append(summary)
    return out


def _fmt_ms(ms) -> str:
    return "no" if ms is None else f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


def recommendation(s: ArenaSummary) -> str:
    """The deployment answer for one arena, in one sentence, with its interval."""
    where = f"{s.game} at {s.tick_hz:g} Hz ({s.clock} clock)" if s.label == s.game else \
        f"{s.label} ({s.game} at {s.tick_hz:g} Hz, {s.clock} clock)"
    cands = [r for r in s.rows if r.candidate]
    if not cands or s.bt is None or not s.matches:
        return f"No results for {where} yet."
    best = cands[0]
    others, who = cands[1:], "the next best"
    if not others:
        others, who = [r for r in s.rows if r.name != best.name], "the best other agent"
    lat = f"at {_fmt_ms(best.latency_mean_ms)} mean decision latency"
    extra = ""
    yields = {k: v for k, v in best.metrics.items() if "yield" in k and v["n"] > 1}
    for key, v in list(yields.items())[:1]:
        scale = 100.0 if abs(v["mean"]) < 5 else 1.0  # fractions shown as percent
        unit = "%" if scale == 100.0 else ""
        extra = f", {key.replace('_', ' ')} {v['mean'] * scale:.2f}{unit} [{v['lower'] * scale:.2f}, {v['upper'] * scale:.2f}]"
    if not others:
        return f"Deploy {best.name} ({best.spec}) for {where}: it is the only agent rated, {lat}{extra}."
    second = others[0]
    diff, lo, hi = s.bt.difference(best.name, second.name)
    if abs(diff) < 0.5 and (not math.isfinite(lo) or hi - lo < 1.0):
        # identical results (e.g. both lost every game): the games cannot tell them apart
        return (f"No deployment answer for {where} yet: {best.name} and {second.name} scored exactly alike "
                f"({best.wins}-{best.draws}-{best.losses} and {second.wins}-{second.draws}-{second.losses}), so "
                f"these games cannot separate them; {best.name} is the faster, {lat}{extra}.")
    level = round(100 * s.bt.confidence)
    interval = f"[{lo:+.0f}, {hi:+.0f}]" if math.isfinite(lo) else "(no bootstrap interval)"
    sentence = (f"Deploy {best.name} ({best.spec}) for {where}: it rates {diff:+.0f} Elo {interval} "
                f"over {who}, {second.name}, {lat}{extra}")
    if math.isfinite(lo) and hi - lo < 0.5:
        # the nonparametric bootstrap cannot spread when every seed of a pairing gave the same
        # result (typical of deterministic bots and few seeds): say so instead of a 0-wide interval
        sentence = sentence.replace(f" {interval} ", " ")
        sentence += ("; no interval: every seed of each pairing gave the same result, so the bootstrap has "
                     "no spread (play more seeds)")
    elif math.isfinite(lo) and lo <= 0:
        sentence += f"; the {level}% interval includes 0, so play more games to separate them"
    return sentence + "."


__all__ = ["analyze", "ArenaSummary", "AgentRow", "recommendation", "candidates", "games_of", "PairStats"]
