"""bf16 greedy decode latency (ms per token, batch 1) of our engine next to Hugging Face
transformers' generate(), on one GPU, in one run.

Shapes: SmolLM2-135M, Llama-3.2-1B and Llama-3-8B, all with random weights (no checkpoint
travels to the GPU machine; decode speed does not depend on the values). Per shape:
- ours, eager: model.decode() per token (Python launches every kernel);
- ours, CUDA graph: the same step captured once and replayed (fpx_arena.llm.cuda_graph);
- ours, torch.compile + CUDA graph (small shapes only, where compile time is short);
- transformers: model.generate(greedy, min_new_tokens = max_new_tokens), per token =
  (time of prompt + N tokens - time of prompt + 1 token) / (N - 1).
All after a 128-token prompt, N = 128 new tokens, median of 3 runs. The floor is the weight
bytes over the card's measured device-to-device copy rate (read + write bytes / time).
Before timing, the SmolLM2 shape checks our logits against transformers' on the same weights
and the graph decode against eager decode.

    python bench/llm_gpu.py [--shapes smollm2-135m,llama-3.2-1b,llama-3-8b] [--out DIR]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import torch

# transformers probes for the Hugging Face `kernels` package by importing the top-level name
# `kernels`; with this checkout on sys.path that would be our kernels/ folder. Let it probe
# before the checkout is on the path (the answer is cached).
import transformers
from transformers.utils import import_utils

import_utils.is_kernels_available()
sys.path.append(str(Path(__file__).resolve().parent.parent))  # last: never shadow installed packages

from fpx_arena.llm.checkpoint import hf_name
from fpx_arena.llm.cuda_graph import GraphDecoder
from fpx_arena.llm.model import ModelConfig, Transformer, init_random

PROMPT, NEW, REPS = 128, 128, 3


def hf_config(c: ModelConfig):
    return transformers.LlamaConfig(
        vocab_size=c.vocab_size, hidden_size=c.dim, intermediate_size=c.intermediate_size,
        num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads, num_key_value_heads=c.n_kv_heads,
        head_dim=c.head_dim, max_position_embeddings=c.max_position, rms_norm_eps=c.norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": c.rope_theta, **(c.rope_scaling or {})},
        tie_word_embeddings=c.tie_embeddings, bos_token_id=None, eos_token_id=None, pad_token_id=0)


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_ours(model, mode: str) -> list[float]:
    """ms per token of greedy decoding (argmax read back each step, as generation does)."""
    cache = model.new_cache(PROMPT + NEW + 32)
    ids = torch.randint(0, model.config.vocab_size, (PROMPT,), generator=torch.Generator().manual_seed(0))
    step = None
    if mode != "eager":
        model.prefill(ids, cache)
        step = GraphDecoder(model, cache, compile=mode == "compile+graph")
    runs = []
    for rep in range(REPS + 1):  # the first run warms up
        model.reset(cache)
        logits = model.prefill(ids, cache)[0]
        token = int(logits.argmax())
        sync()
        t0 = time.perf_counter()
        for _ in range(NEW):
            logits = step(token) if step else model.decode(token, cache)[0]
            token = int(logits.argmax())
        sync()
        if rep:
            runs.append((time.perf_counter() - t0) * 1e3 / NEW)
    return runs


def time_hf(hf, vocab: int, device) -> list[float]:
    ids = torch.randint(0, vocab, (1, PROMPT), generator=torch.Generator().manual_seed(0)).to(device)

    def gen(n):
        sync()
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                              do_sample=False, eos_token_id=None, pad_token_id=0)
        sync()
        assert out.shape[1] == PROMPT + n
        return (time.perf_counter() - t0) * 1e3

    gen(8)
    return [(gen(NEW) - gen(1)) / (NEW - 1) for _ in range(REPS)]


def build_ours(c: ModelConfig, device):
    model = Transformer(c, device=device, dtype=torch.bfloat16).eval()
    init_random(model, seed=0)
    return model


def build_hf_from(model: Transformer | None, c: ModelConfig, device):
    """transformers' Llama of the same shape, bf16, with our weights copied in (or its own
    random initialisation when model is None)."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            hf = transformers.LlamaForCausalLM(hf_config(c)).eval()
    finally:
        torch.set_default_dtype(default)
    if model is not None:
        state = {hf_name(k): v for k, v in model.state_dict().items()}
        if c.tie_embeddings:
            state.pop("lm_head.weight", None)
        missing, unexpected = hf.load_state_dict(state, strict=False)
        assert set(missing) <= {"lm_head.weight"} and not unexpected, (missing, unexpected)
        hf.tie_weights()
    return hf


def check_against_hf(device) -> dict:
    """SmolLM2 shape, shared random weights: our bf16 logits vs transformers'; graph decode vs
    eager decode vs the full forward, in bf16 and in fp32 (where they must agree to ~1e-6:
    in bf16 every path rounds differently, and the bf16 figures show how much)."""
    c = ModelConfig.preset("smollm2-135m")
    ours = build_ours(c, device)
    hf = build_hf_from(ours, c, device)
    ids = torch.randint(0, c.vocab_size, (1, 64), generator=torch.Generator().manual_seed(1)).to(device)
    with torch.inference_mode():
        ref = hf(ids).logits.float()
    out = {"logits_rel_err_vs_transformers_bf16": float((ours.logits(ids) - ref).norm() / ref.norm())}
    del hf
    for dtype in (torch.bfloat16, torch.float32):
        model = ours if dtype == torch.bfloat16 else ours.float()  # .to() would also round inv_freq
        model.dtype = dtype  # the KV cache's dtype
        full = model.logits(ids)[0]
        cache, eager_cache = model.new_cache(96), model.new_cache(96)
        model.prefill(ids[0, :32], cache)
        graph = GraphDecoder(model, cache)
        model.prefill(ids[0, :32], eager_cache)
        g_vs_e = e_vs_full = 0.0
        for t in range(32, 64):
            g = graph(ids[0, t]).float()
            e = model.decode(int(ids[0, t]), eager_cache)[0]
            g_vs_e = max(g_vs_e, float((g - e).norm() / e.norm()))
            e_vs_full = max(e_vs_full, float((e - full[t]).norm() / full[t].norm()))
        tag = "bf16" if dtype == torch.bfloat16 else "fp32"
        out[f"graph_vs_eager_decode_max_rel_err_{tag}"] = g_vs_e
        out[f"eager_decode_vs_full_forward_max_rel_err_{tag}"] = e_vs_full
    return out


def copy_rate(device) -> float:
    x = torch.empty(2 ** 28, dtype=torch.float32, device=device)  # 1 GiB
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    sync()
    t0 = time.perf_counter()
    for _ in range(20):
        y.copy_(x)
    sync()
    rate = 2 * x.numel() * 4 * 20 / (time.perf_counter() - t0)
    del x, y
    return rate


def card_slug(name: str) -> str:
    m = re.search(r"(H100|H200|A100|L40S|B200|GH200)", name, re.IGNORECASE)
    return m.group(1).lower() if m else re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="smollm2-135m,llama-3.2-1b,llama-3-8b")
    ap.add_argument("--compile-shapes", default="smollm2-135m,llama-3.2-1b",
                    help="shapes also timed with torch.compile + CUDA graph (last: compiling is slow)")
    ap.add_argument("--out", default=os.environ.get("OUT") or "bench/results")
    ap.add_argument("--check-only", action="store_true", help="only the correctness checks")
    args = ap.parse_args()
    device = torch.device("cuda")
    card = torch.cuda.get_device_name(device)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"llm-gpu-{card_slug(card)}.json")
    rate = copy_rate(device)
    result = {"card": card, "torch": torch.__version__, "transformers": transformers.__version__,
              "cuda": torch.version.cuda, "command": "python " + " ".join(sys.argv),
              "prompt_tokens": PROMPT, "new_tokens": NEW, "reps": REPS, "statistic": "median ms/token",
              "weights": "random (shapes of the named models), bf16",
              "copy_rate_TBps": rate / 1e12, "shapes": {}}
    try:
        result["check"] = check_against_hf(device)
    except Exception as e:  # keep timing even if the check itself breaks
        result["check"] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
    print(f"{card}: copy {rate / 1e12:.2f} TB/s; check {result['check']}", flush=True)
    if args.check_only:
        return

    def save():  # after every step: a run cut short still leaves its numbers
        with open(path, "w") as f:
            json.dump(result, f, indent=2)

    def run_ours(name, row, model, mode):
        try:
            t0 = time.perf_counter()
            runs = time_ours(model, mode)
            row[f"ours_{mode}_ms"] = statistics.median(runs)
            row[f"ours_{mode}_runs"] = runs
            row[f"ours_{mode}_setup_s"] = time.perf_counter() - t0 - sum(runs) * NEW / 1e3 * (REPS + 1) / REPS
        except Exception as e:  # report, keep going: one failed variant must not lose the run
            row[f"ours_{mode}_error"] = f"{type(e).__name__}: {str(e)[:300]}"
        print(name, mode, row.get(f"ours_{mode}_ms", row.get(f"ours_{mode}_error")), flush=True)
        save()

    def free():
        gc.collect()
        torch.cuda.empty_cache()

    for name in args.shapes.split(","):
        c = ModelConfig.preset(name)
        model = build_ours(c, device)
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        row = result["shapes"][name] = {"params": sum(p.numel() for p in model.parameters()),
                                        "weight_bytes": weight_bytes, "floor_ms": weight_bytes / rate * 1e3}
        for mode in ("eager", "graph"):
            run_ours(name, row, model, mode)
        del model
        free()
        hf = build_hf_from(None, c, device)
        runs = time_hf(hf, c.vocab_size, device)
        row["hf_generate_ms"], row["hf_generate_runs"] = statistics.median(runs), runs
        print(name, "hf", row["hf_generate_ms"], flush=True)
        save()
        del hf
        free()
    for name in filter(None, args.compile_shapes.split(",")):
        model = build_ours(ModelConfig.preset(name), device)
        run_ours(name, result["shapes"][name], model, "compile+graph")
        del model
        free()

    print(f"\n{card}, bf16, batch 1, ms/token (median of {REPS}), {PROMPT}-token prompt, {NEW} new tokens")
    print(f"{'shape':<14}{'floor':>8}{'eager':>9}{'graph':>9}{'compile':>9}{'HF gen':>9}{'HF/graph':>9}")
    for name, r in result["shapes"].items():
        def f(k, r=r):
            return f"{r[k]:9.2f}" if k in r else f"{'-':>9}"
        speedup = r["hf_generate_ms"] / r["ours_graph_ms"] if "ours_graph_ms" in r else float("nan")
        print(f"{name:<14}{r['floor_ms']:8.2f}{f('ours_eager_ms')}{f('ours_graph_ms')}"
              f"{f('ours_compile+graph_ms')}{f('hf_generate_ms')}{speedup:9.1f}")
    print("wrote", path)


if __name__ == "__main__":
    main()
