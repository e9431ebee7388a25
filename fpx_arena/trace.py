"""What a match leaves behind: per-agent statistics, the trace of applied actions and
decisions, and the MatchResult that run_match returns."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np

OK, INVALID, ERROR, TIMEOUT, ABSTAINED, SUPERSEDED = range(6)
STATUS_NAMES = ("ok", "invalid", "error", "timeout", "abstained", "superseded")


class Decision(NamedTuple):
    """One decision of one agent. A tuple too, so replays store it as a list: [agent, start,
    land, latency_ms, status]."""
    agent: int            # index into Trace.agents
    start: int            # tick whose observation it was decided from
    land: int             # tick at which it took effect (or was given up: timeouts)
    latency_ms: float | None  # charged latency (None: timed out)
    status: int           # OK, INVALID, ERROR, TIMEOUT, ABSTAINED
    timing: dict | None = None  # the agent's own last_timing, where it keeps one


class _LazyList:
    """A list built on first access by the subclass's ``_list()``; until then nothing is paid."""

    def _list(self) -> list:
        raise NotImplementedError

    def append(self, item) -> None:
        self._list().append(item)

    def __len__(self):
        return len(self._list())

    def __iter__(self):
        return iter(self._list())

    def __getitem__(self, index):
        return self._list()[index]

    def __eq__(self, other):
        return list(self) == list(other)

    def __repr__(self):
        return f"{type(self).__name__}({self._list()!r})"


class ActionLog(_LazyList):
    """Trace.actions as the lean lockstep loop keeps them: one column per agent, the rows
    (lists, None where an agent was gone) built on first access."""

    def __init__(self, columns: list):
        self._columns = columns
        self._rows = None

    def column(self, index: int) -> list:
        return self._columns[index]

    def _list(self) -> list:
        if self._rows is None:
            self._rows = [list(row) for row in zip(*self._columns)]
        return self._rows

    def __len__(self):
        return len(self._columns[0]) if self._rows is None and self._columns else len(self._list())


class DecisionLog(_LazyList):
    """The decisions of a match as a list of Decision records. The lean lockstep loop keeps them
    implicit (every live agent decides every tick, charged nothing) and writes down only those
    that failed; the records are built on first access (replays, viewers, tests)."""

    def __init__(self, decisions=()):
        self._rows = list(decisions)
        self._implicit = None

    def set_lockstep(self, actions, failed: dict, skip: frozenset = frozenset()) -> None:
        """actions: Trace.actions (None where an agent was gone); failed: {(tick, agent index):
        status}; skip: agent indices that never decide (their reset failed)."""
        self._implicit = (actions, failed, skip)

    def _list(self) -> list:
        if self._implicit is not None:
            actions, failed, skip = self._implicit
            self._implicit = None
            get = failed.get
            self._rows.extend(Decision(i, t, t, 0.0, get((t, i), OK), None)
                              for t, row in enumerate(actions) for i, a in enumerate(row)
                              if a is not None and i not in skip)
        return self._rows


@dataclass
class AgentStats:
    spec: str = ""
    reward: float = 0.0
    decisions: int = 0
    invalid: int = 0
    errors: int = 0
    timeouts: int = 0
    abstained: int = 0
    missed_ticks: int = 0
    latencies_ms: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    last_error: str = ""
    forfeit: str = ""  # why the agent forfeited the match ("" if it did not)

    def latency_summary(self) -> dict:
        lat = np.asarray(self.latencies_ms, dtype=float)
        if not len(lat):
            return {"mean_ms": None, "p50_ms": None, "p99_ms": None}
        return {"mean_ms": float(lat.mean()), "p50_ms": float(np.percentile(lat, 50)),
                "p99_ms": float(np.percentile(lat, 99))}

    def count(self, status: int, error: str | None = None) -> None:
        """Count a decision that did not produce an action."""
        self.decisions += 1
        if status == INVALID:
            self.invalid += 1
        elif status == ERROR:
            self.errors += 1
            self.last_error = error or ""
        elif status == ABSTAINED:
            self.abstained += 1
        elif status == TIMEOUT:
            self.timeouts += 1


@dataclass
class Trace:
    """Per tick: the applied actions (aligned with ``agents``; None where an agent was gone), a
    bitmask of agents on their late policy and, for games that take one, the arrival order
    (agent indices) handed to the env. Per decision: a ``Decision``. Wall clock: each tick's
    start offset (s) from the first."""
    agents: list
    actions: list = field(default_factory=list)
    late: list = field(default_factory=list)
    decisions: DecisionLog = field(default_factory=DecisionLog)
    tick_offsets_s: list = field(default_factory=list)
    arrival: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"agents": list(self.agents), "actions": list(self.actions), "late": self.late,
                "decisions": [list(d) for d in self.decisions], "tick_offsets_s": self.tick_offsets_s,
                "arrival": self.arrival}


@dataclass
class MatchResult:
    game: str
    seed: int
    clock: str
    tick_hz: float
    late: str
    ticks: int
    winner: str | None
    stats: dict
    trace: Trace
    final_digest: str | None = None
    wall_time_s: float = 0.0

    @property
    def rewards(self) -> dict:
        return {a: s.reward for a, s in self.stats.items()}

    @property
    def latencies_ms(self) -> dict:
        return {a: s.latencies_ms for a, s in self.stats.items()}

    @property
    def missed_ticks(self) -> dict:
        return {a: s.missed_ticks for a, s in self.stats.items()}

    @property
    def metrics(self) -> dict:
        return {a: s.metrics for a, s in self.stats.items()}

    @property
    def forfeits(self) -> dict:
        """{agent: reason} for agents that forfeited (hung, crashed, exited)."""
        return {a: s.forfeit for a, s in self.stats.items() if s.forfeit}

    def to_dict(self, with_trace: bool = False) -> dict:
        out = {k: getattr(self, k) for k in
               ("game", "seed", "clock", "tick_hz", "late", "ticks", "winner", "final_digest", "wall_time_s")}
        out["agents"] = {}
        for a, s in self.stats.items():
            d = asdict(s)
            if not with_trace:
                d.pop("latencies_ms")
            d.update(s.latency_summary())
            out["agents"][a] = d
        if with_trace:
            out["trace"] = self.trace.to_dict()
        return out


__all__ = ["OK", "INVALID", "ERROR", "TIMEOUT", "ABSTAINED", "SUPERSEDED", "STATUS_NAMES", "Decision",
           "ActionLog", "DecisionLog", "AgentStats", "Trace", "MatchResult"]
