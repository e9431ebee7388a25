"""Clocks decide how long each decision takes in the match's time line.

An action decided from the observation of tick t with latency L takes effect at the first tick
at or after t*dt + L (``land_tick``); until then the agent's late policy applies.

- ``lockstep``: L = 0, the world waits (the usual PettingZoo loop; the control condition);
- ``profile``: L drawn from the agent's latency profile with a seeded generator (replays
  bit-for-bit anywhere);
- ``measured``: L = the real duration of act(), device-synchronised, in virtual time;
- ``wall``: real time; agents think in worker threads while the world ticks.

Every clock but lockstep adds the agent's network delay. The interface is small: ``fixed_ms``
(a latency known before the decision, which lets the scheduler skip timing it), ``timed``
(whether act() must be timed) and ``charge`` (the latency of one decision).
"""
from __future__ import annotations

import functools
import math
import sys

import numpy as np

from .errors import UserError
from .latency import CandidateProfiles, LatencyProfile


def device_sync():
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def land_tick(tick: int, latency_ms: float, dt_ms: float) -> int:
    # the epsilon absorbs float noise in k*dt
    return tick + max(0, math.ceil(latency_ms / dt_ms - 1e-9)) if latency_ms else tick


class Clock:
    name = ""
    realtime = False  # wall: the world ticks in real time while agents think in threads
    timed = False     # act() is timed and its duration charged

    def __init__(self, agents: list, delay_ms: dict):
        self.delay_ms = delay_ms

    def fixed_ms(self, agent: str) -> float | None:
        """The latency every decision of `agent` is charged, when it is known in advance."""
        return None

    def charge(self, agent: str, elapsed_ms: float, key: str | None = None) -> float:
        """The latency charged for one decision that took `elapsed_ms` of real time; `key`:
        the candidate an adaptive agent decided it with (its latency_key())."""
        raise NotImplementedError


class Lockstep(Clock):
    name = "lockstep"

    def __init__(self, agents, delay_ms):
        super().__init__(agents, {a: 0.0 for a in agents})  # the world waits: no network either

    def fixed_ms(self, agent):
        return 0.0

    def charge(self, agent, elapsed_ms, key=None):
        return 0.0


class Profile(Clock):
    name = "profile"

    def __init__(self, agents, delay_ms, *, latency, seed: int):
        super().__init__(agents, delay_ms)
        if latency is None:
            raise UserError("the profile clock needs latency profiles (latency={agent: ms | samples | profile})")
        self.profiles = {}
        for a in agents:
            if a not in latency:
                raise UserError(f"the profile clock has no latency profile for agent {a!r}")
            # a dict: an adaptive agent's profile per candidate (latency.CandidateProfiles)
            self.profiles[a] = (CandidateProfiles.coerce(latency[a], agent=a) if isinstance(latency[a], dict)
                                else LatencyProfile.coerce(latency[a], agent=a))
        self.rngs = {a: np.random.default_rng(agent_seed(seed, i + 1000)) for i, a in enumerate(agents)}

    def fixed_ms(self, agent):
        d = getattr(self.profiles[agent], "distribution", {})
        return d["ms"] + self.delay_ms[agent] if d.get("kind") == "constant" else None

    def charge(self, agent, elapsed_ms, key=None):
        p = self.profiles[agent]
        if isinstance(p, CandidateProfiles):
            p = p.pick(key)
        return p.sample(self.rngs[agent]) + self.delay_ms[agent]


class Measured(Clock):
    name = "measured"
    timed = True

    def charge(self, agent, elapsed_ms, key=None):
        return elapsed_ms + self.delay_ms[agent]


class Wall(Measured):
    name = "wall"
    realtime = True


CLOCKS = {c.name: c for c in (Wall, Measured, Profile, Lockstep)}


def make_clock(name: str, agents: list, delay_ms: dict, *, latency=None, seed: int = 0) -> Clock:
    if name not in CLOCKS:
        raise UserError(f"unknown clock {name!r}; choose one of {', '.join(CLOCKS)}")
    if name == "profile":
        return Profile(agents, delay_ms, latency=latency, seed=seed)
    return CLOCKS[name](agents, delay_ms)


@functools.lru_cache(maxsize=4096)  # a SeedSequence costs more than a scripted match's tick
def agent_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, index, 0xA6E7]).generate_state(1)[0])


__all__ = ["Clock", "Lockstep", "Profile", "Measured", "Wall", "CLOCKS", "make_clock", "land_tick",
           "device_sync", "agent_seed"]
