"""Does choosing the candidate per decision beat every fixed choice? The adaptive agent against
every fixed candidate, under the profile clock, with large-shape decision latencies.

Candidates: the shipped policies as brains (arena-small, arena-tiny) at bf16, fp8 and nvfp4,
each charged the decision latency of a large shape at that precision: arena-small decides as
fast as qwen2.5-14b would, arena-tiny as llama-3-8b would. The latencies come from a profile
file with one entry per (shape, precision): `--profiles PATH`, else the engine's measured
large-shape profiles where `fpx_arena/data/profiles/` holds them, else the H200 decision
figures of issue 14's table (labelled so in the file and the results: not re-measured).

Two designs, at 30, 60 and 120 Hz:
- `--mode yardstick` (default): each agent (the adaptive one under each controller, and each
  fixed candidate) plays the game's yardstick (fighter/reactive, market/informed) on the same
  seeds from both seats. Score: the agent's reward per match (fighter: the round's hp margin;
  market: pnl), averaged over its two seats per seed; the adaptive agent's score minus each
  fixed candidate's, paired per seed, with a 95% t interval over seeds.
- `--mode h2h`: the adaptive agent (`--controllers`, default deadline) plays each fixed
  candidate head to head, from both seats per seed. Score: its reward minus the candidate's,
  averaged over the two seats per seed, with a 95% t interval over seeds.

- `--mode overhead`: the controller's own time against the decision's, under the `measured`
  clock on this machine's device (a GPU where there is one): the adaptive agent over the six
  candidates plays fighter/reactive in short rounds; per decision controller_ms / total_ms.

    python bench/adaptive.py [--mode yardstick|h2h|overhead] [--seeds 8] [--rates 30,60,120] [--games fighter,market]
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parent.parent))  # last: never shadow installed packages

from fpx_arena import agents, games, run_match  # noqa: E402
from fpx_arena.latency import LatencyProfile, load_profiles, save_profiles  # noqa: E402
from fpx_arena.tournaments.ratings import mean_interval  # noqa: E402
from machine import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BRAINS = {"arena-small": "qwen2.5-14b", "arena-tiny": "llama-3-8b"}  # brain -> shape it is timed as
PRECISIONS = ("bf16", "fp8", "nvfp4")
# issue 14, "decision ms (append 64 + 16 tokens)", one H200, the engine's CUDA-graph decoder,
# random weights of each shape, 320-token context
ISSUE14_DECISION_MS = {("llama-3-8b", "bf16"): 135.0, ("llama-3-8b", "fp8"): 145.0, ("llama-3-8b", "nvfp4"): 146.0,
                       ("qwen2.5-14b", "bf16"): 249.0, ("qwen2.5-14b", "fp8"): 261.0,
                       ("qwen2.5-14b", "nvfp4"): 225.0}
GAMES = {"fighter": ({"round_ticks": 600}, "fighter/reactive"), "market": ({"day_ticks": 400}, "market/informed")}
CONTROLLERS = ("deadline", "bandit")


def issue14_profiles(path: Path) -> dict:
    """Constant profiles from the issue 14 table, written to `path` with their provenance."""
    out = []
    for (shape, precision), ms in ISSUE14_DECISION_MS.items():
        p = LatencyProfile(agent=f"{shape}@{precision}",
                           device="NVIDIA H200 (source = issue 14 table, card H200, not re-measured)",
                           distribution={"kind": "constant", "ms": ms})
        out.append(p)
    save_profiles(path, out)
    data = json.loads(path.read_text())
    data["source"] = "issue 14 table (decision ms: append 64 + generate 16 tokens, 320-token context)"
    data["card"] = "H200"
    data["measured"] = "not re-measured"
    path.write_text(json.dumps(data, indent=1))
    return {p.agent: p for p in out}


def find_profiles(explicit: str | None, out_dir: Path) -> tuple[dict, str]:
    if explicit:
        return load_profiles(explicit), explicit
    folder = ROOT / "fpx_arena" / "data" / "profiles"
    table: dict = {}
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            for key, p in load_profiles(f).items():
                table.setdefault(key.removeprefix("llm:"), p)  # bench/decisions.py names agents llm:<shape>@<p>
        except Exception:  # a file of another kind in that folder
            continue
    needed = {f"{s}@{p}" for s in BRAINS.values() for p in PRECISIONS}
    if needed <= set(table):
        return table, str(folder.relative_to(ROOT))
    path = out_dir / "adaptive-profiles-issue14.json"
    return issue14_profiles(path), str(path.relative_to(ROOT))


def typical_ms(p: LatencyProfile) -> float:
    """A profile's median: what `--prior` starts the adaptive agent from."""
    if p.samples_ms:
        return float(np.median(p.samples_ms))
    d = p.distribution
    return float(d["ms"] if d["kind"] == "constant" else d["median_ms"] if d["kind"] == "lognormal"
                 else (d["low_ms"] + d["high_ms"]) / 2)


def score(result, seat) -> float:
    return float(result.stats[seat].reward)


def play(agent, latency, game, tick_hz, seed, side):
    env_kwargs, yardstick = GAMES[game]
    env = games.make(game, **env_kwargs)
    first, second = env.possible_agents
    other = agents.make(yardstick)
    seats = {first: agent, second: other} if side == 0 else {first: other, second: agent}
    seat = first if side == 0 else second
    lat = {seat: latency, (second if side == 0 else first): 0.0}
    r = run_match(env, seats, tick_hz=tick_hz, clock="profile", seed=seed, latency=lat, game=game,
                  env_kwargs=env_kwargs)
    return r, seat


def head_to_head(args, cands, prof, fixed, adaptive, rates) -> list:
    rows = []
    for game in args.games.split(","):
        env_kwargs = GAMES[game][0]
        for hz in rates:
            row = {"game": game, "tick_hz": hz, "seeds": args.seeds, "adaptive": {}}
            for k, agent in adaptive.items():
                margins, shares = {c: [] for c in cands}, {}
                for c in cands:
                    for i in range(args.seeds):
                        per_side = []
                        for side in (0, 1):
                            env = games.make(game, **env_kwargs)
                            first, second = env.possible_agents
                            me, other = (first, second) if side == 0 else (second, first)
                            r = run_match(env, {me: agent, other: fixed[c]}, tick_hz=hz, clock="profile",
                                          seed=7000 + i, latency={me: dict(prof), other: prof[c]}, game=game,
                                          env_kwargs=env_kwargs)
                            per_side.append(r.stats[me].reward - r.stats[other].reward)
                            for d in r.trace.decisions:
                                if r.trace.agents[d[0]] == me and d[5]:
                                    shares[d[5]["candidate"]] = shares.get(d[5]["candidate"], 0) + 1
                        margins[c].append(float(np.mean(per_side)))
                total = sum(shares.values()) or 1
                row["adaptive"][k] = {
                    "margin_vs": {c: mean_interval(v) for c, v in margins.items()},
                    "verdict_vs": {c: ("above" if m["lower"] > 0 else "below" if m["upper"] < 0 else "within interval")
                                   for c, m in ((c, mean_interval(v)) for c, v in margins.items())},
                    "share_of_decisions": {c: shares.get(c, 0) / total for c in cands},
                }
                print(f"{game} {hz:g} Hz {k}: " + "; ".join(
                    f"{c} {np.mean(v):+.3f} ({row['adaptive'][k]['verdict_vs'][c]})" for c, v in margins.items()),
                    flush=True)
            rows.append(row)
    return rows


def controller_overhead(args, cands, rates) -> dict:
    """Controller time per decision under the measured clock, on CUDA where available."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    agent = agents.make("adaptive:" + ",".join(cands) + f"?device={device}")
    env_kwargs = {"round_ticks": 150}
    per_rate = {}
    for hz in rates:
        shares, ctl_ms, total_ms, text_ms, learned_ms, both = [], [], [], [], [], []
        for i in range(args.seeds):
            env = games.make("fighter", **env_kwargs)
            first, second = env.possible_agents
            r = run_match(env, {first: agent, second: agents.make("fighter/reactive")}, tick_hz=hz,
                          clock="measured", seed=7000 + i, game="fighter", env_kwargs=env_kwargs)
            for d in r.trace.decisions:
                if r.trace.agents[d[0]] == first and d[5] and d[5].get("total_ms"):
                    shares.append(d[5]["controller_ms"] / d[5]["total_ms"])
                    ctl_ms.append(d[5]["controller_ms"])
                    total_ms.append(d[5]["total_ms"])
                    text_ms.append(d[5].get("prompt_text_ms", 0.0))
                    learned_ms.append(d[5].get("learned_ms", 0.0))
                    both.append((d[5]["controller_ms"] + learned_ms[-1]) / d[5]["total_ms"])
        q = lambda v, p: float(np.percentile(v, p)) if v else None  # noqa: E731
        per_rate[str(hz)] = {"decisions": len(shares), "share_p50": q(shares, 50), "share_p90": q(shares, 90),
                             "controller_ms_p50": q(ctl_ms, 50), "controller_ms_p99": q(ctl_ms, 99),
                             "decision_ms_p50": q(total_ms, 50), "prompt_text_ms_p50": q(text_ms, 50),
                             "learned_between_ms_p50": q(learned_ms, 50), "with_learning_share_p50": q(both, 50)}
        print(f"{hz:g} Hz: {len(shares)} decisions, controller/decision p50 {q(shares, 50):.2%} "
              f"p90 {q(shares, 90):.2%}; controller p50 {q(ctl_ms, 50):.3f} ms, decision p50 {q(total_ms, 50):.2f} ms; "
              f"learning between decisions p50 {q(learned_ms, 50):.3f} ms (with it {q(both, 50):.2%})",
              flush=True)
    name = torch.cuda.get_device_name(0) if device == "cuda" else cpu_name()
    return {"what": "controller_ms / total_ms of the adaptive agent's decisions, measured clock (controller_ms: "
                    "choosing the candidate; the state text it measures is the candidate's prompt too, "
                    "prompt_text_ms, counted in the decision; learned_between_ms: learning the last "
                    "decision's charge, done by the on_charged hook between decisions, off the decision's "
                    "path; with_learning_share: both over the decision)",
            "device": name, "candidates": cands, "env": env_kwargs, "opponent": "fighter/reactive",
            "rates": per_rate, "seeds": args.seeds,
            "command": "python bench/adaptive.py " + " ".join(sys.argv[1:])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("yardstick", "h2h", "overhead"), default="yardstick")
    p.add_argument("--controllers", default=None, help="comma-separated (default: deadline,bandit; h2h: deadline)")
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--prior", action="store_true",
                   help="start the adaptive agent from each candidate's profile median instead of trying each once")
    p.add_argument("--rates", default="30,60,120")
    p.add_argument("--games", default="fighter,market")
    p.add_argument("--profiles", default=None, help="profile file with <shape>@<precision> entries")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    out_dir = ROOT / "bench" / "results"
    if args.mode == "overhead":
        cands = [f"{b}@{q}" for b in BRAINS for q in PRECISIONS]
        out = controller_overhead(args, cands, [float(r) for r in args.rates.split(",")])
        path = Path(args.out) if args.out else out_dir / "adaptive-overhead.json"
        path.write_text(json.dumps(out, indent=1))
        print(f"wrote {path}")
        return 0
    table, source = find_profiles(args.profiles, out_dir)
    cands = [f"{b}@{q}" for b in BRAINS for q in PRECISIONS]
    prof = {c: table[f"{BRAINS[c.split('@')[0]]}@{c.split('@')[1]}"] for c in cands}
    fixed = {c: agents.make(f"llm:{c}?threads=1") for c in cands}
    controllers = (args.controllers.split(",") if args.controllers
                   else ["deadline"] if args.mode == "h2h" else list(CONTROLLERS))
    prior = {c: typical_ms(prof[c]) for c in cands} if args.prior else None
    adaptive = {k: agents.make("adaptive:" + ",".join(cands) + f"?controller={k}&threads=1", latency_prior=prior)
                for k in controllers}
    rates = [float(r) for r in args.rates.split(",")]
    t_start = time.perf_counter()
    rows = head_to_head(args, cands, prof, fixed, adaptive, rates) if args.mode == "h2h" else []
    for game in args.games.split(",") if args.mode == "yardstick" else []:
        for hz in rates:
            scores = {name: [] for name in [f"adaptive-{k}" for k in controllers] + cands}
            shares = {k: {} for k in controllers}
            overhead = {k: [] for k in controllers}
            for i in range(args.seeds):
                seed = 7000 + i
                for name in scores:
                    per_side = []
                    for side in (0, 1):
                        if name.startswith("adaptive-"):
                            k = name.split("-", 1)[1]
                            r, seat = play(adaptive[k], dict(prof), game, hz, seed, side)
                            for d in r.trace.decisions:
                                if r.trace.agents[d[0]] == seat and d[5]:
                                    c = d[5]["candidate"]
                                    shares[k][c] = shares[k].get(c, 0) + 1
                                    if c.startswith("arena-small"):
                                        overhead[k].append(d[5]["controller_ms"] / d[5]["total_ms"])
                        else:
                            r, seat = play(fixed[name], prof[name], game, hz, seed, side)
                        per_side.append(score(r, seat))
                    scores[name].append(float(np.mean(per_side)))
            best = max(cands, key=lambda c: np.mean(scores[c]))
            row = {"game": game, "tick_hz": hz, "seeds": args.seeds,
                   "score": {n: mean_interval(v) for n, v in scores.items()},
                   "best_fixed": best, "adaptive": {}}
            for k in controllers:
                a = np.asarray(scores[f"adaptive-{k}"])
                vs = {c: mean_interval(a - np.asarray(scores[c])) for c in cands}
                d = vs[best]
                total = sum(shares[k].values()) or 1
                row["adaptive"][k] = {
                    "minus_fixed": vs,
                    "vs_best_fixed": "above" if d["lower"] > 0 else ("below" if d["upper"] < 0 else "within interval"),
                    "share_of_decisions": {c: shares[k].get(c, 0) / total for c in cands},
                    "controller_share_of_arena_small_decision_p50": float(np.median(overhead[k])) if overhead[k] else None,
                }
            rows.append(row)
            print(f"{game} {hz:g} Hz: best fixed {best} {np.mean(scores[best]):+.3f}; " + "; ".join(
                f"{k} {np.mean(scores['adaptive-' + k]):+.3f} ({row['adaptive'][k]['vs_best_fixed']})"
                for k in controllers), flush=True)
    memory = next(iter(adaptive.values())).memory()
    out = {
        "what": "adaptive agent vs every fixed candidate, profile clock, large-shape latencies",
        "mode": args.mode,
        "latency_prior": prior,
        "profiles": {"source": source, "candidates": {c: {"shape": BRAINS[c.split("@")[0]], "precision": c.split("@")[1],
                                                           "profile": prof[c].to_dict()} for c in cands}},
        "opponents": ({g: GAMES[g][1] for g in GAMES} if args.mode == "yardstick" else "each fixed candidate"),
        "env": {g: GAMES[g][0] for g in GAMES},
        "score": ("the agent's reward per match, mean of its two seats, per seed" if args.mode == "yardstick" else
                  "adaptive's reward minus the fixed candidate's, mean of its two seats, per seed")
                 + "; intervals: 95% t over seeds",
        "controller_overhead_note": ("controller_ms / total_ms of the adaptive agent's decisions made by arena-small "
                                     "candidates, measured on this CPU (no GPU here)"),
        "resident_weights_cpu": memory,
        "rows": rows, "cpu": cpu_name(), "python": platform.python_version(),
        "command": "python bench/adaptive.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seconds": time.perf_counter() - t_start,
    }
    tag = (("issue14" if "issue14" in source else "measured") + ("-prior" if args.prior else "")
           + ("-h2h" if args.mode == "h2h" else ""))
    path = Path(args.out) if args.out else out_dir / f"adaptive-{tag}.json"
    path.write_text(json.dumps(out, indent=1, default=lambda x: None if isinstance(x, float) and math.isnan(x) else x))
    print(f"wrote {path} in {out['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
