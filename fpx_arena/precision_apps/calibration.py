"""Calibration text made of play: the prompts the LLM agent builds (``agents.llm.PromptBuilder``,
the model's own chat template) while each game's calibration match (``Setups.calibration``:
scripted bots) runs for a few hundred ticks -- the text a model will actually see.

The engine ships the conversations of seed 0 (``fpx_arena/llm/data/calibration-games-v1.json``)
as its default calibration text, so calibrating never plays a game; ``write_default_text``
regenerates that file and a test checks that it still equals what the games produce today.
"""
from __future__ import annotations

import json

from .. import agents, games
from ..agents.llm import PromptBuilder
from ..llm import calibrate


def calibration_games() -> list:
    """The games that have a calibration match, in name order."""
    return [g for g in (games.get(n) for n in games.names()) if g.setups.calibration]


def game_observations(seed: int, ticks: int = 300, per_game: int = 4):
    """[(Game, player id, observation, info)] sampled evenly from each game's calibration match
    with this seed: per_game observations per game, alternating players."""
    out = []
    for game in calibration_games():
        env = game.make(**game.setups.env)
        obs, infos = env.reset(seed=seed)
        players = {a: agents.make(game.setups.calibration[a]) for a in env.possible_agents}
        for a, p in players.items():
            if hasattr(p, "attach_env"):
                p.attach_env(env)
            p.reset(a, env.observation_space(a), env.action_space(a), seed)
        stride = max(1, ticks // per_game)
        taken = 0
        for t in range(ticks):
            if not env.agents:
                break
            if t % stride == stride - 1 and taken < per_game:
                who = env.possible_agents[taken % len(env.possible_agents)]
                if who in obs:
                    out.append((game, who, obs[who], infos.get(who, {})))
                    taken += 1
            actions = {}
            for a in env.agents:
                act = players[a].act(obs[a], infos.get(a, {}))
                actions[a] = 0 if act is None else int(act)
            obs, _, _, _, infos = env.step(actions)
    return out


class _Messages:
    """A tokenizer stand-in that renders chat messages as text marked by role, so a
    PromptBuilder hands back the system and user messages of each prompt."""
    bos_token = None
    end_of_turn_id = None

    def render_chat(self, messages, add_generation_prompt=True):
        return "".join(f"\0{m['role']}\0{m['content']}" for m in messages)

    def encode(self, text, bos=False):
        return []


def game_conversations(seeds=(0,), ticks: int = 300, per_game: int = 4) -> list[list[dict]]:
    """The chat messages ([system, user]) of the LLM agent's prompts on scripted play."""
    builders, out = {}, []
    for seed in seeds:
        for game, who, obs, info in game_observations(seed, ticks, per_game):
            key = (game.name, who)
            if key not in builders:
                builders[key] = PromptBuilder(game, _Messages(), who)
            b = builders[key]
            user = b.build(obs, info).tail_text
            out.append([{"role": "system", "content": b.system_prompt}, {"role": "user", "content": user}])
    return out


def game_prompts(tokenizer, seeds=(0,), ticks: int = 300, per_game: int = 4) -> list[str]:
    """Full prompt texts (system prefix + state), in the model's chat template."""
    return [calibrate.render_conversation(tokenizer, c) for c in game_conversations(seeds, ticks, per_game)]


def write_default_text(path: str = calibrate.DEFAULT_TEXT_PATH) -> int:
    """Write the engine's default calibration text (seed 0, as ``calibrate.DEFAULT_DATA`` names
    it); returns the number of conversations."""
    conversations = game_conversations((0,))
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"data": calibrate.DEFAULT_DATA, "made_by": "fpx_arena.precision_apps.calibration",
                   "conversations": conversations}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return len(conversations)
