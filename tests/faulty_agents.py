"""Agents (and a game) that misbehave on purpose, for the containment tests: they hang, spin,
exit, or kill the process that plays them. Importable as `faulty_agents:<Name>` with tests/ on
the path."""
import os
import sys
import threading
import time

from fpx_arena import games


class _Counting:
    """Counts act() calls and the most that ever ran at once (a reused agent must never be
    called from two threads at the same time)."""

    def __init__(self, after=0):
        self.after = int(after)
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def reset(self, agent_id, observation_space, action_space, seed):
        self.calls = 0

    def act(self, observation, info):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.calls += 1
            if self.calls > self.after:
                self.misbehave()
            return 0
        finally:
            with self._lock:
                self.active -= 1

    def misbehave(self):
        raise NotImplementedError


class Spin(_Counting):
    """After `after` decisions, loops forever in Python (it keeps the interpreter busy)."""

    def misbehave(self):
        while True:
            pass


class Sleep(_Counting):
    """After `after` decisions, blocks in one long sleep (no Python code runs meanwhile)."""

    def misbehave(self):
        time.sleep(3600)


class Block(_Counting):
    """After `after` decisions, blocks until `release` is set."""

    def __init__(self, after=0):
        super().__init__(after)
        self.release = threading.Event()

    def misbehave(self):
        self.release.wait()


class SlowOnce(_Counting):
    """Its first decision takes `seconds`; the others none."""

    def __init__(self, seconds=0.5):
        super().__init__(after=0)
        self.seconds = float(seconds)

    def misbehave(self):
        if self.calls == 1:
            time.sleep(self.seconds)


class Exit(_Counting):
    """After `after` decisions, sys.exit(code), or os._exit(code) with hard=true."""

    def __init__(self, code=3, after=5, hard=False):
        super().__init__(after)
        self.code, self.hard = int(code), bool(hard)

    def misbehave(self):
        if self.hard:
            os._exit(self.code)
        sys.exit(self.code)


class _CrashingFighter:
    """A fighter env that kills its process at its third step (a game or engine crash)."""

    def __init__(self, **kwargs):
        self._env = games.make("fighter", **kwargs)
        self._steps = 0

    def __getattr__(self, name):
        return getattr(self._env, name)

    def step(self, actions):
        self._steps += 1
        if self._steps >= 3:
            os._exit(9)
        return self._env.step(actions)


def crashing_game(**kwargs):
    return _CrashingFighter(**kwargs)
