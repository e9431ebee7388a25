"""Report a tournament: a terminal table of ratings (Bradley-Terry with bootstrap intervals),
pair statistics, latency and missed ticks, and report.md / report.html (plots embedded) in the
run folder, led by the answer to "which precision should I deploy for this game and deadline?".

Examples:
  fpx-arena report runs/default-20250101-120000
  fpx-arena report runs/default-20250101-120000/tournament.db --openskill --bootstrap 2000
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..tournaments.spec import MAX_BOOTSTRAP
from . import _validate as valid

HELP = "report a tournament's ratings (table, report.md, report.html)"


def add_arguments(p):
    p.add_argument("db", help="a run folder or its tournament.db")
    p.add_argument("--bootstrap", type=valid.integer(0, MAX_BOOTSTRAP), metavar="N", help="bootstrap resamples (default: the spec's, 1000)")
    p.add_argument("--openskill", action="store_true", help="add OpenSkill ratings")
    p.add_argument("--no-plots", action="store_true", help="tables only (no matplotlib)")
    p.add_argument("--pairs", action="store_true", help="also print the per-pair table")


def run(args) -> int:
    from ..tournaments.report import text_table, pair_table, write_reports

    path = Path(args.db)
    if not path.exists():
        raise UserError(f"no tournament database or run folder at {path}")
    if args.bootstrap is not None and args.bootstrap < 0:
        raise UserError("--bootstrap must be >= 0")
    report = write_reports(path, n_bootstrap=args.bootstrap, openskill=args.openskill or None,
                           plots_enabled=not args.no_plots)
    print(report["text"])
    if args.pairs:
        for s in report["summaries"]:
            print(f"\n{s.label} pairs\n" + text_table(*pair_table(s)))
    print(f"\nreport: {report['html']}\n        {report['md']}")
    return 0
