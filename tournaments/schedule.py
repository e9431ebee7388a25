"""The deterministic match schedule of a tournament spec.

Every match has a key that names it for good (`arena:a:b:seed_index:side`), a seed derived from
the spec's seed, the arena and the seed index only (so every pairing in an arena plays the same
seeds, as engine testers share an opening book), and its seats. Resuming a run replays exactly
the keys that have no stored result; a match's outcome depends on its seed and seats alone.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..agents.spec import AgentSpec
from ..errors import UserError
from ..match import MatchSpec
from ..agents.adaptive import candidate_keys
from .spec import ArenaSpec, TournamentSpec


@dataclass(frozen=True)
class MatchTask:
    key: str
    order: int  # position in the schedule
    arena: str
    seed: int
    seed_index: int
    swapped: bool  # b sits in the first seat
    pairing: tuple  # (a, b) in spec order
    seats: tuple  # agent names in the order of env.possible_agents
    seat_ids: tuple  # env.possible_agents

    @property
    def replay_name(self) -> str:
        return f"{self.arena}/{self.seed_index:04d}-{'-vs-'.join(self.seats)}.replay.gz"


def match_seed(base_seed: int, arena: str, seed_index: int) -> int:
    """A 31-bit seed that depends only on (spec seed, arena label, seed index), the same on
    every machine and Python version (no salted hash())."""
    digest = hashlib.sha256(f"fpx-arena/{base_seed}/{arena}/{seed_index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def make_env(arena: ArenaSpec):
    """A fresh env of the arena's game: a registered name (fpx_arena.games) or
    `package.module:function` for a game that is not registered."""
    return MatchSpec(game=arena.game, env_kwargs=arena.env).make_env()


def match_spec(spec: TournamentSpec, task: MatchTask, latencies: dict) -> MatchSpec:
    """The match a scheduled task plays: its arena's settings, its seats' agent specs and seed.
    latencies: latencies(spec) (the profile clock's draw per arena and agent)."""
    arena = spec.arena(task.arena)
    seats = dict(zip(task.seat_ids, task.seats))
    profile = arena.clock == "profile"
    return MatchSpec(
        game=arena.game, env_kwargs=dict(arena.env), agents={seat: spec.agent(name).spec for seat, name in seats.items()},
        tick_hz=arena.tick_hz, clock=arena.clock, late=arena.late, seed=task.seed,
        latency={seat: latencies[task.arena][name] for seat, name in seats.items()} if profile else None,
        network_delay_ms=arena.network_delay_ms, overage_ms=arena.overage_ms, deadline_ms=arena.deadline_ms,
        max_ticks=arena.max_ticks, decision_timeout_s=arena.decision_timeout_s, isolate=True)


def uses_models(spec: TournamentSpec) -> bool:
    """Whether any agent loads a model (GPU placement, model affinity)."""
    return any(AgentSpec.parse(a.spec).model_backed for a in spec.agents)


def game_name(arena: ArenaSpec) -> str:
    return arena.game.rpartition(".")[2].partition(":")[0] if ":" in arena.game else arena.game


def participants(spec: TournamentSpec, arena: ArenaSpec) -> list[str]:
    """Agents that play in `arena`: those listing it, or (listing nothing) those whose spec can
    play its game (scripted bots only their own game's)."""
    out = []
    for a in spec.agents:
        if a.games is not None:
            if arena.label in a.games:
                out.append(a.name)
        elif a.family is None or a.family == game_name(arena):
            out.append(a.name)
    return out


def pairings(spec: TournamentSpec, arena: ArenaSpec) -> list[tuple[str, str]]:
    names = participants(spec, arena)
    if spec.format == "round-robin":
        return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    baselines = [b for b in spec.baselines if b in names]
    return [(a, b) for a in names if a not in spec.baselines for b in baselines]


def seat_ids(spec: TournamentSpec, arena: ArenaSpec) -> tuple:
    try:
        env = make_env(arena)
    except UserError as e:
        raise spec.error(("games", arena.label, "env" if arena.env else "game"), str(e)) from None
    ids = tuple(env.possible_agents)
    if hasattr(env, "close"):
        env.close()
    if len(ids) != 2:
        raise spec.error(("games", arena.label), f"game {arena.game!r} has {len(ids)} seats; "
                         "tournaments pair two agents per match")
    return ids


def build_schedule(spec: TournamentSpec, *, seats: dict | None = None) -> list[MatchTask]:
    """Every match of the tournament in a fixed order: seed-major, so that a partial run has
    played every pairing about equally often. `seats` (arena -> possible_agents) skips making
    the envs where the caller knows them already."""
    tasks: list[MatchTask] = []
    n_seeds = spec.games_per_pairing // 2 if spec.paired else spec.games_per_pairing
    per_arena = []
    for arena in spec.arenas:
        ids = tuple(seats[arena.label]) if seats else seat_ids(spec, arena)
        pairs = pairings(spec, arena)
        if not pairs:
            raise spec.error(("games", arena.label), f"no pairings in games.{arena.label}: "
                             f"its players are {participants(spec, arena) or 'none'}")
        per_arena.append((arena, ids, pairs))
    for i in range(n_seeds):
        for arena, ids, pairs in per_arena:
            seed = match_seed(spec.seed, arena.label, i)
            for a, b in pairs:
                sides = (False, True) if spec.paired else (bool(i % 2),)
                for swapped in sides:
                    seated = (b, a) if swapped else (a, b)
                    tasks.append(MatchTask(
                        key=f"{arena.label}:{a}:{b}:{i}:{'ba' if swapped else 'ab'}", order=len(tasks),
                        arena=arena.label, seed=seed, seed_index=i, swapped=swapped, pairing=(a, b),
                        seats=seated, seat_ids=ids,
                    ))
    return tasks


# --------------------------------------------------------------------------- latency

def latency_for(spec: TournamentSpec, arena: ArenaSpec, agent_name: str, _cache: dict | None = None):
    """What the profile clock draws an agent's decision latency from in `arena`: a constant ms
    or a LatencyProfile ({candidate: LatencyProfile} for an adaptive agent). Precedence: the
    agent's latency_ms, the arena's latency_ms table, the agent's latency_profile file, the
    arena's latency_profile file (looked up by the agent's spec, then by each of an adaptive
    agent's candidates, then "*"). None for other clocks."""
    if arena.clock != "profile":
        return None
    from ..latency import load_profiles

    cache = _cache if _cache is not None else {}
    agent = spec.agent(agent_name)
    if agent.latency_ms is not None:
        return agent.latency_ms
    if agent_name in arena.latency_ms:
        return arena.latency_ms[agent_name]
    index = spec.agents.index(agent)
    for path, where in ((agent.latency_profile, ("agents", index, "latency_profile")),
                        (arena.latency_profile, ("games", arena.label, "latency_profile"))):
        if not path:
            continue
        if path not in cache:
            try:
                cache[path] = load_profiles(path)
            except UserError as e:
                raise spec.error(where, str(e)) from None
        profiles = cache[path]
        if agent.spec in profiles:
            return profiles[agent.spec]
        # an adaptive agent: the profile of each candidate (llm:<model>@<precision> entries),
        # which the profile clock draws from per decision
        per = {k: profiles.get(k) or profiles.get("llm:" + k) for k in candidate_keys(agent.spec)}
        if per and all(per.values()):
            return per
        if "*" in profiles:
            return profiles["*"]
    raise spec.error(("games", arena.label, "clock"),
                     f"games.{arena.label} uses the profile clock but agent {agent_name!r} "
                     f"({agent.spec}) has no latency: give it latency_ms, add it to "
                     f"games.{arena.label}.latency_ms, or add {agent.spec!r} to a latency_profile file")


def latencies(spec: TournamentSpec) -> dict:
    """{arena label: {agent name: ms | LatencyProfile | None}} for every participant: raises the
    spec's first missing latency before any match is played."""
    cache: dict = {}
    return {arena.label: {name: latency_for(spec, arena, name, cache) for name in participants(spec, arena)}
            for arena in spec.arenas}


__all__ = ["MatchTask", "build_schedule", "match_spec", "uses_models", "match_seed", "make_env", "participants",
           "pairings", "latency_for", "latencies", "seat_ids"]
