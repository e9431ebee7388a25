"""Tournament runner throughput: matches per minute for a scripted-only tournament with 1 and 2
worker processes, and the runner's overhead per match against playing the same matches in a
plain loop (same agents, same seeds, same clock).

    PYTHONPATH=. python bench/tournament.py [--repeats 3] [--games-per-pairing 16] [--round-ticks 1800]

Writes bench/results/tournament-cpu.json (medians over the repeats, naming the CPU).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # last: never shadow installed packages

from fpx_arena import agents as agent_registry  # noqa: E402
from fpx_arena.tournaments.machine import cpu_name  # noqa: E402
from fpx_arena.tournaments.runner import run_tournament  # noqa: E402
from fpx_arena.tournaments.schedule import build_schedule, latencies, match_spec  # noqa: E402
from fpx_arena.tournaments.spec import load_spec  # noqa: E402

BOTS = {"reactive": 60, "aggressive": 90, "zoner": 120, "turtle": 150, "weak": 30}


def spec_text(games_per_pairing: int, round_ticks: int) -> str:
    lines = ['name = "bench"', "format = \"round-robin\"", f"games_per_pairing = {games_per_pairing}", "seed = 1", ""]
    for bot, ms in BOTS.items():
        lines += ["[[agents]]", f'name = "{bot}"', f'spec = "fighter/{bot}"', f"latency_ms = {ms}", ""]
    lines += ["[games.fighter]", 'clock = "profile"', "tick_hz = 60", f"env = {{ round_ticks = {round_ticks} }}"]
    return "\n".join(lines) + "\n"


def plain_loop(spec, tasks, record_dir: Path | None) -> float:
    """The same matches, one after another in this process, agents built once."""
    lat = latencies(spec)
    built = {a.name: agent_registry.make(a.spec) for a in spec.agents}
    start = time.perf_counter()
    for t in tasks:
        players = {seat: built[name] for seat, name in zip(t.seat_ids, t.seats)}
        match_spec(spec, t, lat).play(agents=players, record=record_dir / t.replay_name if record_dir else None)
    return time.perf_counter() - start


def runner(spec_path: Path, workers: int, work: Path) -> float:
    run_dir = work / f"run-{workers}-{time.monotonic_ns()}"
    start = time.perf_counter()
    outcome = run_tournament(load_spec(spec_path), run_dir, workers=workers, progress=False)
    elapsed = time.perf_counter() - start
    assert outcome.stored == outcome.total
    shutil.rmtree(run_dir)
    return elapsed



def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--games-per-pairing", type=int, default=16)
    p.add_argument("--round-ticks", type=int, default=1800)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "tournament-cpu.json"))
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="fpx-bench-tournament-"))
    spec_path = work / "bench.toml"
    spec_path.write_text(spec_text(args.games_per_pairing, args.round_ticks))
    spec = load_spec(spec_path)
    tasks = build_schedule(spec)
    n = len(tasks)
    times: dict[str, list[float]] = {"plain_loop": [], "plain_loop_with_replays": [], "runner_1_worker": [],
                                     "runner_2_workers": []}
    for r in range(args.repeats):  # interleaved, so that drifting machine load hits all alike
        times["plain_loop"].append(plain_loop(spec, tasks, None))
        replay_dir = work / f"plain-{r}"
        times["plain_loop_with_replays"].append(plain_loop(spec, tasks, replay_dir))
        shutil.rmtree(replay_dir)
        times["runner_1_worker"].append(runner(spec_path, 1, work))
        times["runner_2_workers"].append(runner(spec_path, 2, work))
        print(f"repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
              flush=True)
    # the fixed cost of a run (spawning workers, creating the database): a two-match tournament
    tiny = work / "tiny.toml"
    tiny.write_text(spec_text(2, 60).replace('format = "round-robin"', 'format = "gauntlet"\nbaselines = ["weak"]')
                    .replace('spec = "fighter/aggressive"', 'spec = "fighter/aggressive"\ngames = []')
                    .replace('spec = "fighter/zoner"', 'spec = "fighter/zoner"\ngames = []')
                    .replace('spec = "fighter/turtle"', 'spec = "fighter/turtle"\ngames = []'))
    startup = {f"{w}_worker{'s' * (w > 1)}": statistics.median(runner(tiny, w, work) for _ in range(args.repeats))
               for w in (1, 2)}
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "benchmark": "tournament runner, scripted fighter bots, profile clock",
        "command": "PYTHONPATH=. python bench/tournament.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "cpu": cpu_name(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "matches": n, "round_ticks": args.round_ticks, "repeats": args.repeats,
        "median_seconds": med,
        "matches_per_minute": {k: 60.0 * n / v for k, v in med.items()},
        "runner_overhead_ms_per_match": {
            "vs_plain_loop": 1000.0 * (med["runner_1_worker"] - med["plain_loop"]) / n,
            "vs_plain_loop_with_replays": 1000.0 * (med["runner_1_worker"] - med["plain_loop_with_replays"]) / n,
        },
        "speedup_2_workers": med["runner_1_worker"] / med["runner_2_workers"],
        "run_startup_seconds": startup,
        "all_seconds": times,
        "note": "runner times include starting the worker processes, the SQLite commits (WAL, "
                "synchronous=FULL) and writing replay files; the machine may be shared with other jobs",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"{n} matches: " + ", ".join(f"{k} {v:.0f}/min" for k, v in result["matches_per_minute"].items()))
    print(f"runner overhead per match: {result['runner_overhead_ms_per_match']['vs_plain_loop']:.1f} ms vs a plain "
          f"loop, {result['runner_overhead_ms_per_match']['vs_plain_loop_with_replays']:.1f} ms vs a plain loop "
          f"writing replays; 2 workers are {result['speedup_2_workers']:.2f}x 1 worker; a run starts in "
          + ", ".join(f"{v:.2f} s ({k})" for k, v in startup.items()))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
