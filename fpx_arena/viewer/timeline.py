"""What the overlays show for each agent at each frame, from a replay or from a live trace.

Frame k is the world after k steps: it shows the actions of tick k-1, so the "late" flag of
frame k is the agent's late bit at tick k-1. A decision started at tick s and landing at tick
l is in flight in frames s+1 .. l (it was asked at the observation of tick s, and its action
is applied by step l, first seen in frame l+1). No pygame here: tests and export use it too.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from ..agents.spec import AgentSpec
from ..errors import SpecError
from ..kernels import REGISTRY, aliases
from ..trace import OK, STATUS_NAMES

_MIN_SCALE_MS = 100.0


@dataclass
class AgentView:
    id: str
    spec: str = ""
    label: str = ""  # model name (or the spec for scripted agents)
    precision: str = ""  # from the spec: llm:<model>@<precision>
    plan: str | None = None  # live: the agent's current precision plan, if it exposes one (.plan)
    thinking_ms: float | None = None  # elapsed time of the decision in flight, None if idle
    last_latency_ms: float | None = None
    last_status: str = ""  # status of the last landed decision when not "ok"
    decisions: int = 0
    missed: int = 0
    late: bool = False  # this frame's action was the late policy's


def parse_spec(spec: str) -> tuple[str, str]:
    """(label, precision) of an agent spec: llm:<model>@<precision>[?...] -> (model, precision);
    anything else -> (spec without options, "")."""
    try:
        parsed = AgentSpec.parse(spec)
    except SpecError:  # a spec recorded by a plug-in or an older version: shown as it is
        return (spec or "").split("?", 1)[0], ""
    if parsed.kind == "adaptive":  # the candidate of each decision is shown as its plan
        return f"adaptive ({len(parsed.parts)} candidates)", "adaptive"
    return parsed.label, parsed.precision or ""


def nice_scale(ms: float) -> float:
    """The thinking bar's full width in ms: at least 100 ms, rounded up to 1/2/5 x 10^n."""
    ms = max(_MIN_SCALE_MS, float(ms))
    mag = 10 ** math.floor(math.log10(ms))
    for step in (1, 2, 2.5, 5, 10):
        if ms <= step * mag:
            return step * mag
    return 10 * mag


_BITS = {**{n: f.bits for n, f in REGISTRY.items()}, **{a: REGISTRY[n].bits for a, n in aliases().items()}}


def plan_text(plan) -> str | None:
    """One line for a precision plan: a string as it is, an object's summary(), or the share of
    layers per format of a {layer: format} mapping (a Plan's ``formats``), e.g.
    "30% fp4 + 70% fp8 (6.8 bits)" (bits counted as in the FPX paper: 8 - 4*gamma)."""
    if plan is None:
        return None
    if isinstance(plan, str):
        return plan
    summary = getattr(plan, "summary", None)
    if callable(summary):
        return str(summary())
    formats = getattr(plan, "formats", plan)
    if isinstance(formats, dict) and formats and all(isinstance(v, str) for v in formats.values()):
        counts = {}
        for fmt in formats.values():
            counts[fmt] = counts.get(fmt, 0) + 1
        n = len(formats)
        if len(counts) == 1:
            return next(iter(counts))
        ranked = sorted(counts.items(), key=lambda x: _BITS.get(x[0], 99))
        parts = " + ".join(f"{100 * c / n:.0f}% {f}" for f, c in ranked)
        if all(f in _BITS for f in counts):
            parts += f" ({sum(_BITS[f] * c for f, c in counts.items()) / n:.1f} bits)"
        return parts
    return str(plan)


class ReplayTimeline:
    """Overlay facts per frame of a replay, answered in O(log n) for seeking."""

    def __init__(self, data: dict):
        self.agents = list(data["agents"])
        self.specs = {a: str((data.get("specs") or {}).get(a, "")) for a in self.agents}
        self.tick_hz = float(data["tick_hz"])
        self.dt_ms = 1000.0 / self.tick_hz
        n = len(self.agents)
        late = list(data.get("late_mask") or [0] * len(data["actions"]))
        self.frames = len(data["actions"]) + 1
        # missed[i][k] = late ticks of agent i among ticks < k
        self.missed = []
        self.late = late
        for i in range(n):
            acc, row = 0, [0]
            for m in late:
                acc += (m >> i) & 1
                row.append(acc)
            self.missed.append(row)
        per_agent = [[] for _ in range(n)]
        timings = data.get("timings") or []
        for j, d in enumerate(data.get("decisions") or []):
            i, start, land, latency, status = d[:5]
            # an adaptive agent's timing names the candidate (plan) that made the decision
            timing = timings[j] if j < len(timings) else None
            plan = timing.get("plan") if isinstance(timing, dict) else None
            per_agent[i].append((start, land if land is not None else start, latency, status, plan))
        self.by_start = [sorted(p, key=lambda d: d[0]) for p in per_agent]
        self.starts = [[d[0] for d in p] for p in self.by_start]
        self.by_land = [sorted(p, key=lambda d: d[1]) for p in per_agent]
        self.lands = [[d[1] for d in p] for p in self.by_land]
        lat = [d[2] for p in per_agent for d in p if d[2] is not None]
        self.scale_ms = nice_scale(max(lat) if lat else 0.0)

    def views(self, frame: int) -> list[AgentView]:
        frame = max(0, min(frame, self.frames - 1))
        out = []
        for i, a in enumerate(self.agents):
            label, precision = parse_spec(self.specs[a])
            v = AgentView(id=a, spec=self.specs[a], label=label, precision=precision)
            v.missed = self.missed[i][frame]
            v.late = frame > 0 and bool((self.late[frame - 1] >> i) & 1)
            # decisions started before this frame whose landing is at or after it
            # (one decision in flight at a time: only the newest can be)
            j = bisect.bisect_left(self.starts[i], frame)
            if j and self.by_start[i][j - 1][1] >= frame:
                v.thinking_ms = (frame - self.by_start[i][j - 1][0]) * self.dt_ms
            # the last decision that landed (was applied) before this frame
            j = bisect.bisect_left(self.lands[i], frame)
            v.decisions = j
            if j:
                _, _, latency, status, plan = self.by_land[i][j - 1]
                v.last_latency_ms = latency
                v.plan = plan_text(plan)
                v.last_status = "" if status == OK else STATUS_NAMES[status]
            out.append(v)
        return out


class LiveTimeline:
    """Overlay facts for a match being played, fed by run_match's on_tick callback."""

    def __init__(self, agent_ids, players: dict, tick_hz: float):
        self.agents = list(agent_ids)
        self.players = players
        self.dt_ms = 1000.0 / float(tick_hz)
        self.specs = {a: str(getattr(players[a], "spec", type(players[a]).__name__)) for a in self.agents}
        self._index = {a: i for i, a in enumerate(self.agents)}
        self._missed = [0] * len(self.agents)
        self._seen = 0  # trace.decisions consumed
        self._pending: list = []  # decisions known but not landed yet (virtual clocks)
        self._last = [None] * len(self.agents)
        self._count = [0] * len(self.agents)
        self._ticks = 0
        self.scale_ms = nice_scale(0.0)
        self.current: list[AgentView] = []

    def update(self, tick: int, trace, in_flight: dict) -> list[AgentView]:
        # missed ticks since the last update (normally one tick)
        for t in range(self._ticks, tick + 1):
            m = trace.late[t]
            for i in range(len(self.agents)):
                self._missed[i] += (m >> i) & 1
        self._ticks = tick + 1
        new = trace.decisions[self._seen:]
        self._seen = len(trace.decisions)
        self._pending.extend(new)
        keep = []
        for d in self._pending:  # trace.Decision records
            if d.land <= tick:
                self._last[d.agent] = d
                self._count[d.agent] += 1
            else:
                keep.append(d)
        self._pending = keep
        out = []
        late = trace.late[tick]
        for i, a in enumerate(self.agents):
            label, precision = parse_spec(self.specs[a])
            v = AgentView(id=a, spec=self.specs[a], label=label, precision=precision)
            v.missed = self._missed[i]
            v.late = bool((late >> i) & 1)
            v.decisions = self._count[i]
            if a in in_flight:
                v.thinking_ms = in_flight[a][1]
            d = self._last[i]
            if d is not None:
                v.last_latency_ms = d.latency_ms
                v.last_status = "" if d.status == OK else STATUS_NAMES[d.status]
            v.plan = plan_text(getattr(self.players[a], "plan", None))
            for ms in (v.thinking_ms, v.last_latency_ms):
                if ms is not None and ms > self.scale_ms:
                    self.scale_ms = nice_scale(ms)
            out.append(v)
        self.current = out
        return out
