"""Evaluate a policy model as an LLM agent: agreement with the expert on held-out decisions, and
match results against every scripted bot, under lockstep (quality alone) and a real-time clock
(quality and speed), at one or more precisions.

- Agreement: the agent's action (``LLMAgent.act`` on the recorded observation, the real agent
  at the given precision) against the expert's label, over held-out decisions: the held-out
  split of dataset folders, or fresh seeded expert episodes that no training run has seen.
- matches against each of the game's bots and ``random`` over seeded matches, sides alternating,
  scored as the game's ``Setups.score`` says: a win rate with Wilson 95% intervals (draws count
  as not won; the score with draws as half is given too), or the mean of a per-player metric
  (e.g. a daily yield) with a seeded bootstrap 95% interval. The game's baseline
  specs (``Setups.baselines``) play the same seats and seeds.
"""
from __future__ import annotations

import os
import platform
import random
import time

import multiprocessing as mp

import numpy as np
import torch
from tqdm import tqdm

from .. import games
from ..agents.llm import LLMAgent
from ..errors import UserError
from ..games import WIN_RATE
from ..llm.precision import make_plan
from ..llm.registry import resolve
from ..match import MatchSpec
from ..stats import tv_distance, wilson
from . import dataset
from .train import device_name

AGREEMENT_SEED = 900_000  # fresh held-out episodes: seeds no `fpx-arena dataset` default uses


# --- intervals ------------------------------------------------------------------------------------
def bootstrap_mean(xs, resamples: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap 95% interval of the mean, seeded."""
    x = np.asarray(xs, dtype=float)
    if len(x) == 0:
        return (float("nan"),) * 3
    if len(x) == 1:
        return (float(x[0]),) * 3
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (resamples, len(x)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(x.mean()), float(lo), float(hi)


# --- matches ----------------------------------------------------------------------------------------
def opponents_of(game: str) -> list[str]:
    return ["random"] + games.get(game).bot_specs()


def play_one(game: str, spec: str, opponent: str, seed: int, clock: str, env_kwargs=None) -> dict:
    """One match of `spec` against `opponent`; the spec's seat alternates with the seed."""
    env = games.make(game, **(env_kwargs or {}))
    ids = list(env.possible_agents)
    me = ids[seed % len(ids)]
    match = MatchSpec(game=game, env_kwargs=env_kwargs or {}, agents={a: spec if a == me else opponent for a in ids},
                      clock=clock, seed=seed, decision_timeout_s=60.0)
    r = match.play(env)
    s = r.stats[me]
    out = {"seed": seed, "seat": me, "ticks": r.ticks, "winner": r.winner, "won": r.winner == me,
           "lost": r.winner is not None and r.winner != me, "missed_ticks": s.missed_ticks,
           "decisions": s.decisions, "errors": s.errors, "invalid": s.invalid, "abstained": s.abstained}
    if s.latencies_ms and clock != "lockstep":  # lockstep charges no time: nothing to report
        out["latency_ms_sum"] = float(np.sum(s.latencies_ms))
        out["latency_ms_p50"] = float(np.percentile(s.latencies_ms, 50))
        out["latency_ms_p99"] = float(np.percentile(s.latencies_ms, 99))
    for name, value in s.metrics.items():  # the game's own per-player figures (its Setups.score among them)
        if isinstance(value, (int, float)) and name not in out:
            out[name] = float(value)
    return out


def _run_chunk(job):
    game, spec, opponent, seeds, clock, threads = job
    torch.set_num_threads(threads)
    return [play_one(game, spec, opponent, s, clock) for s in seeds]


def summarize(game: str, rows: list[dict]) -> dict:
    n = len(rows)
    out = {"matches": n}
    score = games.get(game).setups.score
    if score == WIN_RATE:
        wins = sum(r["won"] for r in rows)
        draws = sum(not r["won"] and not r["lost"] for r in rows)
        lo, hi = wilson(wins, n)
        out.update(wins=wins, draws=draws, losses=n - wins - draws, win_rate=wins / n if n else None,
                   win_rate_ci95=[lo, hi], score=(wins + 0.5 * draws) / n if n else None)
    else:
        mean, lo, hi = bootstrap_mean([r[score] for r in rows])
        out.update({score: mean, score + "_ci95": [lo, hi]})
    lat = [r for r in rows if "latency_ms_sum" in r]
    if lat:
        decisions = sum(r["decisions"] for r in rows)
        out["mean_decision_ms"] = sum(r["latency_ms_sum"] for r in lat) / max(1, decisions)
        out["p99_decision_ms_median_over_matches"] = float(np.median([r["latency_ms_p99"] for r in lat]))
    ticks = sum(r["ticks"] for r in rows)
    out["missed_tick_rate"] = sum(r["missed_ticks"] for r in rows) / ticks if ticks else None
    out["errors"] = sum(r["errors"] + r["invalid"] for r in rows)
    return out


def run_matches(jobs: list[tuple], workers: int, threads: int, progress: bool, desc: str) -> dict:
    """jobs: (key, game, spec, opponent, seeds, clock); returns {key: [match rows]}."""
    chunks = []
    for key, game, spec, opponent, seeds, clock in jobs:
        for i in range(0, len(seeds), 5):
            chunks.append((key, (game, spec, opponent, seeds[i:i + 5], clock, threads)))
    results: dict = {key: [] for key, *_ in jobs}
    total = sum(len(j[4]) for j in jobs)
    bar = tqdm(total=total, desc=desc, unit="match", disable=not progress, dynamic_ncols=True)
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            futures = [(key, pool.apply_async(_run_chunk, (job,))) for key, job in chunks]
            for key, fut in futures:
                rows = fut.get()
                results[key] += rows
                bar.update(len(rows))
    else:
        for key, job in chunks:
            rows = _run_chunk(job)
            results[key] += rows
            bar.update(len(rows))
    bar.close()
    for key in results:
        results[key].sort(key=lambda r: r["seed"])
    return results


# --- agreement --------------------------------------------------------------------------------------
def heldout_rows(game: str, data: list[str] | None, episodes: int, limit: int, seed: int) -> tuple[list, str]:
    """Held-out expert decisions with their observations: from dataset folders, or fresh."""
    rows, source = [], ""
    if data:
        for folder in data:
            if dataset.read_meta(folder)["game"] == game:
                rows += [r for r in dataset.read_split(folder, "heldout") if "obs" in r]
        source = "held-out split of " + ", ".join(data)
    if not rows:
        seen = set()
        for ep in range(episodes):
            ep_rows, _ = dataset.play_episode(game, ep, AGREEMENT_SEED + seed, 0.0, True)
            for r in ep_rows:
                key = (r["player"], r["tail"], r["action"])
                if key not in seen:
                    seen.add(key)
                    rows.append(r)
        source = f"{episodes} fresh expert episodes (dataset seed {AGREEMENT_SEED + seed}, never trained on)"
    if limit and len(rows) > limit:
        rows = random.Random(seed).sample(rows, limit)
    return rows, source


def agreement(model: str, precision: str, game: str, rows: list[dict], progress: bool) -> dict:
    players = {}
    hits, ms, chosen, dists = [], [], [], []
    per_action: dict[str, list[int]] = {}
    for r in tqdm(rows, desc=f"agreement {game} @{precision}", unit="dec", disable=not progress,
                  dynamic_ncols=True, leave=False):
        agent = players.get(r["player"])
        if agent is None:
            agent = players[r["player"]] = LLMAgent(model, precision, game=game)
            agent.reset(r["player"])
        action = agent.act(dataset.obs_from_json(r["obs"]), {})
        ok = int(action == r["action"])
        hits.append(ok)
        chosen.append(action)
        # the policy's distribution over the legal actions (constrained scoring's log-probs)
        names = sorted(agent.last_scores)
        logp = np.array([agent.last_scores[n] for n in names])
        prob = np.exp(logp - logp.max())
        dists.append(dict(zip(names, prob / prob.sum())))
        ms.append(agent.last_timing["total_ms"])
        per_action.setdefault(r["action_name"], []).append(ok)
    n, k = len(hits), sum(hits)
    lo, hi = wilson(k, n)
    recall = {a: sum(v) / len(v) for a, v in sorted(per_action.items())}
    return {"decisions": n, "agreement": k / n if n else None, "agreement_ci95": [lo, hi],
            "balanced_agreement": float(np.mean(list(recall.values()))) if recall else None,
            "per_expert_action": {a: {"n": len(per_action[a]), "agreement": recall[a]} for a in recall},
            "decision_ms_p50": float(np.percentile(ms, 50)) if ms else None,
            "decision_ms_p99": float(np.percentile(ms, 99)) if ms else None,
            "_chosen": chosen, "_dists": dists}


def compare_to_reference(a: dict, ref: dict) -> dict:
    """How far a precision's decisions move from the reference precision's on the same rows:
    the share of identical choices and the mean total-variation distance between the two
    policies' distributions over the legal actions (finer than agreement with the expert)."""
    same = [x == y for x, y in zip(a["_chosen"], ref["_chosen"])]
    tv = [tv_distance(p, q) for p, q in zip(a["_dists"], ref["_dists"])]
    k = int(sum(same))
    return {"same_action": k / len(same) if same else None, "same_action_ci95": list(wilson(k, len(same))),
            "mean_tv_distance": float(np.mean(tv)) if tv else None,
            "max_tv_distance": float(np.max(tv)) if tv else None}


# --- the whole evaluation -------------------------------------------------------------------------------
def check_precisions(model: str, precisions: list[str]) -> None:
    """Every precision must be one the engine runs: a clear error now, not after an hour."""
    resolve(model)
    for p in precisions:
        make_plan(p, [])


def machine() -> str:
    return device_name(torch.device("cpu"))


def gpu_name() -> str | None:
    """The card the LLM agents run on (they take CUDA when there is one), else None."""
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def evaluate(model: str, precisions: list[str], matches: int, clocks: list[str], game_names: list[str],
             opponents: dict | None = None, data: list[str] | None = None, agreement_episodes: int = 4,
             agreement_limit: int = 1500, realtime_matches: int | None = None, workers: int = 1,
             threads: int = 1, seed: int = 0, progress: bool = True, command: str = "") -> dict:
    check_precisions(model, precisions)
    playable = [g for g in games.names() if games.get(g).setups.expert is not None]
    for g in game_names:
        if g not in playable:
            raise UserError(f"unknown game {g!r}; choose from {', '.join(playable)}")
    for c in clocks:
        if c not in ("lockstep", "measured", "wall"):
            raise UserError(f"clock {c!r}: eval runs lockstep, measured or wall")
    opponents = opponents or {g: opponents_of(g) for g in game_names}
    t0 = time.perf_counter()
    report = {"model": model, "precisions": precisions, "matches": matches, "clocks": clocks,
              "cpu": machine(), "gpu": gpu_name(), "torch_threads_per_worker": threads, "workers": workers,
              "python": platform.python_version(), "command": command, "agreement": {}, "results": {},
              "baselines": {}}
    torch.set_num_threads(threads)
    for g in game_names:  # agreement first: it is quick and says at once whether the model plays
        rows, source = heldout_rows(g, data, agreement_episodes, agreement_limit, seed)
        report.setdefault("agreement_source", {})[g] = source
        for p in precisions:
            report["agreement"].setdefault(p, {})[g] = agreement(model, p, g, rows, progress)
        ref = report["agreement"][precisions[0]][g]
        for p in precisions[1:]:
            report["agreement"][p][g]["vs_" + precisions[0]] = compare_to_reference(report["agreement"][p][g], ref)
        for p in precisions:
            for key in ("_chosen", "_dists"):
                report["agreement"][p][g].pop(key)
    jobs = []
    if matches == 0:  # agreement only
        clocks = []
    for p in precisions:
        for clock in clocks:
            n = matches if clock == "lockstep" else (realtime_matches or matches)
            seeds = [seed + i for i in range(n)]
            for g in game_names:
                for opp in opponents[g]:
                    jobs.append(((p, clock, g, opp), g, f"llm:{model}@{p}", opp, seeds, clock))
    for g in game_names if matches else ():  # the baselines in the same seats and seeds (scripted: cheap)
        seeds = [seed + i for i in range(matches)]
        for base in games.get(g).setups.baselines:
            for opp in opponents[g]:
                jobs.append((("baseline", base, g, opp), g, base, opp, seeds, "lockstep"))
    results = run_matches(jobs, workers, threads, progress, f"eval {os.path.basename(model)}") if jobs else {}
    for key, rows in results.items():
        if key[0] == "baseline":
            _, base, g, opp = key
            report["baselines"].setdefault(g, {}).setdefault(base, {})[opp] = summarize(g, rows)
        else:
            p, clock, g, opp = key
            report["results"].setdefault(p, {}).setdefault(clock, {}).setdefault(g, {})[opp] = summarize(g, rows)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    return report


def format_report(rep: dict) -> str:
    def pct(x):
        return f"{100 * x:5.1f}%" if x is not None else "    -"

    def ms(s):  # lockstep charges no time, so it has no decision time to show
        return f"{s['mean_decision_ms']:.2f}" if "mean_decision_ms" in s else "-"

    lines = [f"{rep['model']}: {rep['cpu']}, {rep['workers']} worker(s) x {rep['torch_threads_per_worker']} thread(s)"]
    lines.append("")
    ref = rep["precisions"][0]
    lines.append(f"{'precision':<10} {'game':<8} {'agreement':>10} {'95% CI':>16} {'balanced':>9} "
                 f"{'same as ' + ref:>12} {'TV to ' + ref:>10} {'ms p50':>7} {'n':>6}")
    for p, per_game in rep["agreement"].items():
        for g, a in per_game.items():
            ci = a["agreement_ci95"]
            vs = a.get("vs_" + ref)
            lines.append(f"{p:<10} {g:<8} {pct(a['agreement']):>10} {pct(ci[0]) + '-' + pct(ci[1]).strip():>16} "
                         f"{pct(a['balanced_agreement']):>9} {pct(vs['same_action']) if vs else '-':>12} "
                         f"{format(vs['mean_tv_distance'], '10.2e') if vs else '-':>10} {a['decision_ms_p50'] or 0:7.2f} "
                         f"{a['decisions']:6d}")
    for p, per_clock in rep["results"].items():
        for clock, per_game in per_clock.items():
            for g, per_opp in per_game.items():
                lines.append("")
                score = games.get(g).setups.score
                if score == WIN_RATE:
                    lines.append(f"{g} @{p} {clock:<9} {'opponent':<20} {'W-D-L':>10} {'win rate':>9} "
                                 f"{'95% CI (Wilson)':>17} {'ms/dec':>7} {'missed':>7}")
                    for opp, s in per_opp.items():
                        ci = s["win_rate_ci95"]
                        lines.append(f"{'':<24}{opp:<20} {s['wins']:>4}-{s['draws']}-{s['losses']:<3} "
                                     f"{pct(s['win_rate']):>9} {pct(ci[0]) + '-' + pct(ci[1]).strip():>17} "
                                     f"{ms(s):>7} {pct(s['missed_tick_rate']):>7}")
                else:
                    label = score.replace("_", " ")
                    lines.append(f"{g} @{p} {clock:<10} {'opponent':<20} {label:>11} {'95% CI (bootstrap)':>20} "
                                 f"{'ms/dec':>7} {'missed':>7}")
                    for opp, s in per_opp.items():
                        ci = s[score + "_ci95"]
                        lines.append(f"{'':<24}{opp:<20} {100 * s[score]:+10.3f}% "
                                     f"{100 * ci[0]:+9.3f}%..{100 * ci[1]:+.3f}% "
                                     f"{ms(s):>7} {pct(s['missed_tick_rate']):>7}")
    for g, per_base in rep["baselines"].items():
        for base, per_opp in per_base.items():
            lines.append("")
            lines.append(f"baseline {base} (lockstep, same seats and seeds)")
            score = games.get(g).setups.score
            for opp, s in per_opp.items():
                if score == WIN_RATE:
                    ci = s["win_rate_ci95"]
                    lines.append(f"  {opp:<22} win rate {pct(s['win_rate'])} ({pct(ci[0])}-{pct(ci[1]).strip()})")
                else:
                    ci = s[score + "_ci95"]
                    lines.append(f"  {opp:<22} {score.replace('_', ' ')} {100 * s[score]:+.3f}% "
                                 f"({100 * ci[0]:+.3f}%..{100 * ci[1]:+.3f}%)")
    return "\n".join(lines)
