"""Scheduler overhead per tick and wall-clock tick jitter, on this CPU.

Overhead: the same matches (same seeds, same agents) played by `run_match` under the lockstep
and profile clocks and by a plain PettingZoo loop that calls the same agents, interleaved, the
fastest of several runs each in process CPU time; the difference per tick is what the scheduler costs (target:
at most 10% of the plain loop's env+bots time). Jitter: under the wall clock at 60 Hz, each tick's start
minus its scheduled time (p50, p99), with scripted agents thinking in their threads.

    python bench/scheduler.py [--ticks 20000] [--wall-seconds 20]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parent.parent))  # last: never shadow installed packages

from fpx_arena import agents as registry  # noqa: E402
from fpx_arena import games, run_match  # noqa: E402
from fpx_arena.clocks import agent_seed  # noqa: E402
from machine import cpu_name  # noqa: E402

AGENTS = {"fighter": ["fighter/reactive", "fighter/aggressive"], "market": ["market/informed", "random"]}


def plain_loop(env, agents, seed, max_ticks):
    observations, infos = env.reset(seed=seed)
    for i, a in enumerate(env.possible_agents):  # the seeds run_match gives: the same match
        agents[a].reset(a, env.observation_space(a), env.action_space(a), agent_seed(seed, i))
    ticks = 0
    while env.agents and ticks < max_ticks:
        actions = {a: agents[a].act(observations[a], infos[a]) for a in env.agents}
        observations, _, _, _, infos = env.step(actions)
        ticks += 1
    return ticks


def overhead(game, max_ticks, repeats=40):
    """Per-tick CPU time of the plain loop and of run_match under lockstep and profile (0 ms),
    the three interleaved and each the fastest of `repeats` runs, the garbage collector paused
    while one runs (as timeit does). All three run on one thread (scripted bots are called
    inline), so the process's CPU time is their work, and the minimum is the run least
    disturbed by whatever else shares the machine."""
    env = games.make(game)
    specs = dict(zip(env.possible_agents, AGENTS[game] * len(env.possible_agents)))
    agents = {a: registry.make(s) for a, s in specs.items()}
    variants = {
        "plain_loop": lambda: plain_loop(env, agents, 1, max_ticks),
        "lockstep": lambda: run_match(env, agents, clock="lockstep", seed=1, max_ticks=max_ticks).ticks,
        "profile": lambda: run_match(env, agents, clock="profile", seed=1, max_ticks=max_ticks,
                                     latency={a: 0.0 for a in agents}).ticks,
    }
    times = {k: [] for k in variants}
    ticks = {name: fn() for name, fn in variants.items()}  # warm-up, and proof they play one match
    assert len(set(ticks.values())) == 1, f"the variants played different matches: {ticks}"
    for _ in range(repeats):
        for name, fn in variants.items():
            gc.collect()
            gc.disable()
            try:
                t = time.process_time()
                n = fn()
                times[name].append((time.process_time() - t) / n)
            finally:
                gc.enable()
    plain = min(times["plain_loop"])
    out = {"agents": specs, "repeats": repeats, "timer": "process CPU time, fastest of the repeats, gc paused",
           "plain_loop_us_per_tick": plain * 1e6}
    for clock in ("lockstep", "profile"):
        t = min(times[clock])
        out[f"{clock}_us_per_tick"] = t * 1e6
        out[f"{clock}_overhead_us_per_tick"] = (t - plain) * 1e6
        out[f"{clock}_overhead_fraction_of_step"] = (t - plain) / plain
    out["ticks_per_match"] = ticks["plain_loop"]
    return out


def jitter(game, seconds, tick_hz=60.0):
    env = games.make(game)
    specs = dict(zip(env.possible_agents, AGENTS[game] * len(env.possible_agents)))
    agents = {a: registry.make(s) for a, s in specs.items()}
    ticks = int(seconds * tick_hz)
    offsets = []
    seed = 0
    while len(offsets) < ticks:
        r = run_match(env, agents, clock="wall", tick_hz=tick_hz, seed=seed, max_ticks=ticks - len(offsets))
        dt = 1.0 / r.tick_hz
        offsets += [o - i * dt for i, o in enumerate(r.trace.tick_offsets_s)]
        seed += 1
    lateness_ms = np.array(offsets) * 1000.0
    return {"tick_hz": tick_hz, "ticks": len(lateness_ms), "agents": specs,
            "jitter_p50_ms": float(np.percentile(lateness_ms, 50)),
            "jitter_p99_ms": float(np.percentile(lateness_ms, 99)),
            "jitter_max_ms": float(lateness_ms.max())}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ticks", type=int, default=20000)
    p.add_argument("--wall-seconds", type=float, default=20.0)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "scheduler-cpu.json"))
    args = p.parse_args()
    results = {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
               "command": "python " + " ".join(sys.argv), "loadavg_start": os.getloadavg(),
               "overhead": {}, "wall_jitter": {}}
    for game in AGENTS:
        results["overhead"][game] = overhead(game, args.ticks)
        results["wall_jitter"][game] = jitter(game, args.wall_seconds)
    results["loadavg_end"] = os.getloadavg()  # other work on the machine: jitter suffers first
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"{'game':<8} {'plain us/tick':>14} {'lockstep +us':>13} {'profile +us':>12} {'+% of step':>10} "
          f"{'jitter p50 ms':>14} {'p99 ms':>8}")
    for game in AGENTS:
        o, j = results["overhead"][game], results["wall_jitter"][game]
        print(f"{game:<8} {o['plain_loop_us_per_tick']:14.1f} {o['lockstep_overhead_us_per_tick']:13.1f} "
              f"{o['profile_overhead_us_per_tick']:12.1f} {100 * o['lockstep_overhead_fraction_of_step']:9.1f}% "
              f"{j['jitter_p50_ms']:14.3f} {j['jitter_p99_ms']:8.3f}")


if __name__ == "__main__":
    main()
