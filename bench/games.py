"""Env steps per second of each game, headless, on one CPU core.

Actions are drawn up front (uniform over the action space; one that the current mask
forbids is replaced by action 0, a dictionary lookup), so the timed loop is env.step alone.
Each game runs `--repeats` timed runs of `--steps` steps (resetting when a match ends, which
is counted in); the median is reported. Also the cost of one scripted bot's act().

    python bench/games.py [--steps 100000] [--repeats 5] [--out bench/results/games-cpu.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parent.parent))  # last: never shadow installed packages

from fpx_arena import agents as registry  # noqa: E402
from fpx_arena import games  # noqa: E402
from machine import cpu_name  # noqa: E402

CASES = {
    "fighter": ({}, "fighter/reactive"),
    "market": ({"n_agents": 2}, "market/informed"),
    "market-8": ({"n_agents": 8}, "market/informed"),
}
TARGET = {"fighter": 20000}


def steps_per_second(name: str, kwargs: dict, steps: int, seed: int) -> float:
    env = games.make(name.split("-")[0], **kwargs)
    obs, _ = env.reset(seed=seed)
    ids = env.possible_agents
    n = env.action_space(ids[0]).n
    drawn = np.random.default_rng(seed).integers(0, n, size=(steps, len(ids))).tolist()
    start = time.perf_counter()
    for row in drawn:
        actions = {}
        for a, act in zip(ids, row):
            actions[a] = act if obs[a]["action_mask"][act] else 0
        obs, _, _, _, _ = env.step(actions)
        if not env.agents:
            obs, _ = env.reset()
    return steps / (time.perf_counter() - start)


def act_microseconds(name: str, kwargs: dict, spec: str, calls: int = 20000) -> float:
    env = games.make(name.split("-")[0], **kwargs)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(64):     # a spread of real observations
        samples.append(obs[env.possible_agents[0]])
        obs, *_ = env.step({a: int(rng.choice(np.flatnonzero(obs[a]["action_mask"]))) for a in env.agents})
        if not env.agents:
            obs, _ = env.reset()
    bot = registry.make(spec)
    bot.reset(env.possible_agents[0], env.observation_space(env.possible_agents[0]),
              env.action_space(env.possible_agents[0]), 0)
    start = time.perf_counter()
    for k in range(calls):
        bot.act(samples[k & 63], {})
    return (time.perf_counter() - start) / calls * 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "games-cpu.json"))
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})   # one core
    results = {}
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    for name, (kwargs, spec) in CASES.items():
        runs = [steps_per_second(name, kwargs, args.steps, seed) for seed in range(args.repeats)]
        results[name] = {"env_kwargs": kwargs, "steps_per_s_median": float(np.median(runs)),
                         "steps_per_s_best": float(max(runs)),
                         "steps_per_s_runs": [round(r, 1) for r in runs],
                         "bot": spec, "bot_act_us_median": float(np.median(
                             [act_microseconds(name, kwargs, spec) for _ in range(3)]))}
        if name in TARGET:
            results[name]["target_steps_per_s"] = TARGET[name]
            results[name]["meets_target"] = results[name]["steps_per_s_median"] >= TARGET[name]
        print(f"{name:10s} {results[name]['steps_per_s_median']:10.0f} steps/s   "
              f"{spec} act {results[name]['bot_act_us_median']:.1f} us")
    out = {"benchmark": "game env steps per second, headless, one core",
           "cpu": cpu_name(), "cores_used": 1, "python": platform.python_version(),
           "numpy": np.__version__, "command": " ".join([Path(sys.executable).name] + sys.argv),
           "steps": args.steps, "repeats": args.repeats,
           # other work on the machine slows these numbers down: the 1-minute load average
           "load_average_1m": [load_start, os.getloadavg()[0] if hasattr(os, "getloadavg") else None],
           "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
