"""A seekable position in a replay: the game re-simulated to any frame.

Going forward steps the game; going backward restores the nearest earlier copy of the whole
env (a deepcopy kept every `every` frames on the way) and steps from there, so a seek costs at
most `every` steps however long the match.
"""
from __future__ import annotations

import copy

from ..errors import ReplayError
from ..replay import make_env


class ReplayCursor:
    def __init__(self, data: dict, every: int | None = None, on_step=None):
        self.data = data
        self.agents = list(data["agents"])
        self.actions = data["actions"]
        self.total = len(self.actions)  # frames 0 .. total
        self.every = int(every or max(30, round(float(data["tick_hz"]) * 2)))
        self.env = make_env(data)
        try:
            self.env.reset(seed=data["seed"])
        except Exception as e:
            raise ReplayError(f"cannot reset game {data['game']!r} of this replay: {e}") from None
        # the order in which the agents' actions arrived each tick (games that execute in it)
        self.arrival = data.get("arrival") or []
        if self.arrival and (not hasattr(self.env, "set_arrival_order") or len(self.arrival) != self.total):
            raise ReplayError(f"replay carries {len(self.arrival)} arrival orders for {self.total} ticks of a "
                              "game that " + ("takes none" if not hasattr(self.env, "set_arrival_order")
                                              else "needs one per tick"))
        self.frame = 0
        self.on_step = on_step  # on_step(frame, env) after every step, e.g. to chart the past
        self._saved = {0: copy.deepcopy(self.env)}

    def seek(self, frame: int):
        """The env after `frame` steps (clamped to the replay)."""
        frame = max(0, min(int(frame), self.total))
        if frame < self.frame or frame - self.frame > self.every:
            base = max(k for k in self._saved if k <= frame)
            if base > self.frame or frame < self.frame:
                self.env = copy.deepcopy(self._saved[base])
                self.frame = base
        while self.frame < frame:
            self._step()
        return self.env

    def last_actions(self) -> dict | None:
        """The actions applied by the last step (those this frame shows), None at frame 0."""
        if self.frame == 0:
            return None
        return dict(zip(self.agents, self.actions[self.frame - 1]))

    def _step(self):
        env, t = self.env, self.frame
        if not env.agents:
            raise ReplayError(f"the game ended at tick {t} but the replay goes on to tick {self.total}: "
                              "was it recorded with other game settings (env_kwargs)?")
        row = self.actions[t]
        actions = {a: act for a, act in zip(self.agents, row) if act is not None and a in env.agents}
        try:
            if self.arrival:
                env.set_arrival_order([self.agents[i] for i in self.arrival[t]])
            env.step(actions)
        except Exception as e:
            raise ReplayError(f"tick {t}: the game rejected the recorded actions {row!r}: {e}") from None
        self.frame = t + 1
        if self.on_step is not None:
            self.on_step(self.frame, env)
        if self.frame % self.every == 0 and self.frame not in self._saved:
            self._saved[self.frame] = copy.deepcopy(env)
