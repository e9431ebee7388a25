"""The wall clock's loop: the world ticks in real time while each agent thinks on its own
thread (isolation.Guard); a decision lands at the first tick at or after the moment it was
answered (plus the network delay)."""
from __future__ import annotations

import math
import sys
import time

from .agents.process import AgentDied
from .slots import check_action
from .trace import ERROR, OK


def play_wall(m) -> None:
    """Play match `m` (a match._Match whose agents all have a Guard) on the wall clock."""
    env, slots, trace, dt = m.env, m.slots, m.trace, m.dt_ms
    limit = m.spec.max_ticks if m.spec.max_ticks is not None else sys.maxsize
    timeout = m.timeout_s if m.timeout_s is not None else math.inf
    delay = m.clock.delay_ms
    t0 = m.t0 = time.perf_counter()
    while env.agents and m.tick < limit and not m.over:
        tick, live = m.tick, env.agents
        sleep_until(t0 + tick * dt / 1000.0)
        now = time.perf_counter()
        trace.tick_offsets_s.append(now - t0)
        fresh, order = {}, []
        for s in slots:
            if s.id not in live or s.land == sys.maxsize:
                continue
            g = s.guard
            if g.busy and s.pending is None:
                out = g.poll()
                if out is not None:
                    (ok, value), _, finished = out
                    if not ok and isinstance(value, AgentDied):
                        m.forfeit(s, str(value))
                        break
                    latency = (finished - s.started) * 1000.0 + delay[s.id]
                    land_at = s.started + latency / 1000.0
                    s.land = max(s.start_tick, math.ceil((land_at - t0) * 1000.0 / dt - 1e-9))
                    s.key = s.start_tick * dt + latency
                    if ok:  # traced when it lands: (status, error, latency, timing)
                        action, status = check_action(value, s, *s.observed)
                        s.pending = (action, status)
                        s.answer = (status, None, latency, getattr(s.agent, "last_timing", None))
                        if status == OK and s.on_charged is not None:  # now, while it waits to land
                            m.tell_charged(s, latency)
                    else:
                        s.pending = (None, ERROR)
                        s.answer = (ERROR, f"{type(value).__name__}: {value}", latency, None)
                elif not g.abandoned and now - s.started > timeout:
                    g.abandon()
                    m.timed_out(s, tick, 0.0)
                    if m.over:
                        break
                    continue
            if s.pending is not None and s.land <= tick:
                m.record(s, *s.answer)
                m.land(s, fresh, order)
            if s.pending is None and not g.busy:
                obs, info = m.observations[s.id], m.infos.get(s.id) or {}
                s.observed, s.start_tick, s.started = (obs, info), tick, time.perf_counter()
                kwargs = {"context": m.context(s, tick, info)} if s.context else {}
                g.submit(s.act, obs, info, **kwargs)
        if m.over:
            break
        m.step(live, fresh, order)
        if m.on_tick is not None:
            now = time.perf_counter()
            thinking = {s.id: (s.start_tick, (now - s.started) * 1000.0)
                        for s in slots if s.guard is not None and (s.guard.busy or s.pending is not None)}
            if m.on_tick(m.tick - 1, env, trace, thinking) is False:
                break


def sleep_until(target: float) -> None:
    """Sleep to within ~0.2 ms of target, then yield-spin: time.sleep alone overshoots by the
    kernel's timer slack, and a bare busy loop would starve the agents' threads of the GIL."""
    remaining = target - time.perf_counter()
    if remaining > 0.0015:
        time.sleep(remaining - 0.001)
    while time.perf_counter() < target:
        time.sleep(0)
