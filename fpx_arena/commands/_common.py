"""Argument parsing shared by the match-playing commands."""
from __future__ import annotations

import math

from ..agents.spec import AgentSpec, coerce
from ..errors import UserError
from ..latency import load_profiles
from ..match import DEFAULT_DECISION_TIMEOUT_S, FORFEIT_AFTER, MatchSpec
from . import _validate as valid


def parse_pairs(items, what: str, value=str) -> dict:
    """['p0=<game>/<bot>', ...] -> {'p0': '<game>/<bot>'}; a clear error otherwise."""
    out = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"{what} {item!r}: expected ID=VALUE")
        try:
            out[key] = value(raw)
        except ValueError as e:
            why = f" ({e})" if value is not str and str(e).startswith("'") else ""
            raise UserError(f"{what} {item!r}: {raw!r} is not a valid value{why}") from None
    return out


def parse_env_kwargs(items) -> dict:
    return {k: coerce(v) for k, v in parse_pairs(items, "--env").items()}


def add_match_arguments(p, default_clock="lockstep"):
    p.add_argument("--agent", "-a", action="append", metavar="ID=SPEC",
                   help="agent for a player id: a spec of `fpx-arena agents` (a game's bot <game>/<bot>, "
                        "llm:<model>@<precision>, package.module:Class), e.g. p1=llm:arena-tiny@fp8 "
                        "(players not named play `random`)")
    p.add_argument("--clock", default=default_clock, choices=["wall", "measured", "profile", "lockstep"],
                   help="lockstep: the world waits; profile: latencies from --latency/--latency-profile; "
                        "measured: each decision's real time, in virtual time; wall: real time "
                        f"(default {default_clock})")
    p.add_argument("--tick-hz", type=valid.tick_hz, default=None, help="world ticks per second (default: the game's)")
    p.add_argument("--late", choices=["noop", "repeat"], default="noop",
                   help="what a player does while its decision is in flight (default noop)")
    p.add_argument("--latency", action="append", metavar="ID=MS",
                   help="constant decision latency for the profile clock, e.g. p1=150")
    p.add_argument("--latency-profile", metavar="FILE", type=valid.existing_file,
                   help="latency profile JSON (see fpx_arena.latency) for the profile clock, by agent spec")
    p.add_argument("--network-delay", action="append", metavar="ID=MS", help="extra delay added to each decision")
    p.add_argument("--overage", type=valid.milliseconds, default=None, metavar="MS",
                   help="Kaggle-style overage bank per agent (virtual clocks): overruns of one tick are "
                        "paid from it while it lasts")
    p.add_argument("--seed", type=valid.seed, default=0)
    p.add_argument("--max-ticks", type=valid.integer(1, 100_000_000), default=None)
    p.add_argument("--env", action="append", metavar="KEY=VALUE", help="game setting: a keyword argument of the game's env (its parallel_env), with a number, "
                        "bool or text value; the built-in games' settings are in docs/games.md")
    p.add_argument("--decision-timeout", type=valid.seconds, default=DEFAULT_DECISION_TIMEOUT_S, metavar="S",
                   help="seconds an agent may take over one decision under any clock before it loses it; "
                        f"{FORFEIT_AFTER} in one match forfeit it (default {DEFAULT_DECISION_TIMEOUT_S:g})")
    p.add_argument("--isolate", action="store_true",
                   help="run package.module:Class and plug-in agents in child processes, so that a crash, "
                        "sys.exit or os._exit inside them costs the match, not this command")


def match_spec(args, env) -> MatchSpec:
    """The match the command-line arguments describe (`env`: the game built from them, for its
    player ids)."""
    specs = parse_pairs(args.agent, "--agent")
    unknown = set(specs) - set(env.possible_agents)
    if unknown:
        raise UserError(f"{args.game} has players {', '.join(env.possible_agents)}; "
                        f"unknown: {', '.join(sorted(unknown))}")
    specs = {a: specs.get(a, "random") for a in env.possible_agents}
    for a, text in specs.items():
        AgentSpec.parse(text)  # a malformed spec is reported before anything is built
    timeout = args.decision_timeout
    if not (timeout > 0 and math.isfinite(timeout)):
        raise UserError(f"--decision-timeout must be a positive number of seconds, got {timeout}")
    return MatchSpec(
        game=args.game, env_kwargs=parse_env_kwargs(args.env), agents=specs, tick_hz=args.tick_hz,
        clock=args.clock, late=args.late, seed=args.seed, latency=latency_for(args, env.possible_agents, specs),
        network_delay_ms=_per_player(args.network_delay, "--network-delay", env, args.game) or None,
        overage_ms=args.overage, max_ticks=args.max_ticks, decision_timeout_s=timeout, isolate=args.isolate)


def run_match_kwargs(spec: MatchSpec, **extra) -> dict:
    """run_match's keywords for a match spec (for callers that take them, like the viewer)."""
    return dict(tick_hz=spec.tick_hz, clock=spec.clock, late=spec.late, seed=spec.seed, latency=spec.latency,
                network_delay_ms=spec.network_delay_ms, overage_ms=spec.overage_ms, deadline_ms=spec.deadline_ms,
                max_ticks=spec.max_ticks, decision_timeout_s=spec.decision_timeout_s,
                forfeit_after=spec.forfeit_after, game=spec.game, env_kwargs=spec.env_kwargs, **extra)


def _per_player(items, what: str, env, game: str) -> dict:
    values = parse_pairs(items, what, valid.ms_value)
    valid.known_ids(values, env.possible_agents, what, game)
    return values


def latency_for(args, env_agents, specs):
    """The profile clock's latency per player from --latency and --latency-profile."""
    latency = parse_pairs(args.latency, "--latency", valid.ms_value)
    valid.known_ids(latency, env_agents, "--latency", getattr(args, "game", "the game"))
    if args.latency_profile:
        profiles = load_profiles(args.latency_profile)
        for a in env_agents:
            if a not in latency and specs[a] in profiles:
                latency[a] = profiles[specs[a]]
    if args.clock == "profile":
        missing = [a for a in env_agents if a not in latency]
        if missing:
            raise UserError(f"the profile clock needs a latency for {', '.join(missing)} "
                            "(--latency ID=MS or --latency-profile FILE)")
    return latency or None
