"""Record a scripted expert's decisions as (prompt, action) pairs for training an LLM policy.

The game's scripted expert (its Setups: fighter/reactive, market/informed) plays seeded matches under the
lockstep clock against a rotating list of opponents; each decision's prompt is made by the LLM
agent's own prompt builder. Pairs are deduplicated and split into train and held-out by episode.

Example:
  fpx-arena dataset fighter --episodes 400 --seed 1 --explore 0.1 --out data/fighter
"""
from __future__ import annotations

import sys

from ..errors import UserError
from . import _validate as valid

HELP = "record a scripted expert's (prompt, action) pairs for training"


def add_arguments(p):
    p.add_argument("game", help="a game with a scripted expert (see `fpx-arena games`)")
    p.add_argument("--episodes", type=int, default=100, help="matches to play (default 100)")
    p.add_argument("--seed", type=valid.seed, default=0)
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder to write")
    p.add_argument("--heldout", type=float, default=0.1, metavar="FRACTION",
                   help="fraction of episodes held out (default 0.1)")
    p.add_argument("--explore", type=float, default=0.0, metavar="P",
                   help="play a random legal action with probability P, still labelled with the "
                        "expert's choice (states off the expert's path; default 0)")
    p.add_argument("--workers", type=int, default=1, help="processes playing episodes (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..policy import dataset  # torch (the engine's tokenizer)

    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    meta = dataset.collect(args.game, args.episodes, args.seed, args.out, heldout_fraction=args.heldout,
                           explore=args.explore, workers=args.workers, progress=not args.quiet,
                           command="fpx-arena dataset " + " ".join(sys.argv[2:]))
    print(f"{args.game}: {meta['episodes']} episodes, {meta['decisions']} expert decisions -> "
          f"{meta['train']} train and {meta['heldout']} held-out pairs (deduplicated) in {args.out}")
    top = sorted(meta["train_action_counts"].items(), key=lambda kv: -kv[1])
    total = max(1, meta["train"])
    print("actions: " + ", ".join(f"{k} {100 * v / total:.1f}%" for k, v in top))
    return 0
