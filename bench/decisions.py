"""Decision latency at model shapes people deploy, every precision in one process on one card.

For each shape (random weights of the shape, built on the GPU: no download) and precision
(bf16, fp8, nvfp4, mxfp4, fpx:0.5), one row of bench/results/decisions-<card>.json:

- weight_bytes: what one decode step streams (every linear weight with its scales, norms);
  floor_ms = weight_bytes / the card's measured copy rate (read + write of a large buffer);
- decode_ms: one token from a replayed CUDA graph of the fused decode step, at a ~330-token
  cache (median over 32 steps, 5 repeats); kernels_per_decode_step: CUDA kernels one eager
  call of that step launches (torch.profiler), and per layer; step_kernel_us: their device
  time summed by kernel name (eager launches, so each kernel's own time, not the gaps);
- append_ms: 16, 64 and 256 prompt tokens appended onto a 320-token cache (graph replay);
- decision_ms: append 64 tokens onto the 320-token cache, then generate 16 greedily, next
  token picked on the device, one read-back (what a free-mode agent decision costs);
- correctness: the fused step's logits against the eager step (rel. L2), the same greedy token.

Then transformers bf16 making the same decision (384-token prompt, 16 new tokens, greedy,
eager generate) on the same card. The decision samples also go to a latency profile file
(fpx_arena/data/profiles/decisions-<card>.json, the format fpx_arena/latency.py reads).

    python bench/decisions.py [--shapes qwen2.5-3b,llama-3-8b,qwen2.5-14b] [--precisions ...]
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
# bench/ first on the path would make bench/kernels.py the `kernels` that transformers probes for
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.append(os.path.dirname(_HERE))  # last: never shadow installed packages

import torch  # noqa: E402

from fpx_arena.llm.cuda_graph import GraphGenerator, decode_logits  # noqa: E402
from fpx_arena.llm.model import ModelConfig, Transformer, rope_inv_freq  # noqa: E402
from fpx_arena.llm.plans import RandomSource  # noqa: E402

SHAPES = {
    "qwen2.5-3b": dict(arch="qwen2", vocab_size=151936, dim=2048, n_layers=36, n_heads=16, n_kv_heads=2,
                       head_dim=128, intermediate_size=11008, rope_theta=1e6, max_position=32768,
                       tie_embeddings=True, qkv_bias=True, norm_eps=1e-6),
    "llama-3-8b": dict(arch="llama", vocab_size=128256, dim=4096, n_layers=32, n_heads=32, n_kv_heads=8,
                       head_dim=128, intermediate_size=14336, rope_theta=500000.0, max_position=8192),
    "qwen2.5-14b": dict(arch="qwen2", vocab_size=152064, dim=5120, n_layers=48, n_heads=40, n_kv_heads=8,
                        head_dim=128, intermediate_size=13824, rope_theta=1e6, max_position=32768,
                        qkv_bias=True, norm_eps=1e-5),
}
# a small shape for a quick check of this script (on a CPU: TRITON_INTERPRET=1 --device cpu)
SHAPES["tiny"] = dict(arch="qwen2", vocab_size=512, dim=128, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=32,
                      intermediate_size=256, rope_theta=1e6, max_position=2048, qkv_bias=True, tie_embeddings=True)
PRECISIONS = ["bf16", "fp8", "nvfp4", "mxfp4", "fpx:0.5"]
DEVICE = "cuda"
CONTEXT, APPEND, NEW = 320, 64, 16


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def timed(fn, reps: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    sync()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def copy_bandwidth() -> float:
    """Bytes per second of a 2 GiB device copy, read + write counted (median of 20)."""
    n = 1 << 30 if DEVICE == "cuda" else 1 << 24
    src = torch.full((n,), 1.5, dtype=torch.bfloat16, device=DEVICE)
    dst = torch.empty_like(src)
    ms = statistics.median(timed(lambda: dst.copy_(src), 20))
    del src, dst
    return 2 * n * 2 / (ms / 1e3)


def count_kernels(fn) -> tuple[int, dict]:
    """CUDA kernels one call of fn launches, and their summed device time (us) by kernel name
    (the names shortened to 60 characters), largest first."""
    from torch.profiler import ProfilerActivity, profile

    if DEVICE != "cuda":
        return 0, {}  # kernels are a GPU notion (tests/test_llm_fastpath.py counts operations on a CPU)
    fn()
    sync()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        sync()
    events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA
              and not e.name.startswith(("Memcpy", "Memset"))]
    by_name: dict = {}
    for e in events:
        key = e.name[:60]
        by_name[key] = by_name.get(key, 0.0) + e.device_time
    return len(events), dict(sorted(((k, round(v, 1)) for k, v in by_name.items()), key=lambda kv: -kv[1]))


def rel(a, b) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def build_model(shape: str, seed: int = 0) -> Transformer:
    cfg = ModelConfig(name=shape, **SHAPES[shape])
    with torch.device("meta"):
        model = Transformer(cfg, dtype=torch.bfloat16)
    model.weight_source = RandomSource(cfg, seed=seed, device=DEVICE)
    model.inv_freq = rope_inv_freq(cfg).to(DEVICE)
    return model.eval()


def measure_plan(model, precision: str, args, rng) -> tuple[dict, list[float]]:
    t0 = time.perf_counter()
    name = model.add_plan(precision)
    model.use_plan(name)
    build_s = time.perf_counter() - t0
    cfg = model.config
    vocab = cfg.vocab_size
    ids = lambda n: torch.randint(0, vocab, (n,), generator=rng).tolist()  # noqa: E731
    prompt = ids(CONTEXT)
    row = {"precision": precision, "plan": name, "weight_bytes": model.weight_bytes(name),
           "resident_bytes": model.plan_bytes(name), "build_s": round(build_s, 2)}
    cache = model.new_cache(1024)
    model.prefill(prompt, cache)
    # correctness: the fused step (graph body) against the model's eager static step
    tok = torch.tensor([prompt[-1]], device=DEVICE)
    slot = torch.tensor([CONTEXT], device=DEVICE)
    with torch.inference_mode():
        model.eager_decode = True
        ref = decode_logits(model, cache, tok, slot).float()
        model.eager_decode = False
        got = decode_logits(model, cache, tok, slot).float()
    row["fused_vs_eager_rel"] = rel(got, ref)
    row["fused_same_argmax"] = bool(int(got.argmax()) == int(ref.argmax()))
    with torch.inference_mode():
        row["kernels_per_decode_step"], row["step_kernel_us"] = count_kernels(
            lambda: decode_logits(model, cache, tok, slot))
    row["kernels_per_layer"] = round(row["kernels_per_decode_step"] / cfg.n_layers, 2)

    gen = GraphGenerator(model, cache, max_new=64, max_width=256)
    # appends of 16, 64, 256 tokens onto the 320-token cache
    row["append_ms"] = {}
    for n in (16, 64, 256):
        tail = ids(n)

        def append():
            cache.truncate(CONTEXT)
            gen.append(tail)
        row["append_ms"][str(n)] = statistics.median(timed(append, args.reps))
    # decode: 32 replayed steps after a 16-token append (cache ~336)
    tail16 = ids(16)

    def steps():
        gen.decode_steps(32)
    cache.truncate(CONTEXT)
    gen.append(tail16)
    per = []
    for _ in range(5):
        cache.truncate(CONTEXT)
        gen.append(tail16)
        sync()
        t = time.perf_counter()
        steps()
        sync()
        per.append((time.perf_counter() - t) * 1e3 / 32)
    row["decode_ms"] = statistics.median(per)
    # the decision: append 64, generate 16, one read-back
    samples = []
    tails = [ids(APPEND) for _ in range(args.decisions)]
    for i in range(args.decisions + 2):
        cache.truncate(CONTEXT)
        sync()
        t = time.perf_counter()
        out = gen(tails[i % len(tails)], NEW)
        sync()
        if i >= 2:
            samples.append((time.perf_counter() - t) * 1e3)
    assert len(out) == NEW
    row["decision_ms"] = statistics.median(samples)
    row["decision_p90_ms"] = sorted(samples)[int(0.9 * (len(samples) - 1))]
    del gen, cache
    return row, samples


def hf_decision(shape: str, args, rng) -> dict:
    """transformers bf16, the same shape (random weights), eager greedy generate of 16 tokens
    after a 384-token prompt."""
    import transformers

    c = SHAPES[shape]
    kw = dict(vocab_size=c["vocab_size"], hidden_size=c["dim"], intermediate_size=c["intermediate_size"],
              num_hidden_layers=c["n_layers"], num_attention_heads=c["n_heads"],
              num_key_value_heads=c["n_kv_heads"], head_dim=c["head_dim"], rope_theta=c["rope_theta"],
              max_position_embeddings=c["max_position"], tie_word_embeddings=c.get("tie_embeddings", False),
              rms_norm_eps=c.get("norm_eps", 1e-5))
    cls = transformers.Qwen2Config if c["arch"] == "qwen2" else transformers.LlamaConfig
    config = cls(**kw)
    with torch.device(DEVICE):
        hf = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).eval()
    prompt = torch.randint(0, c["vocab_size"], (1, CONTEXT + APPEND), generator=rng).to(DEVICE)

    def run():
        with torch.inference_mode():
            hf.generate(prompt, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, pad_token_id=0)
    ms = timed(run, 3, warmup=1)
    del hf
    if DEVICE == "cuda":
        torch.cuda.empty_cache()
    return {"decision_ms": statistics.median(ms), "samples_ms": ms, "transformers": transformers.__version__,
            "how": "AutoModelForCausalLM bf16 (sdpa), generate(do_sample=False, 16 new tokens) after 384 tokens"}


def card_tag(name: str) -> str:
    if name == "cpu":
        return "cpu"
    for tag in ("H200", "H100", "A100", "L40S", "L4"):
        if tag in name:
            return tag.lower()
    return name.split()[-1].lower()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--precisions", default=",".join(PRECISIONS))
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--decisions", type=int, default=20)
    ap.add_argument("--no-hf", action="store_true")
    ap.add_argument("--out", default=None, help="default bench/results/decisions-<card>.json (rows merged)")
    ap.add_argument("--profiles", default=None, help="default fpx_arena/data/profiles/decisions-<card>.json")
    ap.add_argument("--device", default="cuda", help="cuda; cpu only to check the script (with TRITON_INTERPRET=1)")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    card = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "cpu"
    tag = card_tag(card)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = args.out or os.path.join(root, "bench", "results", f"decisions-{tag}.json")
    prof_path = args.profiles or os.path.join(root, "fpx_arena", "data", "profiles", f"decisions-{tag}.json")
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    bw = copy_bandwidth()
    print(f"{card}: copy {bw / 1e12:.2f} TB/s", flush=True)
    result = {"card": card, "copy_bytes_per_s": bw, "torch": torch.__version__, "command": command,
              "context": CONTEXT, "append": APPEND, "new_tokens": NEW, "rows": []}
    if os.path.isfile(out):
        with open(out) as f:
            old = json.load(f)
        result["rows"] = [r for r in old.get("rows", []) if r["shape"] not in args.shapes.split(",")]
    profiles = []
    if os.path.isfile(prof_path):
        with open(prof_path) as f:
            profiles = [p for p in json.load(f).get("profiles", []) if p.get("shape") not in args.shapes.split(",")]
    rng = torch.Generator().manual_seed(0)
    for shape in args.shapes.split(","):
        hf = None if args.no_hf else hf_decision(shape, args, rng)
        if hf:
            print(f"{shape:12} transformers bf16 decision {hf['decision_ms']:.1f} ms", flush=True)
        model = build_model(shape)
        previous = None
        for precision in args.precisions.split(","):
            row, samples = measure_plan(model, precision, args, rng)
            if previous is not None:
                model.drop_plan(previous)  # one plan resident at a time besides the active one
            previous = row["plan"]
            row = {"shape": shape, **row, "floor_ms": row["weight_bytes"] / bw * 1e3}
            row["decode_over_floor"] = row["decode_ms"] / row["floor_ms"]
            if hf:
                row["transformers_bf16_decision_ms"] = hf["decision_ms"]
                row["speedup_vs_transformers"] = hf["decision_ms"] / row["decision_ms"]
            result["rows"].append(row)
            profiles.append({"agent": f"llm:{shape}@{precision}", "device": card, "shape": shape,
                             "precision": precision, "card": card, "command": command,
                             "decision": f"append {APPEND} tokens onto {CONTEXT}, generate {NEW}",
                             "samples_ms": [round(s, 3) for s in samples]})
            print(f"{shape:12} {precision:8} floor {row['floor_ms']:6.2f}  decode {row['decode_ms']:6.2f} "
                  f"({row['decode_over_floor']:.2f}x)  kernels/step {row['kernels_per_decode_step']:5d} "
                  f"({row['kernels_per_layer']}/layer)  append16/64/256 "
                  f"{'/'.join(f'{v:.1f}' for v in row['append_ms'].values())}  decision {row['decision_ms']:6.1f}  "
                  f"fused-vs-eager {row['fused_vs_eager_rel']:.1e} same-argmax {row['fused_same_argmax']}",
                  flush=True)
            print("    step kernels, us: " + ", ".join(f"{k} {v}" for k, v in list(row["step_kernel_us"].items())[:6]),
                  flush=True)
            with open(out, "w") as f:
                json.dump(result, f, indent=1)
        if hf:
            result.setdefault("transformers", {})[shape] = hf
        del model
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    os.makedirs(os.path.dirname(prof_path), exist_ok=True)
    with open(prof_path, "w") as f:
        json.dump({"format": "fpx-arena-latency-profile", "version": 1, "profiles": profiles}, f, indent=1)
    print("shape        precision  floor  decode  x-floor  append64  decision  vs-bf16")
    for r in result["rows"]:
        base = next((b for b in result["rows"] if b["shape"] == r["shape"] and b["precision"] == "bf16"), r)
        print(f"{r['shape']:12} {r['precision']:8} {r['floor_ms']:6.2f} {r['decode_ms']:7.2f} "
              f"{r['decode_over_floor']:7.2f} {r['append_ms']['64']:9.1f} {r['decision_ms']:9.1f} "
              f"{r['decision_ms'] / base['decision_ms']:8.2f}")
    print("wrote", out, prof_path)


if __name__ == "__main__":
    main()
