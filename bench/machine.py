"""What the benchmark scripts record about the CPU they ran on: the tournament report's own
description of the machine, so the two never disagree."""
from fpx_arena.tournaments.machine import cpu_name

__all__ = ["cpu_name"]
