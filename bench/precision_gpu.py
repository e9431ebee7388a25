"""Precision plans on a GPU: the Triton path against the torch reference path, and the
quantized-weight cache's load time against quantizing from scratch.

The model has SmolLM2-135M's shape (30 blocks, dim 576, 9/3 heads, MLP 1536, vocabulary 49152,
tied embeddings) with random weights, saved as an HF folder by ``transformers`` (the real GGUF
is too large to travel to the GPU machine in one call). For fp8, nvfp4, mxfp4 and fpx:0.3:

- logits of the model with every quantized layer on the Triton kernels and on the torch
  reference (``qlinear(..., backend="torch")``: dequantize + fp32 matmul), for prompts of 1, 16
  and 128 tokens (the W8A8 FP8 kernel runs from 64 tokens). Tolerance: the two paths share the
  quantized weights and differ only by accumulation order and rounding inside each layer, so
  their logits must differ by at most 2% relative L2 and at most 4x the bf16 floor (how far
  the dense bf16 model's logits are from the fp32 model's: rounding noise of the same kind).
- load time (median of 3): ``load_model`` with the cache off (read + quantize on the GPU)
  against a cache hit (read the cached safetensors, verify its sha256, no quantization).

Usage: python bench/precision_gpu.py [--out bench/results/precision-<card>.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

PRECISIONS = ("fp8", "nvfp4", "mxfp4", "fpx:0.3")
SMOLLM2_SHAPE = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                     num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                     rope_theta=100000.0, tie_word_embeddings=True)


def build_checkpoint(folder: str, seed: int = 0, std: float = 0.02) -> None:
    """Random weights with the usual LLM init scale (std 0.02; norms near 1), so that the
    network is not chaotic and kernel differences are not amplified beyond what a trained
    model would show; saved by transformers with a small BPE tokenizer."""
    import transformers

    from fpx_arena.llm.synthetic import build_tokenizer, hf_config, randomize

    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(hf_config("llama", **SMOLLM2_SHAPE), dtype=torch.float32)
    randomize(model, seed, std=std)
    model.tie_weights()
    model.save_pretrained(folder, safe_serialization=True)
    build_tokenizer(folder)


def rel(a, b) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true",
                    help="a tiny model on CPU with TRITON_INTERPRET=1 (checks the script, not the numbers)")
    args = ap.parse_args()
    if args.smoke:
        SMOLLM2_SHAPE.update(vocab_size=384, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2)
    from fpx_arena.llm import linear, load_model

    work = tempfile.mkdtemp(prefix="fpx-prec-")
    os.environ.setdefault("FPX_ARENA_CACHE", os.path.join(work, "cache"))
    folder = os.path.join(work, "smollm2-shape")
    t0 = time.perf_counter()
    build_checkpoint(folder)
    print(f"built a random SmolLM2-shaped checkpoint in {time.perf_counter() - t0:.1f}s", flush=True)
    dev = "cpu" if args.smoke else "cuda"
    card = "cpu (smoke)" if args.smoke else torch.cuda.get_device_name(0)
    sync = (lambda: None) if args.smoke else torch.cuda.synchronize
    g = torch.Generator().manual_seed(0)
    prompts = {T: torch.randint(0, SMOLLM2_SHAPE['vocab_size'], (1, T), generator=g) for T in (1, 16, 128)}

    def timed_load(precision, **kw):
        sync()
        t = time.perf_counter()
        m = load_model(folder, precision, dev, **kw)
        sync()
        return m, time.perf_counter() - t

    base, _ = timed_load("bf16")  # also warms CUDA up
    ref_logits = {T: base.logits(ids.to(dev)) for T, ids in prompts.items()}
    # the noise floor: how far bf16 rounding alone moves the logits (dense bf16 vs fp32 model)
    full = load_model(folder, "fp32", dev)
    floor = {str(T): rel(ref_logits[T], full.logits(ids.to(dev))) for T, ids in prompts.items()}
    del full
    bf16_load = statistics.median(timed_load("bf16")[1] for _ in range(args.repeats))
    del base
    rows = []
    for p in PRECISIONS:
        m, first = timed_load(p)  # fpx: calibration here, then the cache is written
        scratch = statistics.median(timed_load(p, qcache=False)[1] for _ in range(args.repeats))
        hits = []
        for _ in range(args.repeats):
            m2, t = timed_load(p)
            assert m2.load_info["qcache"] == "hit", m2.load_info
            hits.append(t)
        cache_bytes = os.path.getsize(m2.load_info["qcache_path"])
        del m2
        per_T = {}
        for T, ids in prompts.items():
            linear.QLINEAR_BACKEND = None
            z_tri = m.logits(ids.to(dev))
            linear.QLINEAR_BACKEND = "torch"
            z_ref = m.logits(ids.to(dev))
            linear.QLINEAR_BACKEND = None
            diff = rel(z_tri, z_ref)
            fmt_err = rel(z_ref, ref_logits[T])
            per_T[str(T)] = {"rel_l2_triton_vs_torch": diff, "max_abs": float((z_tri - z_ref).abs().max()),
                             "rel_l2_quantized_vs_bf16": fmt_err,
                             "top1_agreement": float((z_tri.argmax(-1) == z_ref.argmax(-1)).float().mean()),
                             "bf16_floor": floor[str(T)],
                             "ok": diff <= 0.02 and diff <= 4 * floor[str(T)]}
        bits = m.plan.bits({n: (x.out_features, x.in_features) for n, x in m.linear_layers().items()})
        row = {"precision": p, "n_fp4": m.plan.count("nvfp4") + m.plan.count("mxfp4"), "bits": bits,
               "first_load_s": first, "load_quantize_from_scratch_s": scratch, "load_cache_hit_s": statistics.median(hits),
               "speedup": scratch / statistics.median(hits), "cache_file_mb": cache_bytes / 2 ** 20, "logits": per_T}
        rows.append(row)
        print(f"{p:<8} scratch {scratch:6.2f}s  cache hit {row['load_cache_hit_s']:6.2f}s  "
              + "  ".join(f"T={T}: {v['rel_l2_triton_vs_torch']:.2e} (floor {v['bf16_floor']:.1e}, "
                          f"fmt {v['rel_l2_quantized_vs_bf16']:.1e}) "
                          f"{'ok' if v['ok'] else 'FAIL'}" for T, v in per_T.items()), flush=True)
        partial = os.path.join(os.environ.get("OUT", "."), "precision-gpu-partial.json")
        with open(partial, "w") as f:  # what is done so far, should the run be cut off
            json.dump({"card": card, "bf16_floor": floor, "rows": rows}, f, indent=1)
        del m
        if not args.smoke:
            torch.cuda.empty_cache()
    out = {"card": card, "torch": torch.__version__, "command": "python bench/precision_gpu.py",
           "model": "random weights (std 0.02, norms 1 +- 0.2), SmolLM2-135M shape (HF folder written by transformers, fp32 safetensors)",
           "tolerance": "rel L2(triton - torch) <= 0.02 and <= 4 x the bf16 floor (rel L2 of the dense bf16 "
                        "model's logits against the fp32 model's)",
           "bf16_floor": floor,
           "kernel_tune": os.environ.get("FPX_KERNEL_TUNE", "1"),
           "bf16_load_s": bf16_load, "repeats": args.repeats, "rows": rows,
           "all_ok": all(v["ok"] for r in rows for v in r["logits"].values())}
    try:
        import triton

        out["triton"] = triton.__version__
    except ImportError:
        pass
    path = args.out or os.path.join(os.environ.get("OUT", "."), "precision-gpu.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {path}; all within tolerance: {out['all_ok']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
