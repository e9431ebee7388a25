"""Run a tournament between agents (precisions of one model, scripted bots, ...) and report
ratings with confidence intervals.

Without a spec, runs the built-in default tournament (LLM agents on the models that exist
offline, at several precisions, against scripted bots; a few minutes on a CPU). Results go to
a run folder (tournament.db, replays/, report.md, report.html), printed at the end.

Examples:
  fpx-arena tournament
  fpx-arena tournament my.toml --workers 4
  fpx-arena tournament my.toml --backend ray --ray-address auto
  fpx-arena tournament --resume runs/my-20250101-120000
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UserError

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
    p.add_argument("--workers", type=int, metavar="N", help="worker processes (default: the spec's "
                   "concurrency; auto = one per GPU, else one per CPU core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-report", action="store_true", help="skip report.md/report.html")
    p.add_argument("--bootstrap", type=int, metavar="N", help="bootstrap resamples for the intervals "
                   "(default: the spec's, 1000)")
    p.add_argument("--openskill", action="store_true", help="add OpenSkill ratings to the report")


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
    else:
        spec = spec or load_default_spec()
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
