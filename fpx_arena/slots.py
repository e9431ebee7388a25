"""One agent's seat in a match, and the check every action passes before the game sees it."""
from __future__ import annotations

import numpy as np

from .agents.context import accepts_context
from .trace import ABSTAINED, INVALID, OK, AgentStats


class Slot:
    """One agent's seat in a match: what the hot loop needs, in attributes."""
    __slots__ = ("id", "i", "agent", "act", "n", "space", "noop", "repeat", "last", "fixed_ms", "land",
                 "pending", "key", "stats", "guard", "context", "bank", "started", "start_tick",
                 "observed", "answer", "on_charged")

    def __init__(self, a, i, agent, env, late):
        self.id, self.i, self.agent, self.act = a, i, agent, agent.act
        self.space = env.action_space(a)
        self.n = getattr(self.space, "n", None)
        self.noop = self.last = getattr(env, "noop_action", lambda _a: 0)(a)
        self.repeat = late == "repeat"
        self.fixed_ms = None
        self.land = -1          # tick the decision in flight lands at (-1: none in flight)
        self.pending = None     # (action | None, status) of that decision
        self.key = 0.0          # its arrival time (ms), ordering same-tick actions
        self.stats = AgentStats(spec=str(getattr(agent, "spec", type(agent).__name__)))
        self.guard = None
        self.context = accepts_context(agent)
        hook = getattr(agent, "on_charged", None) if self.context else None
        self.on_charged = hook if callable(hook) else None  # see agents/context.py
        self.bank = None
        self.started = 0.0      # wall: when the decision in flight was submitted
        self.start_tick = 0
        self.observed = None    # wall: the (observation, info) of the decision in flight
        self.answer = None      # wall: (status, error, latency_ms, timing) of an answer not landed yet


def check_action(action, s: Slot, observation, info):
    """(action, status): an action outside the space or masked by the observation's (or info's)
    action mask never reaches the game."""
    if action is None:
        return None, ABSTAINED
    if s.n is not None:  # Discrete: the hot path, no numpy calls
        if type(action) is not int:
            if not isinstance(action, np.integer):  # bools and strings too
                return None, INVALID
            action = int(action)
        if not 0 <= action < s.n:
            return None, INVALID
        mask = observation.get("action_mask") if type(observation) is dict else None
        if mask is None and info:
            mask = info.get("action_mask")
        if mask is not None and not mask[action]:
            return None, INVALID
        return action, OK
    try:
        ok = s.space.contains(np.asarray(action, dtype=s.space.dtype))
    except Exception:
        ok = False
    if not ok:
        return None, INVALID
    return (action.tolist() if isinstance(action, np.ndarray) else action), OK
