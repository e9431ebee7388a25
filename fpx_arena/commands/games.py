"""List the installed games with their players, tick rate and actions."""
from __future__ import annotations

HELP = "list installed games"


def add_arguments(p):
    pass


def run(args) -> int:
    from .. import games

    for name in games.names():
        try:
            mod = games.module(name)
            env = mod.parallel_env()
            meta = env.metadata
            hz = meta.get("tick_hz") or meta.get("render_fps")
            first = env.possible_agents[0]
            actions = ", ".join(mod.action_names(first)) if hasattr(mod, "action_names") else "?"
            print(f"{name:<10} players {', '.join(env.possible_agents)}; {hz} Hz; actions: {actions}")
        except Exception as e:  # a broken third-party game must not hide the others
            print(f"{name:<10} (cannot be loaded: {type(e).__name__}: {e})")
    return 0
