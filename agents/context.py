"""What an agent is told about time when it is asked to decide.

The scheduler builds one ``DecisionContext`` per decision and passes it as the keyword
argument ``context`` to agents whose ``act`` accepts one (``act(observation, info,
context=None)``); agents with the plain ``act(observation, info)`` are called as before.
Times are in milliseconds of the match's own time line: virtual under ``lockstep``,
``profile`` and ``measured``, real (since the first tick) under ``wall``.

Such an agent may also define ``on_charged(latency_ms)``: the scheduler calls it with what
each decision that produced an action was charged, as soon as that is known and before the
agent's next decision starts (on the agent's own thread where it has one, queued ahead of the
next call, whose timeout its time counts against; what it raises is ignored). The same figure
reaches the next context's ``recent_latencies_ms``; the hook lets an agent learn from it
between decisions instead of on the next decision's path.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DecisionContext:
    tick: int                      # the tick whose observation this decision starts from
    dt_ms: float                   # length of one tick
    observed_at_ms: float          # when that observation was taken (tick * dt_ms)
    deadline_ms: float             # an action landing by then takes effect at tick + 1
    overage_left_ms: float         # the agent's overage bank (0 where the match gives none)
    clock: str                     # lockstep, profile, measured or wall
    recent_latencies_ms: tuple = ()  # the agent's last decisions' charged latencies, oldest first
    urgency: float | None = None   # the game's own urgency signal in [0, 1] (info["urgency"]), if any
    reward: float = 0.0            # the agent's reward so far in this match, as of the observation

    @property
    def time_left_ms(self) -> float:
        """Time from the observation to the deadline of the next tick (the bank not counted)."""
        return self.deadline_ms - self.observed_at_ms


def accepts_context(agent) -> bool:
    """Whether ``agent.act`` takes a ``context`` keyword (checked once per match, not per tick;
    remembered per function, since reading a signature costs more than a scripted match's tick)."""
    act = getattr(agent, "act", None)
    if act is None:
        return False
    fn = getattr(act, "__func__", act)
    try:
        return _takes_context(fn)
    except TypeError:  # an unhashable callable
        return _takes_context.__wrapped__(fn)


@functools.lru_cache(maxsize=256)
def _takes_context(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "context" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
