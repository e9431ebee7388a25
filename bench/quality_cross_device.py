"""How often the same bf16 model chooses differently on another device: the LLM agent's
constrained choices on this machine against the bf16 row of a quality report made elsewhere
(e.g. on an H100), over the report's own observations. This is the floor under any
"agreement with bf16" figure: below it, a format's disagreement is indistinguishable from
the summation order of a different matmul.

    python bench/quality_cross_device.py bench/results/fpx-smollm2.json smollm2-135m \
        --out bench/results/fpx-smollm2-cross-device.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # last: never shadow installed packages


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", help="a JSON written by `fpx-arena quality --out`")
    ap.add_argument("model", help="the same model, as a name, folder or .gguf")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch

    from fpx_arena.llm import load_model
    from fpx_arena.precision_apps.quality import choice_margins, choose_actions, observation_set, wilson

    rep = json.load(open(args.report))
    base = next(r for r in rep["configs"] if r["precision"] == "bf16")["actions"]
    obs = observation_set(rep["observations"]["first_seed"], rep["observations"]["by_game"]["fighter"])
    if len(obs) != len(base):
        sys.exit(f"{args.report}: {len(base)} actions but {len(obs)} observations rebuilt here")
    model = load_model(args.model, "bf16", args.device)
    t0 = time.perf_counter()
    actions, dists = choose_actions(model, args.model, obs)
    same = [a == b for a, b in zip(actions, base)]
    games = [m.__name__.rsplit(".", 1)[-1] for m, *_ in obs]
    out = {"report": args.report, "report_device": rep["device"], "model": args.model,
           "device": f"{args.device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
           "n": len(same), "agreement": sum(same) / len(same), "agreement_ci95": wilson(sum(same), len(same)),
           "agreement_by_game": {g: sum(s for s, x in zip(same, games) if x == g) / games.count(g) for g in sorted(set(games))},
           "bf16_choice_margin_here": choice_margins(dists), "seconds": time.perf_counter() - t0,
           "command": "python " + " ".join(sys.argv)}
    print(json.dumps(out, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
