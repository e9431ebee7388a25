"""Play one match of a game between agents under a deadline clock and print a result table.

Examples:
  fpx-arena play fighter -a p0=fighter/reactive -a p1=fighter/reactive \\
      --clock profile --latency p0=0 --latency p1=150 --seed 3 --record match.replay
  fpx-arena play market -a t0=market/informed -a t1=random --clock measured
"""
from __future__ import annotations

import json

from ..agents.spec import AgentSpec
from ..errors import UserError
from .. import replay
from . import _validate as valid
from ._common import add_match_arguments, match_spec, parse_env_kwargs, run_match_kwargs

HELP = "play one match and print the result table"


def add_arguments(p):
    p.add_argument("game", help="game name (see `fpx-arena games`)")
    add_match_arguments(p)
    p.add_argument("--record", metavar="FILE", help="write a replay file")
    p.add_argument("--watch", action="store_true", help="show the match in the pygame viewer")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")


def run(args) -> int:
    spec = match_spec(args, valid.make_env(args.game, parse_env_kwargs(args.env)))
    if not args.watch and any(AgentSpec.parse(a).base == "human" for a in spec.agents.values()):
        raise UserError("a human player needs the viewer's window: add --watch (and --clock wall to play in real time)")
    env = spec.make_env()
    players = valid.build("the agents", spec.make_agents)
    try:
        if args.watch:
            from ..viewer import watch_live

            result = watch_live(env, players, **run_match_kwargs(spec))
        else:
            result = spec.play(env, players)
    finally:
        for player in players.values():
            if hasattr(player, "close"):
                player.close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=1, default=str))
    else:
        print(format_result(result))
    if args.record:  # after the result is out: a file that cannot be written loses nothing else
        replay.save(args.record, result, env_kwargs=spec.env_kwargs)
        if not args.json:
            print(f"replay written to {args.record}")
    return 0


def _ms(value) -> str:
    return f"{value:8.2f}" if value is not None else f"{'-':>8}"


def _outcome(result) -> str:
    """The winner, or what a draw means: the game's result (rounds, pnl) decides, while the
    rewards are per-tick shaping and may lean one way in a drawn match."""
    if result.winner:
        return f"winner: {result.winner}"
    rounds = {a: s.metrics.get("rounds_won") for a, s in result.stats.items()}
    if all(isinstance(v, (int, float)) for v in rounds.values()):
        text = f"winner: none (rounds won {'-'.join(str(v) for v in rounds.values())})"
    else:
        text = "winner: none (a draw by the game's result)"
    rewards = {a: s.reward for a, s in result.stats.items()}
    best = max(rewards.values())
    leaders = [a for a, r in rewards.items() if r == best]
    if len(leaders) == 1:
        text += f"; the per-tick reward leans to {leaders[0]} ({best:+.2f}) but does not decide the match"
    return text


def format_result(result) -> str:
    lines = [f"{result.game}: seed {result.seed}, clock {result.clock}, {result.tick_hz:g} Hz, "
             f"{result.ticks} ticks, {_outcome(result)}"]
    width = max([5] + [len(s.spec) for s in result.stats.values()])  # names are never cut
    header = f"{'player':<7} {'agent':<{width}} {'reward':>9} {'decisions':>9} {'mean ms':>8} {'p99 ms':>8} " \
             f"{'missed':>7} {'invalid':>7} {'errors':>6} {'timeouts':>8}"
    lines += [header, "-" * len(header)]
    lockstep = result.clock == "lockstep"  # the world waits: no latency is charged
    for a, s in result.stats.items():
        lat = s.latency_summary()
        mean, p99 = (f"{'n/a':>8}", f"{'n/a':>8}") if lockstep else (_ms(lat["mean_ms"]), _ms(lat["p99_ms"]))
        lines.append(f"{a:<7} {s.spec:<{width}} {s.reward:9.2f} {s.decisions:9d} {mean} "
                     f"{p99} {s.missed_ticks:7d} {s.invalid:7d} {s.errors:6d} {s.timeouts:8d}")
    if lockstep:
        lines.append("(lockstep: the world waits for every decision, so no latency is charged; time them with "
                     "--clock measured)")
    metrics = {a: s.metrics for a, s in result.stats.items() if s.metrics}
    if metrics:
        keys = sorted({k for m in metrics.values() for k in m if isinstance(m[k], (int, float))})
        lines.append("")
        lines.append(f"{'player':<7} " + " ".join(f"{k:>12}" for k in keys))
        for a, m in metrics.items():
            lines.append(f"{a:<7} " + " ".join(f"{m.get(k, float('nan')):12.4g}" for k in keys))
    notes = [f"last error of {a}: {s.last_error}" for a, s in result.stats.items() if s.last_error]
    notes += [f"{a} forfeited: {s.forfeit}" for a, s in result.stats.items() if s.forfeit]
    if notes:
        lines.append("")
        lines += notes
    return "\n".join(lines)
