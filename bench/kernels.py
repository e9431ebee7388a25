"""Benchmark of the FP8/NVFP4/MXFP4 kernels against cuBLAS bf16 and torch._scaled_mm, on one card.

    python bench/kernels.py                       # Llama-3-8B and 1B shapes, all M, all formats
    python bench/kernels.py --shapes 8b --ms 1,16 --out bench/results/kernels-h100.json

Every variant runs in this one process on one card: weights (and tokens) are rotated over
enough copies to leave L2 cold, 20 calls are captured in a CUDA graph and replayed (so the
numbers are GPU time without Python overhead), and the median of 7 replays / 20 is reported.
The card's copy bandwidth (device-to-device, bytes read + written) is measured in the same run.
Writes JSON (all numbers, the configs the tuner chose, correctness errors) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time

import torch

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # last: never shadow installed packages

from fpx_arena.kernels import ops, qlinear, quantize_weight  # noqa: E402
from fpx_arena.kernels.formats import QuantizedWeight  # noqa: E402
from sass_loop import loop_body  # noqa: E402

SHAPES = {
    "8b": [("qkv", 6144, 4096), ("o", 4096, 4096), ("gate_up", 28672, 4096),
           ("down", 4096, 14336), ("lm_head", 128256, 4096)],
    "1b": [("qkv", 3072, 2048), ("o", 2048, 2048), ("gate_up", 16384, 2048),
           ("down", 2048, 8192), ("lm_head", 128256, 2048)],
}
MS = (1, 4, 16, 64, 256, 1024, 4096)
REPS, CALLS = 7, 20


def graph_time_us(fn, n_inputs: int) -> float:
    """Median GPU time of one call: CALLS calls (input i % n_inputs) in a CUDA graph."""
    for i in range(3):
        fn(i % n_inputs)
    torch.cuda.synchronize()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for i in range(2):
            fn(i % n_inputs)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(CALLS):
            fn(i % n_inputs)
    g.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(REPS):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1000 / CALLS)
    del g
    return sorted(times)[len(times) // 2]


def copy_bandwidth() -> float:
    """Device-to-device copy of 2 GiB, bytes read + written per second (median of 10)."""
    x = torch.empty(2 ** 30, dtype=torch.float16, device="cuda").normal_()
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    ts = []
    for _ in range(10):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        y.copy_(x)
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) / 1000)
    t = sorted(ts)[5]
    del x, y
    torch.cuda.empty_cache()
    return 2 * 2 ** 31 / t


def clone_qw(qw: QuantizedWeight) -> QuantizedWeight:
    c = lambda t: None if t is None else t.clone()   # noqa: E731
    return QuantizedWeight(qw.fmt, qw.shape, c(qw.codes), c(qw.scales), c(qw.kernel_scales),
                           c(qw.global_scale), qw.out_multiplier)


def copies_for(nbytes: int, l2: int) -> int:
    return max(1, min(48, math.ceil(3 * l2 / max(nbytes, 1))))


def fp8_rowwise(t: torch.Tensor):
    amax = t.float().abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
    s = amax / 448.0
    return (t.float() / s).clamp(-448, 448).to(torch.float8_e4m3fn), s


def sass_summary(out_dir: str) -> list:
    """Registers, spills and the loop's instruction mix of every compiled wq/w8a8 kernel."""
    import re
    from collections import Counter
    rows = []
    for (source, interpret), mod in ops._modules.items():
        if interpret:
            continue
        for kname in ("wq_matmul_kernel", "w8a8_matmul_kernel", "act_quant_fp8_kernel",
                      "gemv_kernel", "w8a8_fused_kernel"):
            fn = getattr(mod, kname, None)
            if fn is None:
                continue
            caches = getattr(fn, "device_caches", None) or {}
            kernels = []
            for dev_cache in caches.values():
                cache = dev_cache[0] if isinstance(dev_cache, tuple) else dev_cache
                kernels += list(cache.items())
            if not kernels:
                kernels = [kv for c in getattr(fn, "cache", {}).values() for kv in c.items()]
            for i, (key, k) in enumerate(kernels):
                try:
                    path = os.path.join(out_dir, f"{kname}_{i}.cubin")
                    with open(path, "wb") as f:
                        f.write(k.asm["cubin"])
                    sass = subprocess.run(["cuobjdump", "-sass", path], capture_output=True,
                                          text=True, timeout=60).stdout
                    os.remove(path)
                    body = loop_body(sass)
                    mix = Counter(re.sub(r"^@!?U?P\w+\s+", "", x).split()[0].split(".")[0]
                                  for x in body)
                    rows.append({"kernel": kname, "key": str(key)[-400:],
                                 "num_warps": k.metadata.num_warps,
                                 "num_stages": getattr(k.metadata, "num_stages", None),
                                 "regs": getattr(k, "n_regs", None),
                                 "spills": getattr(k, "n_spills", None),
                                 "shared": k.metadata.shared, "loop_instructions": len(body),
                                 "loop_mix": dict(mix.most_common(24))})
                except Exception as e:   # the summary is diagnostics; never fail the run
                    rows.append({"kernel": kname, "error": repr(e)[:200]})
    return rows


def bench_format(f, qs, w_ref, xs, res, errs, configs, m, n, k) -> None:
    """Time qlinear for one format (and, for FP8 prefill, the FP8 x FP8 kernel alone); record
    the relative error against the fp32 product of the dequantized weight (M <= 1024)."""
    from fpx_arena.kernels import decode_e4m3, quantize_fp8_tokens
    nx = len(xs)
    y = qlinear(xs[0], qs[0])                       # tunes (first call)
    torch.cuda.synchronize()
    chosen = ops.last_choice.get("config")
    configs[f] = str(chosen)
    act = ops.uses_fp8_activations(qs[0], m, None)
    if m <= 1024:
        ref_x = xs[0].float()
        if act:
            q_, s_ = quantize_fp8_tokens(xs[0])
            ref_x = decode_e4m3(q_) * s_[:, None]
        ref = ref_x @ w_ref.t()
        errs[f] = float((y.float() - ref).norm() / ref.norm())
    t = graph_time_us(lambda i: qlinear(xs[i % nx], qs[i % len(qs)]), len(qs) * nx)
    res[f] = (t, qs[0].nbytes + 2 * m * k + 2 * m * n)
    if f == "fp8" and act:
        xq, xsc = ops.quantize_act_fp8(xs[0])
        yy = torch.empty(m, n, device=xs[0].device, dtype=torch.bfloat16)
        tg = graph_time_us(lambda i: ops._launch_w8a8(ops.kernel_module(False), xq, xsc,
                                                      qs[i % len(qs)], None, yy, chosen), len(qs))
        res["fp8_gemm_only"] = (tg, qs[0].nbytes + m * k + 4 * m + 2 * m * n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="8b,1b")
    ap.add_argument("--ms", default=",".join(map(str, MS)))
    ap.add_argument("--formats", default="fp8,nvfp4,mxfp4")
    ap.add_argument("--budget-s", type=float, default=420.0,
                    help="stop starting new (shape, M) cases after this many seconds")
    ap.add_argument("--out", default=None)
    ap.add_argument("--sass-dir", default=None, help="also write the SASS summary (needs cuobjdump)")
    ap.add_argument("--report", default=None, metavar="JSON",
                    help="print the markdown tables of a results file and exit (no GPU needed)")
    ap.add_argument("--profile", default=None, metavar="FMT:NxK:M",
                    help="only run one qlinear 30 times (for ncu), e.g. nvfp4:28672x4096:1")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            print(markdown_report(json.load(f)))
        return 0
    if not torch.cuda.is_available():
        print("bench/kernels.py needs a CUDA GPU", file=sys.stderr)
        return 2
    if args.profile:
        fmt, nk, m = args.profile.split(":")
        n, k = (int(v) for v in nk.split("x"))
        qw = quantize_weight(torch.randn(n, k, device="cuda") * 0.02, fmt)
        x = torch.randn(int(m), k, device="cuda").to(torch.bfloat16)
        for _ in range(30):
            qlinear(x, qw)
        torch.cuda.synchronize()
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    t0 = time.time()
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    l2 = getattr(props, "L2_cache_size", 50 * 2 ** 20)
    import triton
    info = {"card": props.name, "sms": props.multi_processor_count, "l2_bytes": l2,
            "torch": torch.__version__, "triton": triton.__version__, "python": platform.python_version(),
            "command": " ".join(["python"] + sys.argv), "calls_per_graph": CALLS, "reps": REPS}
    bw = copy_bandwidth()
    info["copy_bandwidth_GBps"] = bw / 1e9
    print(f"# {props.name}: copy bandwidth {bw / 1e12:.2f} TB/s (read+write)", flush=True)
    fmts = [f for f in args.formats.split(",") if f]
    ms = [int(m) for m in args.ms.split(",")]
    rows, skipped, failures = [], [], []
    torch.manual_seed(0)
    for set_name in args.shapes.split(","):
        for name, n, k in SHAPES[set_name]:
            if time.time() - t0 > args.budget_s:
                skipped.append(f"{set_name}/{name}")
                continue
            w = (torch.randn(n, k, device=dev) * 0.02).to(torch.bfloat16)
            nb = copies_for(2 * n * k, l2)
            w_bf16 = [w] + [w.clone() for _ in range(nb - 1)]
            wf8, ws8 = fp8_rowwise(w)
            nf = copies_for(n * k, l2)
            w_f8 = [wf8] + [wf8.clone() for _ in range(nf - 1)]
            ws8 = ws8.reshape(1, n).contiguous()
            qws = {}
            for f in fmts:
                q = quantize_weight(w, f)
                qws[f] = [q] + [clone_qw(q) for _ in range(copies_for(q.nbytes, l2) - 1)]
            w_ref = {f: qws[f][0].dequantize(torch.float32) for f in fmts}
            for m in ms:
                if time.time() - t0 > args.budget_s:
                    skipped.append(f"{set_name}/{name}/M={m}")
                    continue
                nx = 4 if m * k * 2 < l2 // 4 else 1
                xs = [(torch.randn(m, k, device=dev)).to(torch.bfloat16) for _ in range(nx)]
                mp = max(16, -(-m // 16) * 16)          # cuBLASLt FP8 needs M % 16 == 0
                xf8 = []
                for x in xs:
                    xp = torch.zeros(mp, k, device=dev, dtype=torch.bfloat16)
                    xp[:m] = x
                    xf8.append(fp8_rowwise(xp))
                row_base = {"set": set_name, "shape": name, "N": n, "K": k, "M": m}
                res = {}
                res["bf16"] = (graph_time_us(lambda i: xs[i % nx] @ w_bf16[i % nb].t(), nb * nx),
                               2 * n * k + 2 * m * k + 2 * m * n)
                try:
                    res["scaled_mm"] = (graph_time_us(lambda i: torch._scaled_mm(
                        xf8[i % nx][0], w_f8[i % nf].t(), scale_a=xf8[i % nx][1], scale_b=ws8,
                        out_dtype=torch.bfloat16), nf * nx),
                        n * k + 4 * n + mp * k + 4 * mp + 2 * mp * n)
                except Exception as e:
                    failures.append({**row_base, "variant": "scaled_mm", "error": repr(e)[:300]})
                errs, configs = {}, {}
                for f in fmts:
                    try:
                        bench_format(f, qws[f], w_ref[f], xs, res, errs, configs, m, n, k)
                    except Exception as e:
                        failures.append({**row_base, "variant": f, "error": repr(e)[:600]})
                        print("FAILED", f, row_base, repr(e)[:300], flush=True)
                        torch.cuda.synchronize()
                base = res["bf16"][0]
                for var, (t, nbytes) in res.items():
                    rows.append({**row_base, "variant": var, "us": t,
                                 "GBps": nbytes / t / 1e3, "TFLOPs": 2 * m * n * k / t / 1e6,
                                 "frac_copy_bw": nbytes / t / 1e3 / (bw / 1e9),
                                 "speedup_vs_bf16": base / t, "rel_err": errs.get(var),
                                 "config": configs.get(var.replace("_gemm_only", ""))})
                line = " ".join(f"{v}={res[v][0]:.1f}" for v in res)
                print(f"{set_name:3s} {name:8s} {n:6d}x{k:<6d} M={m:<5d} us: {line}", flush=True)
            w_bf16 = w_f8 = qws = w_ref = None      # free before the next shape
            torch.cuda.empty_cache()
            # written after every shape, so a run stopped by a time limit keeps what it measured
            out = write_results(args.out, info, rows, skipped, failures, t0)
    out = write_results(args.out, info, rows, skipped, failures, t0)
    if args.sass_dir:
        os.makedirs(args.sass_dir, exist_ok=True)
        out["sass"] = sass_summary(args.sass_dir)
        write_results(args.out, info, rows, skipped, failures, t0, extra={"sass": out["sass"]})
    print_table(out["summary"], info)
    return 0


def write_results(path, info, rows, skipped, failures, t0, extra=None) -> dict:
    out = {"info": info, "rows": rows, "summary": summarize(rows), "skipped": skipped,
           "failures": failures, "tune_log": ops.tune_log, "elapsed_s": time.time() - t0,
           **(extra or {})}
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump(out, f, indent=1)
        os.replace(path + ".tmp", path)
    return out


def summarize(rows: list) -> dict:
    """Median over the Llama-3-8B shapes of the speedup vs cuBLAS bf16 and of the copy-bandwidth
    fraction, per variant and M (the issue's targets are stated this way)."""
    out = {}
    for set_name in ("8b", "1b"):
        for m in sorted({r["M"] for r in rows}):
            for var in sorted({r["variant"] for r in rows}):
                sel = [r for r in rows if r["set"] == set_name and r["M"] == m and r["variant"] == var]
                if not sel:
                    continue
                sp = sorted(r["speedup_vs_bf16"] for r in sel)
                fb = sorted(r["frac_copy_bw"] for r in sel)
                sm = [r for r in rows if r["set"] == set_name and r["M"] == m
                      and r["variant"] == "scaled_mm"]
                vs_sm = sorted(s["us"] / r["us"] for r in sel for s in sm
                               if s["shape"] == r["shape"])
                med = lambda v: (v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2) if v else None  # noqa: E731
                out[f"{set_name}|M={m}|{var}"] = {"median_speedup_vs_bf16": med(sp),
                                                  "median_frac_copy_bw": med(fb),
                                                  "median_vs_scaled_mm": med(vs_sm), "n": len(sel)}
    return out


def print_table(summary: dict, info: dict) -> None:
    print(f"\n# {info['card']}, copy {info['copy_bandwidth_GBps'] / 1e3:.2f} TB/s; median over "
          f"shapes: speedup vs cuBLAS bf16 / fraction of copy bandwidth / vs _scaled_mm")
    for key, v in summary.items():
        if "|bf16" in key:
            continue
        sm = v["median_vs_scaled_mm"]
        print(f"{key:28s} x{v['median_speedup_vs_bf16']:.2f}  bw {v['median_frac_copy_bw']:.2f}"
              + (f"  vs_smm {sm:.2f}" if sm else ""))


def markdown_report(res: dict) -> str:
    """Tables for docs/kernels.md: per-shape microseconds and the target summary."""
    info = res["info"]
    lines = [f"Card: {info['card']} ({info['sms']} SMs), torch {info['torch']}, triton "
             f"{info['triton']}; copy bandwidth {info['copy_bandwidth_GBps'] / 1e3:.2f} TB/s "
             f"(read + write). Command: `{info['command']}`.", ""]
    variants = ["bf16", "scaled_mm", "fp8", "fp8_gemm_only", "nvfp4", "mxfp4"]
    for set_name in ("8b", "1b"):
        rows = [r for r in res["rows"] if r["set"] == set_name]
        if not rows:
            continue
        lines += [f"**{'Llama-3-8B' if set_name == '8b' else 'Llama-3.2-1B'}**, median us per call "
                  "(x speedup vs cuBLAS bf16; fraction of copy bandwidth)", "",
                  "| shape (N x K) | M | " + " | ".join(variants) + " |",
                  "|---|---|" + "---|" * len(variants)]
        for (shape, n, k, m) in sorted({(r["shape"], r["N"], r["K"], r["M"]) for r in rows},
                                       key=lambda t: (-t[1] * t[2], t[3])):
            cells = []
            for v in variants:
                r = [x for x in rows if x["shape"] == shape and x["M"] == m and x["variant"] == v]
                cells.append(f"{r[0]['us']:.1f} (x{r[0]['speedup_vs_bf16']:.2f}; "
                             f"{r[0]['frac_copy_bw']:.2f})" if r else "")
            lines.append(f"| {shape} {n}x{k} | {m} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Medians over the five shapes of a model:", "",
              "| model, M, variant | speedup vs bf16 | fraction of copy bw | vs _scaled_mm |",
              "|---|---|---|---|"]
    for key, v in res["summary"].items():
        if key.endswith("|bf16"):
            continue
        sm = v["median_vs_scaled_mm"]
        lines.append(f"| {key.replace('|', ', ')} | {v['median_speedup_vs_bf16']:.2f} | "
                     f"{v['median_frac_copy_bw']:.2f} | {sm:.2f} |" if sm else
                     f"| {key.replace('|', ', ')} | {v['median_speedup_vs_bf16']:.2f} | "
                     f"{v['median_frac_copy_bw']:.2f} | |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
