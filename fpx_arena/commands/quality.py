"""Quality of the precision plans of one model: held-out perplexity and the LLM agent's action
agreement with bf16, for FPX at gamma = 0, 0.1, ..., 1 and uniform fp8 / nvfp4 / mxfp4, with
the per-layer FP4 error table and the ranking's stability across two calibration sets.

Examples:
  fpx-arena quality smollm2-135m --device cuda --out bench/results/fpx-smollm2.json --plot docs/img/fpx-smollm2.png
  fpx-arena quality ./my-model --gammas 0,0.5,1 --obs 20

Agreement is reported with its 95% Wilson interval, and with the mean total-variation distance
between the agent's action distribution and bf16's (it moves before the argmax flips). On a
CPU the default 150 observations per game take minutes per plan for a 135M model.
"""
from __future__ import annotations

import json
import sys

from ..errors import UserError
from . import _validate as valid

HELP = "perplexity and action agreement of FP8/FP4/FPX plans against bf16"


def add_arguments(p):
    p.add_argument("model", help="model name (see `fpx-arena models`), HF folder or .gguf file")
    p.add_argument("--gammas", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1",
                   help="comma-separated FPX gammas (default 0 to 1 by 0.1)")
    p.add_argument("--uniform", default="fp8,nvfp4,mxfp4", help="uniform formats to add (default fp8,nvfp4,mxfp4)")
    p.add_argument("--obs", type=int, default=150,
                   help="observations per game for action agreement, at most 15 from one match (default 150)")
    p.add_argument("--max-tokens", type=valid.integer(2, 1_000_000), default=320, help="tokens per text sequence at most (default 320)")
    p.add_argument("--device", type=valid.device, default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--out", default=None, metavar="JSON", help="write the report here")
    p.add_argument("--plot", default=None, metavar="PNG", help="write a plot here")


def run(args) -> int:
    from ..llm.precision import QUANTIZED  # the engine: torch
    from ..precision_apps.quality import plot, quality_report

    try:
        gammas = [float(g) for g in args.gammas.split(",") if g.strip()]
    except ValueError:
        raise UserError(f"--gammas {args.gammas!r}: expected comma-separated numbers") from None
    if any(not 0 <= g <= 1 for g in gammas):
        raise UserError("--gammas must lie in [0, 1]")
    uniform = [u.strip() for u in args.uniform.split(",") if u.strip()]
    bad = [u for u in uniform if u not in QUANTIZED]
    if bad:
        raise UserError(f"--uniform {bad[0]!r}: expected some of {', '.join(QUANTIZED)}")
    if args.obs < 1:
        raise UserError("--obs must be at least 1")
    rep = quality_report(args.model, gammas, tuple(uniform), obs_per_game=args.obs,
                         max_tokens=args.max_tokens, device=args.device)
    rep["command"] = "fpx-arena quality " + " ".join(sys.argv[2:])
    print(f"{'precision':<10} {'FP4':>4} {'bits/w':>7} {'ppl':>9} {'agree':>6} {'95% CI':>13} {'TV to bf16':>10}")
    for r in rep["configs"]:
        b = r["bits"].get("per_weight_with_scales", r["bits"]["by_layer_count"])
        lo, hi = r["agreement_ci95"]
        print(f"{r['precision']:<10} {r['n_fp4']:>4} {b:>7.3f} {r['perplexity']:>9.3f} {r['agreement']:>6.3f} "
              f"[{lo:.3f},{hi:.3f}] {r['mean_tv_distance']:>10.2e}")
    mg = rep["bf16_choice_margin"]
    print(f"{rep['observations']['n']} observations; bf16 again after all plans agrees with itself on "
          f"{rep['bf16_repeat_agreement']:.1%}; bf16's first choice leads its second by a median "
          f"{mg['median']:.3f} in probability ({mg['share_below_0.05']:.0%} of states below 0.05)")
    st = rep["ranking_stability"]
    print(f"ranking stability: Spearman {st['spearman_set_a_vs_b']:.3f} between the two calibration sets; "
          f"FP4 sets overlap " + ", ".join(f"{v:.0%} at gamma {k}" for k, v in st["fp4_set_overlap"].items()))
    print("eps (nvfp4) by layer type: " + ", ".join(f"{k} {v:.2e}" for k, v in rep["eps_nvfp4_by_kind"].items()))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(rep, f, indent=1)
        print(f"wrote {args.out}")
    if args.plot:
        plot(rep, args.plot)
        print(f"wrote {args.plot}")
    return 0
