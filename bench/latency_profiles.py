"""Measure the latency profiles the default tournament's `profile` clock draws from.

Each agent of the default tournament plays real matches of each game against that game's
yardstick under the `measured` clock (one process, torch threads=1, as a tournament worker
runs them). The samples are each decision's thread CPU time (time.thread_time around act()):
the decision's latency on an idle core, which a busy shared machine does not inflate (its wall
time is kept beside, in the summary, with the load). The profile file of a game
(`fpx_arena/data/latency-<device>-<game>.json`) records the samples per agent spec, the
device, the torch thread count, the machine's load before and after, the commit and the exact
command.

    python bench/latency_profiles.py [--matches 2] [--samples 400] [--device-tag cpu]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parent.parent))  # last: never shadow installed packages

from bench.machine import cpu_name  # noqa: E402
from fpx_arena import agents, games, run_match  # noqa: E402
from fpx_arena.agents.context import accepts_context  # noqa: E402
from fpx_arena.latency import FORMAT  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# the LLM agents run with one torch thread (their default on a CPU; set below for older trees)
SPECS = ["llm:arena-tiny@bf16", "llm:arena-tiny@fp8", "llm:arena-tiny@fpx:0.3", "llm:arena-tiny@fp4",
         "llm:arena-small@bf16", "llm:arena-small@fp8", "llm:arena-small@fp4", "llm:smollm2-135m@bf16"]
# game -> (tick_hz, env kwargs, yardstick the agent plays against while it is timed, the scripted
# bots of the default tournament, timed the same way)
GAMES = {"fighter": (60, {"round_ticks": 1200}, "fighter/reactive", ["fighter/weak", "fighter/reactive", "random"]),
         "market": (20, {"day_ticks": 400}, "market/informed", ["market/informed", "market/noise"])}


class CpuTimed:
    """An agent that records the thread CPU time of each of the wrapped agent's decisions."""

    def __init__(self, agent):
        self.agent, self.cpu_ms = agent, []
        self.context = accepts_context(agent)

    def __getattr__(self, name):
        return getattr(self.agent, name)

    def reset(self, *args, **kwargs):
        return self.agent.reset(*args, **kwargs)

    def act(self, observation, info=None, **kwargs):
        start = time.thread_time()
        action = self.agent.act(observation, info, **kwargs) if self.context else self.agent.act(observation, info)
        self.cpu_ms.append((time.thread_time() - start) * 1000.0)
        return action


def measure(spec: str, game: str, matches: int) -> tuple[list[float], list[float], float]:
    tick_hz, env_kwargs, opponent, _ = GAMES[game]
    agent, other = CpuTimed(agents.make(spec)), agents.make(opponent)
    samples, started = [], time.perf_counter()
    for seed in range(matches):
        env = games.make(game, **env_kwargs)
        first, second = env.possible_agents
        seats = {first: agent, second: other} if seed % 2 == 0 else {first: other, second: agent}
        seat = first if seed % 2 == 0 else second
        result = run_match(env, seats, tick_hz=tick_hz, clock="measured", seed=1000 + seed, game=game,
                           env_kwargs=env_kwargs)
        samples += result.stats[seat].latencies_ms
    return agent.cpu_ms, samples, time.perf_counter() - started


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--matches", type=int, default=2, help="matches per agent and game")
    p.add_argument("--samples", type=int, default=400, help="samples kept per agent (evenly spaced)")
    p.add_argument("--device-tag", default="cpu", help="file name tag of the device")
    p.add_argument("--specs", nargs="*", default=SPECS)
    p.add_argument("--games", nargs="*", default=list(GAMES))
    p.add_argument("--no-bots", dest="bots", action="store_false", help="skip the scripted bots")
    p.add_argument("--out-dir", default=str(ROOT / "fpx_arena" / "data"))
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    # the source measured: git HEAD, or FPX_SOURCE_COMMIT for an exported tree
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or os.environ.get("FPX_SOURCE_COMMIT", "unknown")
    device = f"{cpu_name()} ({os.cpu_count()} cores), torch threads 1"
    for game in args.games:
        load_before = os.getloadavg()
        profiles, notes = [], {}
        for spec in args.specs + (GAMES[game][3] if args.bots else []):
            cpu, wall, elapsed = measure(spec, game, args.matches)
            arr, wall = np.asarray(cpu, dtype=float), np.asarray(wall, dtype=float)
            keep = arr[np.linspace(0, len(arr) - 1, min(args.samples, len(arr))).round().astype(int)]
            profiles.append({"agent": spec, "device": device,
                             "samples_ms": [round(float(x), 3) for x in keep]})
            notes[spec] = {"decisions": len(arr), "median_ms": round(float(np.median(arr)), 3),
                           "p90_ms": round(float(np.percentile(arr, 90)), 3),
                           "wall_median_ms": round(float(np.median(wall)), 3),
                           "wall_p90_ms": round(float(np.percentile(wall, 90)), 3),
                           "match_s": round(elapsed / args.matches, 2)}
            print(f"{game} {spec}: {notes[spec]}", flush=True)
        doc = {"format": FORMAT, "version": 1, "game": game, "device": device,
               "command": command, "commit": commit, "torch": torch.__version__, "python": platform.python_version(),
               "torch_threads": 1, "clock": "measured",
               "timer": "thread CPU time of act() (time.thread_time): the latency on an idle core", "tick_hz": GAMES[game][0], "env": GAMES[game][1],
               "opponent": GAMES[game][2], "matches_per_agent": args.matches,
               "loadavg_before": [round(x, 2) for x in load_before],
               "loadavg_after": [round(x, 2) for x in os.getloadavg()],
               "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "summary": notes, "profiles": profiles}
        out = Path(args.out_dir) / f"latency-{args.device_tag}-{game}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
