"""Show the exact prompt an LLM agent builds for one observation of a game, and what it
chooses: the log-probability of every legal action (constrained mode) or the generated text
and its parse (free mode), with the decision's timing. The observation is the one after
--ticks random steps of a game started with --seed. The part of the prompt kept in the KV
cache across decisions is printed first, then the part prefilled at each decision."""
from __future__ import annotations

import numpy as np

from .. import games
from ..errors import UserError
from . import _validate as valid

HELP = "show the LLM agent's prompt and chosen action for one game observation"


def add_arguments(p):
    p.add_argument("model", help="model name (see `fpx-arena models`), HF folder or .gguf file")
    p.add_argument("--game", default=None, help="game name (default: the first of `fpx-arena games`)")
    p.add_argument("--precision", default="bf16", help="fp32, bf16, fp8, fp4, nvfp4, mxfp4, fpx:<gamma> or a plan file (default bf16)")
    p.add_argument("--mode", default="constrained", choices=["constrained", "free"])
    p.add_argument("--max-tokens", type=valid.integer(1, 4096), default=8, help="free mode: most tokens generated (default 8)")
    p.add_argument("--seed", type=valid.seed, default=0, help="game seed (default 0)")
    p.add_argument("--ticks", type=valid.integer(0, 1_000_000), default=0, help="random steps before the observation (default 0)")
    p.add_argument("--agent", default=None, help="player id (default: the game's first)")
    p.add_argument("--device", type=valid.device, default=None, help="cpu or cuda (default: cuda if available)")


def run(args) -> int:
    from ..agents.llm import LLMAgent  # the engine: torch

    args.game = args.game or games.names()[0]
    env = games.make(args.game)
    obs, infos = env.reset(seed=args.seed)
    agent_id = args.agent or env.possible_agents[0]
    if agent_id not in env.possible_agents:
        raise UserError(f"game {args.game!r} has no player {agent_id!r}; players: {', '.join(env.possible_agents)}")
    rng = np.random.default_rng(args.seed)
    for _ in range(args.ticks):
        actions = {}
        for a in env.agents:
            mask = obs[a].get("action_mask") if isinstance(obs[a], dict) else None
            legal = np.flatnonzero(mask) if mask is not None else np.arange(env.action_space(a).n)
            actions[a] = int(rng.choice(legal))
        obs, _, _, _, infos = env.step(actions)
        if not env.agents:
            raise UserError(f"the game ended within {args.ticks} ticks; use fewer")
    llm = LLMAgent(args.model, args.precision, mode=args.mode, max_tokens=args.max_tokens, device=args.device)
    llm.attach_env(env)
    llm.reset(agent_id, env.observation_space(agent_id), env.action_space(agent_id), args.seed)
    action = llm.act(obs[agent_id], infos.get(agent_id, {}))
    p = llm.last_prompt
    rule = "-" * 72
    print(f"{rule}\ncached prefix ({len(p.prefix_ids)} tokens)\n{rule}\n{p.prefix_text}")
    print(f"{rule}\nper-decision tail ({len(p.tail_ids)} tokens)\n{rule}\n{p.tail_text}\n{rule}")
    if args.mode == "constrained":
        print("log-probability of each legal reply:")
        for name, score in sorted(llm.last_scores.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<12} {score:9.3f}")
    else:
        print(f"generated ({args.max_tokens} tokens at most): {llm.last_reply!r}")
    chosen = p.action_names[action] if action is not None else None
    print(f"chosen action: {chosen if chosen is not None else 'none (unparseable: the late policy applies)'}"
          + (f" ({action})" if action is not None else ""))
    t = llm.last_timing
    print(f"timing: prefill {t['prefill_ms']:.1f} ms, decode {t['decode_ms']:.1f} ms, total {t['total_ms']:.1f} ms "
          f"on {llm.model.device} at {args.precision}")
    return 0
