"""Replay files: a match re-simulated exactly from its seed and the actions the world applied.

A replay is gzip-compressed JSON:
    {"format": "fpx-arena-replay", "version": 2, "game": "fighter", "env_kwargs": {...},
     "seed": 7, "clock": "profile", "tick_hz": 60, "late": "noop", "agents": ["p0", "p1"],
     "specs": {"p0": "fighter/reactive", ...}, "actions": [[a_p0, a_p1], ...], "late_mask": [...],
     "arrival": [...], "decisions": [[agent, start, land, latency_ms, status], ...],
     "result": {...}, "final_digest": "...",
     "check": {"every": 30, "digests": [[0, "..."], [30, "..."], ...], "stream": "<sha256>"}}

Replays are files people share, so a replay is data and nothing else: its game is a name that
must be registered (built in, or an installed ``fpx_arena.games`` entry point), checked before
anything is imported or called. ``load`` verifies a replay before anyone sees it:

- ``stream``: sha256 over every other field (canonical JSON): any edited action, seed, setting
  or game label is caught, even one the game ignores (a button pressed during hit-stun).
- ``digests``: the game's state digest after reset and every ``every`` ticks, and
  ``final_digest``: the re-simulation must pass through the same states (a file re-hashed by
  hand after an edit still fails here, at the first checkpoint after the edit).
- ``result``: the winner, tick count and each player's reward must be what the re-simulation
  gives.

Version 1 files (no checksums) are refused in one line naming their version. The checksum is
not a signature: whoever re-simulates an edited match can write a consistent file, which is
then simply the replay of another match.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
import zlib
from pathlib import Path

import numpy as np

from . import games
from .errors import ReplayError

FORMAT = "fpx-arena-replay"
VERSION = 2
DIGEST_EVERY = 30  # ticks between state digests: half a second of a 60 Hz game
MAX_BYTES = 1 << 28  # decompressed: far above any real match (a few MB), below what would exhaust memory
_REQUIRED = ("game", "seed", "agents", "actions", "tick_hz", "final_digest", "result", "check")


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"cannot store {type(x).__name__} in a replay")


def _stream_hash(data: dict) -> str:
    body = {k: v for k, v in data.items() if k != "check"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()


def _winner(env, rewards: dict):
    """The match winner as the scheduler decides it: the game's own outcome, else the single
    reward leader."""
    outcome = env.match_outcome() if hasattr(env, "match_outcome") else {}
    if isinstance(outcome, dict) and "winner" in outcome:
        return outcome["winner"]
    if not rewards:
        return None
    best = max(rewards.values())
    leaders = [a for a, r in rewards.items() if r == best]
    return leaders[0] if len(leaders) == 1 else None


def save(path, result, *, env_kwargs=None, env=None) -> Path:
    """Write the replay of a MatchResult (from run_match), after re-simulating it once to take
    its state digests. ReplayError (one line) for a game that is not registered, one that does
    not re-simulate from its seed and actions, or a file that cannot be written."""
    game = result.game
    if game not in games.names():
        raise ReplayError(f"cannot record a replay of game {game!r}: replays name a registered game only "
                          f"(installed: {', '.join(games.names())}; third-party games register under the "
                          f"entry-point group {games.ENTRY_POINT_GROUP!r})")
    trace = result.trace
    data = {
        "format": FORMAT, "version": VERSION, "game": game, "env_kwargs": env_kwargs or {},
        "seed": result.seed, "clock": result.clock, "tick_hz": result.tick_hz, "late": result.late,
        "agents": trace.agents, "specs": {a: s.spec for a, s in result.stats.items()},
        "actions": list(trace.actions), "late_mask": trace.late, "arrival": trace.arrival,
        "decisions": [list(d[:5]) for d in trace.decisions],
        "timings": [d[5] for d in trace.decisions],
        "result": result.to_dict(), "final_digest": result.final_digest,
    }
    # through JSON once, so the hash is taken over exactly what a reader will see
    data = json.loads(json.dumps(data, default=_plain))
    if not isinstance(data["final_digest"], str):
        raise ReplayError(f"cannot record a replay of game {game!r}: its env has no state_digest(), "
                          "so a replay of it could not be verified")
    digests = []
    for tick, sim, _ in frames(data):
        if tick % DIGEST_EVERY == 0 or tick == len(data["actions"]):
            digests.append([tick, sim.state_digest()])
    if digests[-1][1] != data["final_digest"]:
        raise ReplayError(f"cannot record a replay of game {game!r}: re-simulating the match from its seed and "
                          "actions ends in another state (the game is not deterministic, or env_kwargs differ)")
    data["check"] = {"every": DIGEST_EVERY, "digests": digests, "stream": _stream_hash(data)}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(tmp, "wt", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        tmp.replace(path)  # never leave a half-written replay under the real name
    except OSError as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise ReplayError(f"cannot write replay {path}: {e.strerror or e}") from None
    return path


def load(path, *, verify: bool = True) -> dict:
    """The replay's data, validated and (verify=True) re-simulated and checked; ReplayError
    (one line) for anything malformed, edited or not reproducing."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise ReplayError(f"{path}: replay is larger than {MAX_BYTES >> 20} MiB uncompressed")
        data = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ReplayError(f"replay file not found: {path}") from None
    except IsADirectoryError:
        raise ReplayError(f"{path} is a folder, not a replay file") from None
    except (OSError, EOFError, zlib.error) as e:
        raise ReplayError(f"{path}: not a replay file (gzip: {e})") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ReplayError(f"{path}: replay is corrupt ({str(e)[:120]})") from None
    validate(data, str(path))
    if verify:
        verify_replay(data, str(path))
    return data


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def validate(data, where: str = "replay") -> None:
    """The replay's structure and field types, checked before its game is looked up."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ReplayError(f"{where}: not an fpx-arena replay")
    version = data.get("version")
    if version == 1:
        raise ReplayError(f"{where}: replay version 1 carries no checksums and cannot be verified "
                          f"(this fpx-arena reads version {VERSION}): record the match again")
    if version != VERSION:
        raise ReplayError(f"{where}: replay version {version!r:.20} is not supported (this is {VERSION})")
    for key in _REQUIRED:
        if key not in data:
            raise ReplayError(f"{where}: replay lacks {key!r}")
    game = data["game"]
    if not isinstance(game, str) or game not in games.names():
        raise ReplayError(f"{where}: replay names game {game!r:.80}, which is not a registered game "
                          f"(installed: {', '.join(games.names())}); replays run registered games only")
    if not isinstance(data.get("env_kwargs", {}), dict):
        raise ReplayError(f"{where}: env_kwargs must be an object")
    if not _is_int(data["seed"]) or not -(1 << 63) <= data["seed"] < 1 << 64:
        raise ReplayError(f"{where}: seed must be an integer, got {data['seed']!r:.40}")
    hz = data["tick_hz"]
    if isinstance(hz, bool) or not isinstance(hz, (int, float)) or not math.isfinite(hz) or hz <= 0:
        raise ReplayError(f"{where}: tick_hz must be a finite number > 0, got {hz!r:.40}")
    agents = data["agents"]
    if (not isinstance(agents, list) or not agents or len(agents) > 256
            or not all(isinstance(a, str) and a for a in agents) or len(set(agents)) != len(agents)):
        raise ReplayError(f"{where}: agents must be a list of distinct player ids")
    if not isinstance(data["actions"], list):
        raise ReplayError(f"{where}: actions must be a list of rows")
    n = len(agents)
    for t, row in enumerate(data["actions"]):
        if not isinstance(row, list) or len(row) != n:
            raise ReplayError(f"{where}: tick {t}: expected {n} actions, got {row!r:.80}")
    arrival = data.get("arrival") or []
    if not isinstance(arrival, list) or not all(
            isinstance(r, list) and all(_is_int(i) and 0 <= i < n for i in r) for r in arrival):
        raise ReplayError(f"{where}: arrival must be a list of lists of player indices")
    if not isinstance(data["final_digest"], str):
        raise ReplayError(f"{where}: replay has no final state digest ({data['final_digest']!r:.40}): "
                          "it cannot be verified")
    result = data["result"]
    if (not isinstance(result, dict) or not _is_int(result.get("ticks"))
            or not isinstance(result.get("agents"), dict) or not isinstance(result.get("winner"), (str, type(None)))):
        raise ReplayError(f"{where}: the recorded result is malformed")
    check = data["check"]
    if (not isinstance(check, dict) or set(check) != {"every", "digests", "stream"}
            or not _is_int(check.get("every")) or check["every"] < 1
            or not isinstance(check.get("stream"), str) or not isinstance(check.get("digests"), list)
            or not all(isinstance(d, list) and len(d) == 2 and _is_int(d[0]) and isinstance(d[1], str)
                       for d in check["digests"])):
        raise ReplayError(f"{where}: the replay's checksums are malformed")


def verify_replay(data: dict, where: str = "replay") -> dict:
    """Check the checksum over the recorded stream, then re-simulate: the state digests at
    every checkpoint, the final digest and the recorded result must all come out again.
    Returns {"ticks", "final_digest", "rewards", "winner"}."""
    if _stream_hash(data) != data["check"]["stream"]:
        raise ReplayError(f"{where}: the replay's contents do not match its checksum: it was edited or damaged "
                          "after recording (an action, the seed, a setting or the game label)")
    want = {t: d for t, d in data["check"]["digests"]}
    total = len(data["actions"])
    expected = {t for t in range(0, total + 1) if t % data["check"]["every"] == 0} | {total}
    if set(want) != expected:
        raise ReplayError(f"{where}: the replay's state digests do not cover its {total} ticks")
    rewards: dict = {a: 0.0 for a in data["agents"]}  # as the scheduler counts them: every player from 0
    env, ticks = None, 0
    for ticks, env, actions in frames(data, rewards):
        if ticks in want and env.state_digest() != want[ticks]:
            raise ReplayError(f"{where}: the re-simulation leaves the recorded match at tick {ticks}: "
                              "the replay was altered, or was recorded by another version of the game")
    digest = env.state_digest()
    if digest != data["final_digest"]:
        raise ReplayError(f"{where}: replay does not reproduce its final state after {ticks} ticks "
                          f"(recorded {data['final_digest']:.16}, got {digest:.16}): a different game version?")
    result = data["result"]
    winner = _winner(env, rewards)
    recorded = {a: (r or {}).get("reward") if isinstance(r, dict) else None for a, r in result["agents"].items()}
    if (result["ticks"] != ticks or result.get("winner") != winner
            or any(recorded.get(a) != rewards.get(a, 0.0) for a in set(recorded) | set(rewards))
            or result.get("final_digest", digest) != digest):
        raise ReplayError(f"{where}: the recorded result (winner {result.get('winner')!r:.20}, {result['ticks']} "
                          f"ticks) is not what the match re-simulates to (winner {winner!r}, {ticks} ticks)")
    return {"ticks": ticks, "final_digest": digest, "rewards": rewards, "winner": winner}


def make_env(data: dict):
    """A fresh env of the replay's game (a registered name only) with its recorded settings."""
    game, kwargs = data.get("game"), data.get("env_kwargs") or {}
    if not isinstance(game, str) or game not in games.names():
        raise ReplayError(f"replay names game {game!r:.80}, which is not a registered game "
                          f"(installed: {', '.join(games.names())})")
    if not isinstance(kwargs, dict):
        raise ReplayError("replay env_kwargs must be an object")
    try:
        return games.make(game, **kwargs)
    except Exception as e:  # the settings come from a file: whatever the game raises is one line
        raise ReplayError(f"cannot rebuild game {game!r} of this replay with {kwargs!r:.80}: "
                          f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def _step(env, t: int, actions: dict, row):
    try:
        return env.step(actions)
    except Exception as e:  # recorded actions come from a file: a game that rejects them is one line
        raise ReplayError(f"tick {t}: the game rejected the recorded actions {row!r:.80}: "
                          f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def frames(data: dict, rewards: dict | None = None):
    """Re-simulate, yielding (tick, env, applied actions) before each step and once after the
    last (actions None): what a viewer walks through. `rewards`, if given, accumulates each
    player's reward as the scheduler does."""
    env = make_env(data)
    try:
        env.reset(seed=data["seed"])
    except Exception as e:
        raise ReplayError(f"cannot reset game {data['game']!r} of this replay: {e}") from None
    agents = data["agents"]
    unknown = [a for a in agents if a not in env.possible_agents]
    if unknown:
        raise ReplayError(f"replay players {', '.join(map(str, unknown))} are not players of game {data['game']!r} "
                          f"({', '.join(env.possible_agents)})")
    arrival = data.get("arrival") or []
    set_order = getattr(env, "set_arrival_order", None)
    if arrival and (set_order is None or len(arrival) != len(data["actions"])):
        raise ReplayError(f"replay carries {len(arrival)} arrival orders for {len(data['actions'])} ticks "
                          "of a game that " + ("takes none" if set_order is None else "needs one per tick"))
    for t, row in enumerate(data["actions"]):
        actions = {a: act for a, act in zip(agents, row) if act is not None and a in env.agents}
        for a, act in actions.items():
            if not _legal(env, a, act):
                raise ReplayError(f"tick {t}: recorded action {act!r:.40} of {a} is not in its action space")
        yield t, env, actions
        if not env.agents:
            raise ReplayError(f"the game ended at tick {t} but the replay goes on to tick {len(data['actions'])}: "
                              "was it recorded with other game settings (env_kwargs)?")
        if arrival:
            try:
                set_order([agents[i] for i in arrival[t]])
            except (IndexError, TypeError):
                raise ReplayError(f"tick {t}: malformed arrival order {arrival[t]!r}") from None
        _, step_rewards, *_ = _step(env, t, actions, row)
        if rewards is not None:
            for a, r in (step_rewards or {}).items():
                rewards[a] = rewards.get(a, 0.0) + float(r)
    yield len(data["actions"]), env, None


def _legal(env, agent: str, action) -> bool:
    try:
        space = env.action_space(agent)
        if isinstance(action, list):
            action = np.asarray(action, dtype=getattr(space, "dtype", None))
        return bool(space.contains(action))
    except (TypeError, ValueError, OverflowError):
        return False


def resimulate(path_or_data) -> dict:
    """Play the recorded actions again and verify them; returns {"ticks", "final_digest",
    "matches"} (matches is always True: a replay that does not reproduce raises ReplayError)."""
    data = path_or_data if isinstance(path_or_data, dict) else load(path_or_data, verify=False)
    if isinstance(path_or_data, dict):
        validate(data)
    out = verify_replay(data)
    return {"ticks": out["ticks"], "final_digest": out["final_digest"], "matches": True}
