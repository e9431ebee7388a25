"""Run a tournament between agents (precisions of one model, scripted bots, ...) and report
ratings with confidence intervals.

Without a spec, runs the built-in default tournament (LLM agents on the models that exist
offline, at several precisions, against scripted bots; a few minutes on a CPU). Results go to
a run folder (tournament.db, replays/, report.md, report.html), printed at the end.

Examples:
  fpx-arena tournament                       # the default: reproducible (profile clock)
  fpx-arena tournament --clock measured      # the same agents timed on this machine
  fpx-arena tournament my.toml --workers 4
  fpx-arena tournament my.toml --backend ray --ray-address auto
  fpx-arena tournament --resume runs/my-20250101-120000
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from ..errors import UserError
from ..tournaments.spec import MAX_BOOTSTRAP
from . import _validate as valid

HELP = "run a tournament from a TOML spec (or the built-in default) and report ratings"


def add_arguments(p):
    p.add_argument("spec", nargs="?", help="tournament spec (TOML; see docs/tournaments.md); "
                   "default: the built-in tournament")
    p.add_argument("--out", metavar="DIR", help="run folder (default: RUNS/<name>-<timestamp>)")
    p.add_argument("--runs", metavar="RUNS", default="runs", help="where new run folders go (default runs/)")
    p.add_argument("--resume", metavar="RUN", help="continue a killed or stopped run (its folder or "
                   "tournament.db): plays only the matches it has no result for")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local worker processes (default) or Ray actors (pip install 'fpx-arena[ray]')")
    p.add_argument("--ray-address", metavar="ADDR", help="an existing Ray cluster (e.g. auto or "
                   "ray://head:10001); default: start a local one")
    p.add_argument("--workers", type=valid.integer(1, 4096), metavar="N", help="worker processes (default: the spec's "
                   "concurrency; auto = one per GPU, else one per CPU core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-report", action="store_true", help="skip report.md/report.html")
    p.add_argument("--bootstrap", type=valid.integer(0, MAX_BOOTSTRAP), metavar="N", help="bootstrap resamples for the intervals "
                   "(default: the spec's, 1000)")
    p.add_argument("--openskill", action="store_true", help="add OpenSkill ratings to the report")
    p.add_argument("--clock", choices=["profile", "measured", "wall", "lockstep"],
                   help="play every game under this clock instead of the spec's; e.g. --clock measured times "
                   "the agents on this machine (the report then names its CPU/GPU, workers, threads and load)")
    p.add_argument("--seed", type=int, metavar="N", help="the spec's base seed instead of its own")


def _game_table(line: str) -> bool:
    return bool(re.match(r"\s*\[\s*games\.", line)) and not line.strip().startswith("[[")


def with_overrides(spec, clock: str | None = None, seed: int | None = None):
    """The spec with every game's clock and/or the base seed replaced, rewritten in its TOML text,
    so that the stored spec (for --resume and for reports) says what was played."""
    from ..tournaments.spec import load_spec

    if clock is None and seed is None:
        return spec
    lines = spec.source.splitlines()
    out, table, has_clock, seeded = [], None, False, False

    def close_table():
        if table is not None and _game_table(table) and not has_clock and clock is not None:
            out.insert(table_at + 1, f'clock = "{clock}"')

    table_at = -1
    for line in lines:
        if re.match(r"\s*\[", line):
            if table is None and seed is not None and not seeded:
                out.append(f"seed = {seed}")
                seeded = True
            close_table()
            table, table_at, has_clock = line, len(out), False
        elif table is None and seed is not None and re.match(r"\s*seed\s*=", line):
            line, seeded = f"seed = {seed}", True
        elif table is not None and _game_table(table) and clock is not None and re.match(r"\s*clock\s*=", line):
            line, has_clock = f'clock = "{clock}"', True
        out.append(line)
    close_table()
    if seed is not None and not seeded:
        out.insert(0, f"seed = {seed}")
    return load_spec(spec.path if Path(spec.path).is_file() else None, text="\n".join(out) + "\n", name=spec.name,
                     base=spec.base_dir or None)


def run(args) -> int:
    from ..tournaments.report import write_reports
    from ..tournaments.runner import load_default_spec, new_run_dir, run_tournament
    from ..tournaments.spec import load_spec

    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    spec = load_spec(args.spec) if args.spec else None
    if args.resume:
        run_dir = Path(args.resume)
        if run_dir.name.endswith(".db"):
            run_dir = run_dir.parent
        if args.out and Path(args.out) != run_dir:
            raise UserError("--resume continues the run in its own folder; leave out --out")
        if args.clock or args.seed is not None:
            raise UserError("--resume plays the stored tournament as it started; leave out --clock and --seed")
    else:
        spec = with_overrides(spec or load_default_spec(), clock=args.clock, seed=args.seed)
        run_dir = Path(args.out) if args.out else new_run_dir(spec, args.runs)
    outcome = run_tournament(spec, run_dir, resume=bool(args.resume), backend=args.backend,
                             workers=args.workers, ray_address=args.ray_address,
                             progress=not args.no_progress)
    print(f"{outcome.played} matches played in {outcome.elapsed_s:.1f} s; {outcome.stored} of "
          f"{outcome.total} scheduled are stored in {outcome.db_path}", file=sys.stderr)
    if outcome.skipped_agents:
        print(f"skipped (unavailable here): {', '.join(outcome.skipped_agents)}", file=sys.stderr)
    if args.no_report:
        return 0
    report = write_reports(run_dir, n_bootstrap=args.bootstrap, openskill=args.openskill or None)
    print(report["text"])
    print(f"\nreport: {report['html']}\n        {report['md']}\nreplays: {run_dir / 'replays'}")
    return 0
