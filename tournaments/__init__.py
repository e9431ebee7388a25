"""Tournaments: precisions (and bots) against each other, with ratings you can trust.

    from fpx_arena.tournaments import load_spec, run_tournament, write_reports
    spec = load_spec("my.toml")                 # SpecError naming file:line for a bad spec
    run_tournament(spec, "runs/my-run")         # local worker processes; backend="ray" for Ray
    run_tournament(None, "runs/my-run", resume=True)   # continue a killed run
    print(write_reports("runs/my-run")["text"])  # report.md, report.html, the terminal table

Modules: spec (TOML specs), schedule (match keys and seeds), store (SQLite), worker and runner
(local processes), ray_backend, ratings (Bradley-Terry, Elo, LOS, pentanomial, OpenSkill),
analysis and report. docs/tournaments.md describes the spec format.
"""
from __future__ import annotations

_EXPORTS = {
    "load_spec": "spec", "TournamentSpec": "spec",
    "build_schedule": "schedule", "MatchTask": "schedule",
    "Store": "store", "StoreError": "store",
    "run_tournament": "runner", "load_default_spec": "runner", "RunOutcome": "runner",
    "fit_bradley_terry": "ratings", "pair_stats": "ratings", "openskill_ratings": "ratings",
    "analyze": "analysis", "write_reports": "report",
}


def __getattr__(name):  # lazy, so that importing the package stays cheap
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(name)


__all__ = sorted(_EXPORTS)
