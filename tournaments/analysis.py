"""From stored matches to the numbers a report shows, per arena: ratings with intervals, pair
statistics, latency and missed ticks, game metrics (the market's daily yield) with intervals,
the Pareto front of rating against latency, and the one-sentence answer to "which precision
should I deploy for this game and deadline?"."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..agents.spec import AgentSpec
from .ratings import (BTResult, Game, PairStats, bootstrap_mean, fit_bradley_terry, openskill_ratings,
                      pair_stats, pareto_front, seeds_needed)
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
    metrics: dict = field(default_factory=dict)  # metric -> bootstrap_mean dict
    pareto: bool = False
    candidate: bool = False
    # adaptive agents: candidate -> {"decisions", "share", "mean_ms"} over the arena's matches
    candidates: dict = field(default_factory=dict)

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
    paired: bool = True

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
            samples, ticks, missed, rewards, metric_values, metric_units = [], 0, 0, [], {}, {}
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
                for key, use in ((a["metrics"] or {}).get("candidates") or {}).items():
                    c = row.candidates.setdefault(key, {"decisions": 0, "latency_ms": 0.0})
                    c["decisions"] += use["decisions"]
                    c["latency_ms"] += use["latency_ms"]
                for key, value in (a["metrics"] or {}).items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        metric_values.setdefault(key, []).append(float(value))
                        # the matches of one seed of one pairing are resampled together
                        metric_units.setdefault(key, []).append(((m.agent_a, m.agent_b), m.seed_index))
            lat = np.concatenate(samples) if samples and arena.clock != "lockstep" else np.zeros(0)
            lat_samples[name] = lat
            if len(lat):
                row.latency_mean_ms = float(lat.mean())
                row.latency_p50_ms, row.latency_p99_ms = (float(v) for v in np.percentile(lat, [50, 99]))
            row.missed_rate = missed / ticks if ticks else 0.0
            row.reward_mean = float(np.mean(rewards)) if rewards else 0.0
            total = sum(c["decisions"] for c in row.candidates.values())
            row.candidates = {k: {"decisions": c["decisions"], "share": c["decisions"] / total,
                                  "mean_ms": c["latency_ms"] / c["decisions"]}
                              for k, c in sorted(row.candidates.items()) if c["decisions"]}
            row.metrics = {}
            for k, v in sorted(metric_values.items()):
                strata, units = zip(*metric_units[k])
                row.metrics[k] = bootstrap_mean(v, units=list(units), strata=list(strata), confidence=opts.confidence,
                                                n_bootstrap=min(n_bootstrap, 1000), seed=seed)
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
            winrate=(order, matrix), latencies=lat_samples, bt=bt, paired=spec.paired)
        summary.answer = recommendation(summary)
        out.append(summary)
    return out


def _fmt_ms(ms) -> str:
    return "no" if ms is None else f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


DETECTABLE_ELO = 50  # the difference "how many seeds would it take" is asked about when two agents tie


def _wdl(r: AgentRow) -> str:
    return f"{r.wins}-{r.draws}-{r.losses}"


def recommendation(s: ArenaSummary) -> str:
    """The deployment answer for one arena, in one sentence. It names a winner only when the
    bootstrap interval of its lead over the next candidate excludes 0; otherwise it says "no
    answer yet" and how many seeds per pairing would be needed; one candidate is no choice."""
    where = f"{s.game} at {s.tick_hz:g} Hz ({s.clock} clock)" if s.label == s.game else \
        f"{s.label} ({s.game} at {s.tick_hz:g} Hz, {s.clock} clock)"
    cands = [r for r in s.rows if r.candidate]
    if not cands or s.bt is None or not s.matches:
        return f"No results for {where} yet."
    n = s.bt.seeds
    over = f"over {n} seed{'s' * (n != 1)} per pairing"
    if s.matches < s.scheduled:  # a stopped run: agents with fewer games sit nearer the prior
        over += f" (a partial run: {s.matches} of {s.scheduled} matches)"
    best = cands[0]

    def lat(r: AgentRow) -> str:
        return f", at {_fmt_ms(r.latency_mean_ms)} mean decision latency" if r.latency_mean_ms is not None else ""

    extra = ""
    yields = {k: v for k, v in best.metrics.items() if "yield" in k and math.isfinite(v["lower"])}
    for key, v in list(yields.items())[:1]:
        scale = 100.0 if abs(v["mean"]) < 5 else 1.0  # fractions shown as percent
        unit = "%" if scale == 100.0 else ""
        extra = f", {key.replace('_', ' ')} {v['mean'] * scale:.2f}{unit} [{v['lower'] * scale:.2f}, {v['upper'] * scale:.2f}]"
    if len(cands) == 1:
        return (f"No choice to make for {where}: {best.name} ({best.spec}) is the only candidate; against the "
                f"yardsticks it scored {_wdl(best)} {over}{lat(best)}{extra}.")
    second = cands[1]
    diff, lo, hi = s.bt.difference(best.name, second.name)
    games_hint = lambda seeds: f"{seeds} seeds per pairing" + (f" (games_per_pairing = {2 * seeds})" if s.paired else "")
    if not math.isfinite(lo):
        return (f"No answer yet for {where}: {best.name} leads {second.name} by {diff:+.0f} Elo {over}, but with "
                f"no bootstrap (--bootstrap 0) there is no telling that from luck.")
    interval = f"[{lo:+.0f}, {hi:+.0f}]"
    if lo > 0:
        return (f"Deploy {best.name} ({best.spec}) for {where}: it rates {diff:+.0f} Elo {interval} over the next "
                f"best, {second.name}, {over}{lat(best)}{extra}.")
    if abs(diff) < 0.5 and _wdl(best) == _wdl(second):
        needed = seeds_needed(DETECTABLE_ELO, lo, hi, n)
        tail = f"; telling apart a {DETECTABLE_ELO} Elo difference would take about {games_hint(needed)}" if needed else ""
        return (f"No answer yet for {where}: {best.name} and {second.name} cannot be separated, they scored exactly "
                f"alike ({_wdl(best)} each {over}){tail}.")
    needed = seeds_needed(diff, lo, hi, n)
    tail = f"; about {games_hint(needed)} would separate them if the lead is real" if needed else ""
    return (f"No answer yet for {where}: {best.name} leads {second.name} by {diff:+.0f} Elo {interval} {over}, "
            f"an interval that includes 0{tail}.")


__all__ = ["analyze", "ArenaSummary", "AgentRow", "recommendation", "candidates", "games_of", "PairStats"]
