"""Replay files: a match re-simulated exactly from its seed and the actions the world applied.

A replay is gzip-compressed JSON:
    {"format": "fpx-arena-replay", "version": 1, "game": "fighter", "env_kwargs": {...},
     "seed": 7, "clock": "profile", "tick_hz": 60, "late": "noop", "agents": ["p0", "p1"],
     "specs": {"p0": "fighter/reactive", ...}, "actions": [[a_p0, a_p1], ...], "late_mask": [...],
     "decisions": [[agent, start, land, latency_ms, status], ...], "result": {...},
     "final_digest": "..."}
Re-simulation needs only game, env_kwargs, seed and actions; the rest is for viewers and reports.
"""
from __future__ import annotations

import gzip
import importlib
import json
from pathlib import Path

import numpy as np

from .errors import ReplayError

FORMAT = "fpx-arena-replay"
VERSION = 1
_REQUIRED = ("game", "seed", "agents", "actions", "tick_hz")


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"cannot store {type(x).__name__} in a replay")


def save(path, result, *, env_kwargs=None, env=None) -> Path:
    """Write the replay of a MatchResult (from run_match). The game is rebuilt on load from
    its registered name, or from the env's module (`module:parallel_env`) for other envs."""
    game = result.game
    from .games import GAMES

    if game not in GAMES and env is not None:
        module = type(getattr(env, "unwrapped", env)).__module__
        game = f"{module}:parallel_env"
    trace = result.trace
    data = {
        "format": FORMAT, "version": VERSION, "game": game, "env_kwargs": env_kwargs or {},
        "seed": result.seed, "clock": result.clock, "tick_hz": result.tick_hz, "late": result.late,
        "agents": trace.agents, "specs": {a: s.spec for a, s in result.stats.items()},
        "actions": trace.actions, "late_mask": trace.late, "arrival": trace.arrival,
        "decisions": [list(d[:5]) for d in trace.decisions],
        "timings": [d[5] for d in trace.decisions],
        "result": result.to_dict(), "final_digest": result.final_digest,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        json.dump(data, f, default=_plain, separators=(",", ":"))
    tmp.replace(path)  # never leave a half-written replay under the real name
    return path


def load(path) -> dict:
    """The replay's data, validated; ReplayError (one line) for anything malformed."""
    path = Path(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ReplayError(f"replay file not found: {path}") from None
    except (OSError, EOFError) as e:
        raise ReplayError(f"{path}: not a replay file (gzip: {e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReplayError(f"{path}: replay is corrupt ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ReplayError(f"{path}: not an fpx-arena replay")
    if data.get("version") != VERSION:
        raise ReplayError(f"{path}: replay version {data.get('version')!r} is not supported (this is {VERSION})")
    for key in _REQUIRED:
        if key not in data:
            raise ReplayError(f"{path}: replay lacks {key!r}")
    n = len(data["agents"])
    for t, row in enumerate(data["actions"]):
        if not isinstance(row, list) or len(row) != n:
            raise ReplayError(f"{path}: tick {t}: expected {n} actions, got {row!r}")
    return data


def make_env(data: dict):
    """A fresh env of the replay's game with its recorded settings."""
    from .games import GAMES, make

    game, kwargs = data["game"], data.get("env_kwargs") or {}
    try:
        if game in GAMES:
            return make(game, **kwargs)
        module_name, _, attr = game.partition(":")
        return getattr(importlib.import_module(module_name), attr or "parallel_env")(**kwargs)
    except ReplayError:
        raise
    except Exception as e:
        raise ReplayError(f"cannot rebuild game {game!r} of this replay: {e}") from None


def frames(data: dict):
    """Re-simulate, yielding (tick, env, applied actions) before each step and once after the
    last (actions None): what a viewer walks through."""
    env = make_env(data)
    env.reset(seed=data["seed"])
    agents = data["agents"]
    arrival = data.get("arrival") or []
    set_order = getattr(env, "set_arrival_order", None)
    if arrival and (set_order is None or len(arrival) != len(data["actions"])):
        raise ReplayError(f"replay carries {len(arrival)} arrival orders for {len(data['actions'])} ticks "
                          "of a game that " + ("takes none" if set_order is None else "needs one per tick"))
    for t, row in enumerate(data["actions"]):
        actions = {a: act for a, act in zip(agents, row) if act is not None and a in env.agents}
        yield t, env, actions
        if not env.agents:
            raise ReplayError(f"the game ended at tick {t} but the replay goes on to tick {len(data['actions'])}: "
                              "was it recorded with other game settings (env_kwargs)?")
        if arrival:
            try:
                set_order([agents[i] for i in arrival[t]])
            except (IndexError, TypeError):
                raise ReplayError(f"tick {t}: malformed arrival order {arrival[t]!r}") from None
        env.step(actions)
    yield len(data["actions"]), env, None


def resimulate(path_or_data) -> dict:
    """Play the recorded actions again; returns {"ticks", "final_digest", "matches"}. ReplayError
    where the replay does not reproduce its recorded final state."""
    data = path_or_data if isinstance(path_or_data, dict) else load(path_or_data)
    env = None
    ticks = 0
    for ticks, env, _ in frames(data):
        pass
    digest = env.state_digest() if hasattr(env, "state_digest") else None
    matches = digest == data.get("final_digest")
    if data.get("final_digest") is not None and not matches:
        raise ReplayError(f"replay does not reproduce its final state after {ticks} ticks "
                          f"(recorded {data['final_digest']}, got {digest}): a different game version?")
    return {"ticks": ticks, "final_digest": digest, "matches": matches}
