"""List the installed games with their players, tick rate, actions and scripted bots."""
from __future__ import annotations

from .. import games

HELP = "list installed games"


def add_arguments(p):
    pass


def run(args) -> int:
    for name in games.names():
        try:
            game = games.get(name)
            env = game.make()
            meta = env.metadata
            hz = meta.get("tick_hz") or meta.get("render_fps")
            first = env.possible_agents[0]
            actions = ", ".join(game.action_names(first)) or "?"
            bots = f"; bots: {', '.join(game.bot_specs())}" if game.bots else ""
            print(f"{name:<10} players {', '.join(env.possible_agents)}; {hz} Hz; actions: {actions}{bots}")
        except Exception as e:  # a broken third-party game must not hide the others
            print(f"{name:<10} (cannot be loaded: {type(e).__name__}: {e})")
    return 0
