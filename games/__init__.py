"""Real-time PettingZoo games. ``make(name, **kw)`` returns a ParallelEnv.

Each game module has ``parallel_env(**kw)``, ``env(**kw)`` (AEC), ``metadata``,
``describe(observation, agent) -> str`` and ``action_names(agent) -> list[str]``.
Third-party games register under the entry-point group ``fpx_arena.games``.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from ..errors import SpecError

GAMES = {
    "fighter": "fpx_arena.games.fighter",
    "market": "fpx_arena.games.market",
}


def names() -> list[str]:
    return sorted(set(GAMES) | {ep.name for ep in entry_points(group="fpx_arena.games")})


def module(name: str):
    """The module that implements game `name` (describe, action_names, parallel_env, ...)."""
    if name in GAMES:
        return importlib.import_module(GAMES[name])
    for ep in entry_points(group="fpx_arena.games"):
        if ep.name == name:
            return ep.load()
    raise SpecError(f"unknown game {name!r}; installed: {', '.join(names())}")


def make(name: str, **kwargs):
    """A fresh ParallelEnv of game `name`; keyword arguments go to its parallel_env()."""
    mod = module(name)
    try:
        return mod.parallel_env(**kwargs)
    except TypeError as e:
        raise SpecError(f"game {name!r}: {e}") from None


def module_for(env):
    """The game module behind an env instance (for describe/action_names), or None for an env
    that is not one of ours and names no such functions."""
    env = getattr(env, "unwrapped", env)
    mod = importlib.import_module(type(env).__module__)
    return mod if hasattr(mod, "describe") and hasattr(mod, "action_names") else None


__all__ = ["make", "names", "module", "module_for", "GAMES"]
