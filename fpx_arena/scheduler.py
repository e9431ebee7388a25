"""The deadline scheduler's public names, where earlier versions kept them: the match itself
is in match.py, clocks in clocks.py, the trace and result in trace.py, agent containment in
isolation.py and the wall clock's loop in wallclock.py."""
from __future__ import annotations

from .clocks import CLOCKS as _CLOCK_CLASSES
from .match import DEFAULT_DECISION_TIMEOUT_S, LATE_POLICIES, MatchSpec, game_name, run_match
from .trace import (ABSTAINED, ERROR, INVALID, OK, STATUS_NAMES, SUPERSEDED, TIMEOUT, AgentStats, Decision,
                    MatchResult, Trace)

CLOCKS = tuple(_CLOCK_CLASSES)
_game_name = game_name  # the name the viewer imported before match.py existed

__all__ = ["run_match", "MatchSpec", "MatchResult", "AgentStats", "Trace", "Decision", "CLOCKS",
           "LATE_POLICIES", "STATUS_NAMES", "OK", "INVALID", "ERROR", "TIMEOUT", "ABSTAINED", "SUPERSEDED",
           "DEFAULT_DECISION_TIMEOUT_S", "game_name"]
