"""Play one match of a game between agents under a deadline clock and print a result table.

Examples:
  fpx-arena play fighter -a p0=fighter/reactive -a p1=fighter/reactive \\
      --clock profile --latency p0=0 --latency p1=150 --seed 3 --record match.replay
  fpx-arena play market -a t0=market/informed -a t1=random --clock measured
"""
from __future__ import annotations

from ..errors import UserError
from ._common import add_match_arguments, latency_for, parse_env_kwargs, parse_pairs

HELP = "play one match and print the result table"


def add_arguments(p):
    p.add_argument("game", help="game name (see `fpx-arena games`)")
    add_match_arguments(p)
    p.add_argument("--record", metavar="FILE", help="write a replay file")
    p.add_argument("--watch", action="store_true", help="show the match in the pygame viewer")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")


def run(args) -> int:
    from .. import agents as agent_registry
    from .. import games
    from ..scheduler import run_match

    env_kwargs = parse_env_kwargs(args.env)
    env = games.make(args.game, **env_kwargs)
    specs = parse_pairs(args.agent, "--agent")
    unknown = set(specs) - set(env.possible_agents)
    if unknown:
        raise UserError(f"{args.game} has players {', '.join(env.possible_agents)}; "
                        f"unknown: {', '.join(sorted(unknown))}")
    specs = {a: specs.get(a, "random") for a in env.possible_agents}
    if not args.watch and any(spec.split("?")[0] == "human" for spec in specs.values()):
        raise UserError("a human player needs the viewer's window: add --watch (and --clock wall to play in real time)")
    latency = latency_for(args, env.possible_agents, specs)
    players = {a: agent_registry.make(spec) for a, spec in specs.items()}
    kwargs = dict(tick_hz=args.tick_hz, clock=args.clock, late=args.late, seed=args.seed,
                  record=args.record, latency=latency, max_ticks=args.max_ticks, overage_ms=args.overage,
                  network_delay_ms=parse_pairs(args.network_delay, "--network-delay", float) or None,
                  game=args.game, env_kwargs=env_kwargs)
    if args.watch:
        from ..viewer import watch_live

        result = watch_live(env, players, **kwargs)
    else:
        result = run_match(env, players, **kwargs)
    if args.json:
        import json

        print(json.dumps(result.to_dict(), indent=1, default=str))
    else:
        print(format_result(result))
        if args.record:
            print(f"replay written to {args.record}")
    return 0


def _ms(value) -> str:
    return f"{value:8.2f}" if value is not None else f"{'-':>8}"


def format_result(result) -> str:
    lines = [f"{result.game}: seed {result.seed}, clock {result.clock}, {result.tick_hz:g} Hz, "
             f"{result.ticks} ticks, winner: {result.winner or 'draw'}"]
    header = f"{'player':<7} {'agent':<28} {'reward':>9} {'decisions':>9} {'mean ms':>8} {'p99 ms':>8} " \
             f"{'missed':>7} {'invalid':>7} {'errors':>6} {'timeouts':>8}"
    lines += [header, "-" * len(header)]
    for a, s in result.stats.items():
        lat = s.latency_summary()
        lines.append(f"{a:<7} {s.spec[:28]:<28} {s.reward:9.2f} {s.decisions:9d} {_ms(lat['mean_ms'])} "
                     f"{_ms(lat['p99_ms'])} {s.missed_ticks:7d} {s.invalid:7d} {s.errors:6d} {s.timeouts:8d}")
    metrics = {a: s.metrics for a, s in result.stats.items() if s.metrics}
    if metrics:
        keys = sorted({k for m in metrics.values() for k in m if isinstance(m[k], (int, float))})
        lines.append("")
        lines.append(f"{'player':<7} " + " ".join(f"{k:>12}" for k in keys))
        for a, m in metrics.items():
            lines.append(f"{a:<7} " + " ".join(f"{m.get(k, float('nan')):12.4g}" for k in keys))
    errors = [f"{a}: {s.last_error}" for a, s in result.stats.items() if s.last_error]
    if errors:
        lines.append("")
        lines += [f"last error of {e}" for e in errors]
    return "\n".join(lines)
