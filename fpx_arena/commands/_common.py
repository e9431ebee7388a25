"""Argument parsing shared by the match-playing commands."""
from __future__ import annotations

from ..errors import UserError


def parse_pairs(items, what: str, value=str) -> dict:
    """['p0=fighter/reactive', ...] -> {'p0': 'fighter/reactive'}; a clear error otherwise."""
    out = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"{what} {item!r}: expected ID=VALUE")
        try:
            out[key] = value(raw)
        except ValueError:
            raise UserError(f"{what} {item!r}: {raw!r} is not a valid value") from None
    return out


def parse_env_kwargs(items) -> dict:
    from ..agents import _coerce

    return {k: _coerce(v) for k, v in parse_pairs(items, "--env").items()}


def add_match_arguments(p, default_clock="lockstep"):
    p.add_argument("--agent", "-a", action="append", metavar="ID=SPEC",
                   help="agent for a player id, e.g. p0=fighter/reactive or t1=llm:arena-tiny@fp8 "
                        "(players not named play `random`)")
    p.add_argument("--clock", default=default_clock, choices=["wall", "measured", "profile", "lockstep"],
                   help="lockstep: the world waits; profile: latencies from --latency/--latency-profile; "
                        "measured: each decision's real time, in virtual time; wall: real time "
                        f"(default {default_clock})")
    p.add_argument("--tick-hz", type=float, default=None, help="world ticks per second (default: the game's)")
    p.add_argument("--late", choices=["noop", "repeat"], default="noop",
                   help="what a player does while its decision is in flight (default noop)")
    p.add_argument("--latency", action="append", metavar="ID=MS",
                   help="constant decision latency for the profile clock, e.g. p1=150")
    p.add_argument("--latency-profile", metavar="FILE",
                   help="latency profile JSON (see fpx_arena.latency) for the profile clock, by agent spec")
    p.add_argument("--network-delay", action="append", metavar="ID=MS", help="extra delay added to each decision")
    p.add_argument("--overage", type=float, default=None, metavar="MS",
                   help="Kaggle-style overage bank per agent (virtual clocks): overruns of one tick are "
                        "paid from it while it lasts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-ticks", type=int, default=None)
    p.add_argument("--env", action="append", metavar="KEY=VALUE", help="game setting, e.g. round_seconds=20")


def latency_for(args, env_agents, specs):
    """The profile clock's latency per player from --latency and --latency-profile."""
    from ..latency import load_profiles

    latency = parse_pairs(args.latency, "--latency", float)
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
