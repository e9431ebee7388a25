"""Evaluate a policy model as an LLM agent against the scripted bots.

For each precision: action agreement with the expert on held-out decisions; then, under each
clock, seeded matches against every scripted bot and `random` (sides alternate with the seed):
fighter win rates with Wilson 95% intervals, market daily yields with bootstrap 95% intervals
(beside the yields of `random` and of the expert in the same seats and seeds). Writes JSON to
--out (default runs/eval-<model>-<timestamp>.json, never over an earlier result) and prints the
tables.

Examples:
  fpx-arena eval arena-tiny --matches 20
  fpx-arena eval arena-small --precisions bf16 --clocks lockstep --matches 100 \\
      --opponents random,fighter/weak,market/informed --workers 2
"""
from __future__ import annotations

from .. import games as all_games
from ..errors import UserError
from . import _validate as valid

HELP = "evaluate a policy model: expert agreement and matches against the scripted bots"


def add_arguments(p):
    p.add_argument("model", help="model name (e.g. arena-small) or HF folder")
    p.add_argument("--precisions", default="bf16", help="comma-separated, e.g. bf16,fp8,fp4,fpx:0.3 (default bf16)")
    p.add_argument("--matches", type=int, default=20,
                   help="matches per opponent and clock (default 20; 0: agreement only)")
    p.add_argument("--realtime-matches", type=int, default=None,
                   help="matches per opponent under the real-time clock (default: --matches)")
    p.add_argument("--clocks", default="lockstep,measured",
                   help="comma-separated: lockstep, measured, wall (default lockstep,measured)")
    p.add_argument("--games", default=None,
                   help="comma-separated (default: every game with a scripted expert, see `fpx-arena games`)")
    p.add_argument("--opponents", default=None,
                   help="comma-separated specs (random, fighter/weak, market/informed ...; default: all)")
    p.add_argument("--data", nargs="+", metavar="DIR", help="dataset folders whose held-out split to use "
                   "for agreement (default: fresh expert episodes)")
    p.add_argument("--agreement-episodes", type=int, default=4, help="fresh expert episodes per game (default 4)")
    p.add_argument("--agreement-limit", type=int, default=1500, help="held-out decisions per game at most")
    p.add_argument("--workers", type=int, default=1, help="processes playing matches (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    p.add_argument("--seed", type=valid.seed, default=0, help="first match seed (default 0)")
    p.add_argument("--out", default=None, help="JSON path (default runs/eval-<model>-<timestamp>.json)")
    p.add_argument("--quiet", action="store_true")


def default_out(name: str, root: str = "runs") -> str:
    import os
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = os.path.join(root, f"eval-{name}-{stamp}.json"), 1
    while os.path.exists(path):
        n += 1
        path = os.path.join(root, f"eval-{name}-{stamp}-{n}.json")
    return path


def run(args) -> int:
    import json
    import os
    import sys

    from ..policy.evaluate import evaluate, format_report, opponents_of

    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    clocks = [c.strip() for c in args.clocks.split(",") if c.strip()]
    games = ([g.strip() for g in args.games.split(",") if g.strip()] if args.games is not None
             else [g for g in all_games.names() if all_games.get(g).setups.expert is not None])
    if not precisions or not clocks or not games:
        raise UserError("--precisions, --clocks and --games must each name at least one")
    if args.matches < 0 or args.workers < 1 or args.threads < 1:
        raise UserError("--matches must be >= 0, --workers and --threads at least 1")
    opponents = None
    if args.opponents:
        wanted = [o.strip() for o in args.opponents.split(",") if o.strip()]
        opponents = {}
        for g in games:
            known = opponents_of(g)
            opponents[g] = [o for o in wanted if o in known]
        unknown = [o for o in wanted if not any(o in v for v in opponents.values())]
        if unknown:
            raise UserError(f"unknown opponent(s) {', '.join(unknown)}; known: "
                            + ", ".join(sorted({o for g in games for o in opponents_of(g)})))
        for g in games:
            if not opponents[g]:
                raise UserError(f"--opponents names no opponent for {g}")
    rep = evaluate(args.model, precisions, args.matches, clocks, games, opponents=opponents, data=args.data,
                   agreement_episodes=args.agreement_episodes, agreement_limit=args.agreement_limit,
                   realtime_matches=args.realtime_matches, workers=args.workers, threads=args.threads,
                   seed=args.seed, progress=not args.quiet, command="fpx-arena eval " + " ".join(sys.argv[2:]))
    name = os.path.basename(os.path.normpath(args.model))
    # a fresh file under runs/ by default: never over a result someone keeps (the repository's
    # bench/results/ when run at its root)
    out = args.out or default_out(name)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(rep, f, indent=1)
        f.write("\n")
    print(format_report(rep))
    print(f"\nwritten to {out} ({rep['seconds']:.0f} s)")
    return 0
