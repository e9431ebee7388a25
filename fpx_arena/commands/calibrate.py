"""FPX calibration: rank a model's linear layers by their FP4 output error and write a plan.

For each linear layer l of the transformer blocks, eps_l = ||A_l(bf16) - A_l(fp4)||^2 /
||A_l(bf16)||^2 over the calibration text, with the rest of the model in bf16; the fraction
gamma of the layers with the lowest eps_l goes to FP4 (nvfp4), the rest to FP8. The plan file
(layer -> format, the model's identity, the eps table and the average bits) is what
`--precision PLAN.json` and `llm:<model>@PLAN.json` take.

Examples:
  fpx-arena calibrate smollm2-135m --gamma 0.3 --out plans/smollm2-fpx03.json
  fpx-arena calibrate ./my-model --data notes.txt --gamma 0.5 --out plan.json
"""
from __future__ import annotations

import os

from ..errors import UserError
from . import _validate as valid

HELP = "rank linear layers by FP4 error (FPX) and write a precision plan"


def add_arguments(p):
    p.add_argument("model", help="model name (see `fpx-arena models`), HF folder or .gguf file")
    p.add_argument("--data", default=None, metavar="FILE",
                   help="calibration text file (default: the shipped recording of the LLM agent's prompts on scripted games)")
    p.add_argument("--gamma", type=float, default=0.3, help="fraction of linear layers in FP4 (default 0.3)")
    p.add_argument("--lm-head", default="bf16", help="lm_head format: bf16, fp8, nvfp4, mxfp4 (default bf16)")
    p.add_argument("--out", required=True, metavar="PLAN.json", help="plan file to write")
    p.add_argument("--device", type=valid.device, default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--table", action="store_true", help="print every layer's eps")


def run(args) -> int:
    import torch  # the engine below imports torch: `fpx-arena --help` must not

    from ..llm import load_model, open_checkpoint
    from ..llm.calibrate import eps_by_kind, ranking
    from ..llm.model import Transformer
    from ..llm.precision import make_plan
    from ..llm.qcache import model_identity

    if not 0.0 <= args.gamma <= 1.0:
        raise UserError(f"--gamma must be in [0, 1], got {args.gamma}")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise UserError(f"--out {args.out}: folder {out_dir} does not exist")
    src = open_checkpoint(args.model)

    with torch.device("meta"):
        shapes = {n: (m.out_features, m.in_features) for n, m in Transformer(src.config).linear_layers().items()}
    rec = ranking(src.path, data=args.data, device=args.device, progress=True,
                  load_dense=lambda path, device: load_model(path, "bf16", device))
    plan = make_plan(f"fpx:{args.gamma:g}", list(shapes), lm_head=args.lm_head, eps=rec["eps"])
    plan.model_id = model_identity(src, shapes)
    plan.calibration = {k: rec[k] for k in ("data", "sequences", "tokens") if k in rec}
    plan.save(args.out, shapes)
    bits = plan.bits(shapes)
    L = len(plan.eps)
    print(f"{args.model}: {plan.count('nvfp4')} of {L} linear layers in nvfp4 (gamma {args.gamma:g}), "
          f"{plan.count('fp8')} in fp8; calibrated on {rec['data']} ({rec['tokens']} tokens)")
    print(f"average bits of the linear weights: {8 - 4 * plan.count('nvfp4') / max(1, L):.2f} by layer count "
          f"(8 - 4*gamma), {bits['per_weight_nominal']:.3f} per weight, "
          f"{bits['per_weight_with_scales']:.3f} per weight with scales")
    kinds = eps_by_kind(rec["eps"])
    print("eps by layer type (geometric mean): " + ", ".join(f"{k} {v:.2e}" for k, v in kinds.items()))
    if args.table:
        for n in sorted(rec["eps"], key=rec["eps"].get):
            print(f"  {n:<28} {rec['eps'][n]:.3e}  {plan.formats[n]}")
    print(f"wrote {args.out}")
    return 0
