"""Compile the GEMV / fused FP8 kernels for sm_90 on any machine (no GPU) and print the SASS
instruction mix of their main loop: registers, spills, instructions per weight.

    python bench/kernels_sass.py gemv --fmt 1 --tiles 128x64x4,64x64x4
    python bench/kernels_sass.py w8a8 --tiles 128x256x128x8x3

Uses Triton's bundled ptxas and cuobjdump. The local Triton may lay tiles out differently from
the device's (docs/kernels.md: a 3-D GEMV tile did), so confirm on the device with
``bench/kernels.py --sass-dir``.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter

os.environ["TRITON_INTERPRET"] = "0"

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # last: never shadow
from fpx_arena.kernels.ops import kernel_module  # noqa: E402
from sass_loop import loop_body  # noqa: E402

TOOLS = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")


def load(source: str):
    return kernel_module(False, source)  # the compiled flavour, as on the GPU


def compile_report(fn, sig: dict, consts: dict, num_warps: int, num_stages: int, name: str,
                   weights_per_loop: int | None = None) -> None:
    attrs = {(i,): [["tt.divisibility", 16]] for i, (k, v) in enumerate(sig.items())
             if v.startswith("*") or k in ("N", "K", "stride_xm", "stride_ym")}
    sig = {**sig, **{k: "constexpr" for k in consts}}
    src = ASTSource(fn, sig, constexprs={(list(sig).index(k),): v for k, v in consts.items()}, attrs=attrs)
    ck = triton.compile(src, target=GPUTarget("cuda", 90, 32),
                        options={"num_warps": num_warps, "num_stages": num_stages})
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "k.cubin")
        with open(path, "wb") as f:
            f.write(ck.asm["cubin"])
        sass = subprocess.run([os.path.join(TOOLS, "cuobjdump"), "-sass", path],
                              capture_output=True, text=True).stdout
        res = subprocess.run([os.path.join(TOOLS, "cuobjdump"), "-res-usage", path],
                             capture_output=True, text=True).stdout
    regs = re.search(r"REG:(\d+)", res)
    stack = re.search(r"STACK:(\d+)", res)
    body = loop_body(sass)
    mix = Counter(re.sub(r"^@!?U?P\w+\s+", "", x).split()[0] for x in body)
    per = f", {len(body) / weights_per_loop:.2f} per weight per thread" if weights_per_loop else ""
    print(f"{name}: {regs.group(1) if regs else '?'} registers, stack {stack.group(1) if stack else '?'}, "
          f"shared {ck.metadata.shared} B, loop {len(body)} instructions{per}")
    print("   " + ", ".join(f"{k} {v}" for k, v in mix.most_common(16)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kernel", choices=["gemv", "w8a8"])
    ap.add_argument("--fmt", type=int, default=1, help="gemv: 0 fp8, 1 nvfp4, 2 mxfp4")
    ap.add_argument("--tiles", default=None,
                    help="gemv: BNxBWxWARPS,...; w8a8: BMxBNxBKxWARPSxSTAGES,...")
    args = ap.parse_args()
    if args.kernel == "gemv":
        mod = load("_gemv")
        sig = {"W": "*i32", "KS": "*i32" if args.fmt == 0 else "*u8", "WSCALE": "*fp32", "X": "*bf16",
               "XP": "*i32", "Y": "*bf16", "BIAS": "*bf16", "PART": "*fp32", "LOCK": "*i32", "M": "i32",
               "N": "i32", "K": "i32", "stride_xm": "i32", "stride_ym": "i32", "out_mult": "fp32",
               "SPLIT_K": "i32"}
        for t in (args.tiles or "128x64x4,64x64x4").split(","):
            bn, bw, nw = (int(v) for v in t.split("x"))
            codes = 4 if args.fmt == 0 else 8
            compile_report(mod.gemv_kernel, sig, {"FMT": args.fmt, "BN": bn, "BW": bw, "SPLIT": True,
                                                  "HAS_BIAS": False, "USE_ASM": True, "EVEN": True, "XK": 0},
                           nw, 1, f"gemv fmt {args.fmt} BN={bn} BW={bw} warps={nw}",
                           bn * bw * codes // (32 * nw))
    else:
        mod = load("_gemm")
        sig = {"X": "*bf16", "XQ": "*fp8e4nv", "XS": "*fp32", "W": "*fp8e4nv", "WS": "*fp32", "Y": "*bf16",
               "BIAS": "*bf16", "BAR": "*i32", "M": "i32", "N": "i32", "K": "i32", "stride_xm": "i32",
               "stride_ym": "i32"}
        for t in (args.tiles or "128x256x128x8x3").split(","):
            bm, bn, bk, nw, ns = (int(v) for v in t.split("x"))
            compile_report(mod.w8a8_fused_kernel, sig, {"BM": bm, "BN": bn, "BK": bk, "GROUP_M": 8,
                                                        "QB": 4096, "HAS_BIAS": False, "USE_ASM": True,
                                                        "PROMOTE_K": None},
                           nw, ns, f"w8a8_fused BM={bm} BN={bn} BK={bk} warps={nw} stages={ns}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
