"""The fixed-tick deadline scheduler: the world ticks whether or not an agent has answered.

An action decided from the observation of tick t with latency L takes effect at the first tick
at or after t*dt + L; until then the agent's late policy applies (``noop``: action 0, or
``repeat``: the last action it decided). Each agent has at most one decision in flight; the
next one starts from the observation of the tick at which the previous one lands (if that one
lands at once too, the newer decision wins).

Clocks decide L:
- ``lockstep``: L = 0, the world waits (the usual PettingZoo loop; the control condition);
- ``profile``: L drawn from the agent's latency profile with a seeded generator (replays
  bit-for-bit anywhere);
- ``measured``: L = the real duration of act(), device-synchronised, in virtual time;
- ``wall``: real time; agents think in worker threads while the world ticks.
Any clock but lockstep adds an optional per-agent network delay. An optional overage bank
(Kaggle style) lets an agent overrun ``deadline_ms`` while the bank lasts, the world waiting.
"""
from __future__ import annotations

import math
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import UserError
from .latency import LatencyProfile

CLOCKS = ("wall", "measured", "profile", "lockstep")
LATE_POLICIES = ("noop", "repeat")
OK, INVALID, ERROR, TIMEOUT, ABSTAINED, SUPERSEDED = range(6)
STATUS_NAMES = ("ok", "invalid", "error", "timeout", "abstained", "superseded")


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

    def latency_summary(self) -> dict:
        lat = np.asarray(self.latencies_ms, dtype=float)
        if not len(lat):
            return {"mean_ms": None, "p50_ms": None, "p99_ms": None}
        return {"mean_ms": float(lat.mean()), "p50_ms": float(np.percentile(lat, 50)),
                "p99_ms": float(np.percentile(lat, 99))}


@dataclass
class Trace:
    """Per tick: the applied actions (aligned with ``agents``; None where an agent was gone)
    and a bitmask of agents on their late policy; for games that take an arrival order, that
    order per tick (so replays re-apply it). Per decision: (agent index, start tick,
    land tick, latency ms, status, timing dict or None). Wall clock: tick start offsets (s)."""
    agents: list
    actions: list = field(default_factory=list)
    late: list = field(default_factory=list)
    decisions: list = field(default_factory=list)
    tick_offsets_s: list = field(default_factory=list)
    arrival: list = field(default_factory=list)  # per tick: agent indices in the order handed to the env

    def was_late(self, tick: int, agent: str) -> bool:
        return bool(self.late[tick] >> self.agents.index(agent) & 1)

    def in_flight(self, tick: int, agent: str):
        """(start_tick, land_tick) of the decision of `agent` in flight at `tick`, or None."""
        i = self.agents.index(agent)
        for d in self.decisions:
            if d[0] == i and d[1] <= tick < d[2]:
                return d[1], d[2]
        return None


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
            out["trace"] = asdict(self.trace)
        return out


class _Decision:
    __slots__ = ("start_tick", "land_tick", "latency_ms", "action", "status", "timing", "started_at")

    def __init__(self, start_tick, started_at=0.0):
        self.start_tick = start_tick
        self.started_at = started_at
        self.land_tick = None
        self.latency_ms = 0.0
        self.action = None
        self.status = OK
        self.timing = None


def _decide(agent, observation, info, n, space):
    """One act() with containment -> (action, status, error text). An exception, None, an
    action outside the space or masked by the observation's action mask never reach the game."""
    try:
        action = agent.act(observation, info)
    except Exception as e:  # an agent's bug must not stop the match
        return None, ERROR, f"{type(e).__name__}: {e}"
    if action is None:
        return None, ABSTAINED, None
    if n is not None:  # Discrete: the hot path, no numpy calls
        if type(action) is not int:
            if not isinstance(action, np.integer):  # bools and strings too
                return None, INVALID, None
            action = int(action)
        if not 0 <= action < n:
            return None, INVALID, None
        mask = observation.get("action_mask") if type(observation) is dict else None
        if mask is None and info:
            mask = info.get("action_mask")
        if mask is not None and not mask[action]:
            return None, INVALID, None
        return action, OK, None
    try:
        ok = space.contains(np.asarray(action, dtype=space.dtype))
    except Exception:
        ok = False
    if not ok:
        return None, INVALID, None
    return (action.tolist() if isinstance(action, np.ndarray) else action), OK, None


def _count_failure(stats: AgentStats, status: int, error) -> None:
    if status == INVALID:
        stats.invalid += 1
    elif status == ERROR:
        stats.errors += 1
        stats.last_error = error
    elif status == ABSTAINED:
        stats.abstained += 1


def _device_sync():
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _agent_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, index, 0xA6E7]).generate_state(1)[0])


class _Worker(threading.Thread):
    """One thread per agent for the wall clock; results go to a shared queue."""

    def __init__(self, index, agent, results: queue.SimpleQueue):
        super().__init__(daemon=True, name=f"fpx-agent-{index}")
        self.index, self.agent, self.results = index, agent, results
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()

    def run(self):
        while True:
            job = self.jobs.get()
            if job is None:
                return
            decision, observation, info, n, space = job
            decision.action, decision.status, error = _decide(self.agent, observation, info, n, space)
            decision.timing = getattr(self.agent, "last_timing", None)
            self.results.put((self.index, decision, time.perf_counter(), error))


def run_match(env, agents: dict, *, tick_hz: float | None = None, clock: str = "lockstep",
              late: str | dict = "noop", seed: int = 0, record=None, latency=None,
              network_delay_ms=None, overage_ms=None, deadline_ms: float | None = None,
              max_ticks: int | None = None, decision_timeout_s: float = 5.0,
              game: str | None = None, env_kwargs: dict | None = None, on_tick=None) -> MatchResult:
    """Play one match of a PettingZoo ParallelEnv under a deadline clock (see module doc).

    agents: {agent_id: agent}. latency (profile clock): {agent_id: ms | [ms samples] |
    LatencyProfile}. network_delay_ms, overage_ms: a number for all agents or {agent_id: ms}.
    record: a path to write a replay file to. game/env_kwargs: how to rebuild the env for replays
    (found from the env itself for this project's games). on_tick (viewers): called after each
    env.step as on_tick(tick, env, trace, in_flight) with in_flight = {agent: (start_tick,
    elapsed_ms)} for decisions still in flight (elapsed in the clock's time); returning False
    ends the match there."""
    if clock not in CLOCKS:
        raise UserError(f"unknown clock {clock!r}; choose one of {', '.join(CLOCKS)}")
    ids = list(env.possible_agents)
    missing = [a for a in ids if a not in agents]
    if missing or set(agents) - set(ids):
        raise UserError(f"agents must be given for exactly {ids}; missing {missing}, "
                        f"unknown {sorted(set(agents) - set(ids))}")
    late_of = {a: late.get(a, "noop") if isinstance(late, dict) else late for a in ids}
    for a, policy in late_of.items():
        if policy not in LATE_POLICIES:
            raise UserError(f"unknown late policy {policy!r} for {a}; choose noop or repeat")
    tick_hz = float(tick_hz or env.metadata.get("tick_hz") or env.metadata.get("render_fps") or 60)
    if not tick_hz > 0:
        raise UserError(f"tick_hz must be positive, got {tick_hz}")
    dt_ms = 1000.0 / tick_hz

    def per_agent(value, name):
        if value is None:
            return {a: 0.0 for a in ids}
        if isinstance(value, dict):
            unknown = set(value) - set(ids)
            if unknown:
                raise UserError(f"{name} names unknown agents {sorted(unknown)}")
            return {a: float(value.get(a, 0.0)) for a in ids}
        return {a: float(value) for a in ids}

    delay = per_agent(network_delay_ms, "network_delay_ms") if clock != "lockstep" else per_agent(None, "")
    bank = per_agent(overage_ms, "overage_ms") if overage_ms is not None else None
    deadline = float(deadline_ms) if deadline_ms is not None else dt_ms
    profiles = {}
    if clock == "profile":
        if latency is None:
            raise UserError("the profile clock needs latency profiles (latency={agent: ms | samples | profile})")
        for a in ids:
            if a not in latency:
                raise UserError(f"the profile clock has no latency profile for agent {a!r}")
            profiles[a] = LatencyProfile.coerce(latency[a], agent=a)

    observations, infos = env.reset(seed=seed)
    index = {a: i for i, a in enumerate(ids)}
    stats = {a: AgentStats(spec=str(getattr(agents[a], "spec", type(agents[a]).__name__))) for a in ids}
    disabled = set()
    rngs = {a: np.random.default_rng(_agent_seed(seed, index[a] + 1000)) for a in ids}
    tiebreak = np.random.default_rng(_agent_seed(seed, 999))
    for a in ids:
        agent = agents[a]
        try:
            if hasattr(agent, "attach_env"):
                agent.attach_env(env)
            agent.reset(a, env.observation_space(a), env.action_space(a), _agent_seed(seed, index[a]))
        except Exception as e:
            disabled.add(a)
            stats[a].errors += 1
            stats[a].last_error = f"reset: {type(e).__name__}: {e}"
    noop = {a: getattr(env, "noop_action", lambda _a: 0)(a) for a in ids}
    set_order = getattr(env, "set_arrival_order", None)

    n_of = {a: getattr(env.action_space(a), "n", None) for a in ids}
    space_of = {a: env.action_space(a) for a in ids}
    fixed_ms = {a: 0.0 if clock == "lockstep" else None for a in ids}
    for a, p in profiles.items():
        if p.distribution.get("kind") == "constant":
            fixed_ms[a] = p.distribution["ms"] + delay[a]
    repeat = {a: late_of[a] == "repeat" for a in ids}
    trace = Trace(agents=ids)
    inflight: dict[str, _Decision | None] = {a: None for a in ids}
    last_decided = dict(noop)
    wall = clock == "wall"
    results: queue.SimpleQueue = queue.SimpleQueue()
    workers = {}
    if wall:
        for a in ids:
            if a not in disabled:
                workers[a] = _Worker(index[a], agents[a], results)
                workers[a].start()
    arrived: list = []  # wall: decisions completed, waiting for their landing tick
    abandoned: set = set()  # wall: agents whose timed-out act() has not returned yet
    limit = max_ticks if max_ticks is not None else sys.maxsize
    t0 = time.perf_counter()
    tick = 0

    def finish(a, d: _Decision, error):  # wall clock: a decision that has landed
        s = stats[a]
        s.decisions += 1
        if d.status == OK:
            s.latencies_ms.append(d.latency_ms)
        else:
            _count_failure(s, d.status, error)
        trace.decisions.append((index[a], d.start_tick, d.land_tick, d.latency_ms, d.status, d.timing))

    try:
        while env.agents and tick < limit:
            live = env.agents
            if wall:
                target = t0 + tick * dt_ms / 1000.0
                _sleep_until(target)
                now = time.perf_counter()
                trace.tick_offsets_s.append(now - t0)
                while True:
                    try:
                        i, d, done_at, error = results.get_nowait()
                    except queue.Empty:
                        break
                    a = ids[i]
                    if a in abandoned:  # the late answer of a timed-out decision: discard
                        abandoned.discard(a)
                        continue
                    d.latency_ms = (done_at - d.started_at) * 1000.0 + delay[a]
                    land_at = d.started_at + d.latency_ms / 1000.0
                    d.land_tick = max(d.start_tick, math.ceil((land_at - t0) * 1000.0 / dt_ms - 1e-9))
                    arrived.append((a, d, error))
            fresh = {}
            order = []
            for a in live:
                if a in disabled:
                    continue
                d = inflight[a]
                if d is not None and wall:
                    for item in arrived:
                        if item[1] is d and d.land_tick <= tick:
                            arrived.remove(item)
                            inflight[a] = None
                            finish(a, d, item[2])
                            if d.status == OK:
                                fresh[a] = d.action
                                order.append((d.start_tick * dt_ms + d.latency_ms, a))
                            break
                    else:
                        if time.perf_counter() - d.started_at > decision_timeout_s and a not in abandoned:
                            d.status, d.land_tick = TIMEOUT, tick
                            stats[a].timeouts += 1
                            stats[a].decisions += 1
                            trace.decisions.append((index[a], d.start_tick, tick, None, TIMEOUT, None))
                            abandoned.add(a)
                            inflight[a] = None
                elif d is not None and d.land_tick <= tick:
                    inflight[a] = None
                    if d.status == OK:
                        fresh[a] = d.action
                        if set_order is not None:
                            order.append((d.start_tick * dt_ms + d.latency_ms, a))
                if inflight[a] is None and a not in abandoned:
                    obs, info = observations[a], infos.get(a) or {}
                    if wall:
                        d = inflight[a] = _Decision(tick, time.perf_counter())
                        workers[a].jobs.put((d, obs, info, n_of[a], space_of[a]))
                        continue
                    agent = agents[a]
                    if clock == "measured":
                        started = time.perf_counter()
                        action, status, error = _decide(agent, obs, info, n_of[a], space_of[a])
                        _device_sync()
                        latency_ms = (time.perf_counter() - started) * 1000.0 + delay[a]
                    else:
                        action, status, error = _decide(agent, obs, info, n_of[a], space_of[a])
                        latency_ms = fixed_ms[a] if fixed_ms[a] is not None else \
                            profiles[a].sample(rngs[a]) + delay[a]
                    if bank is not None and latency_ms > deadline and bank[a] > 0:
                        paid = min(bank[a], latency_ms - deadline)
                        bank[a] -= paid
                        latency_ms -= paid
                    # first tick at or after start*dt + L; the epsilon absorbs float noise in k*dt
                    land = tick + max(0, math.ceil(latency_ms / dt_ms - 1e-9)) if latency_ms else tick
                    s = stats[a]
                    s.decisions += 1
                    if status == OK:
                        s.latencies_ms.append(latency_ms)
                    else:
                        _count_failure(s, status, error)
                    trace.decisions.append((index[a], tick, land, latency_ms, status,
                                            getattr(agent, "last_timing", None)))
                    if land == tick:
                        if status == OK:
                            if a in fresh:  # an older decision landed this tick too: the newer wins
                                order = [o for o in order if o[1] != a]
                            fresh[a] = action
                            if set_order is not None:
                                order.append((tick * dt_ms + latency_ms, a))
                    else:
                        d = inflight[a] = _Decision(tick)
                        d.land_tick, d.latency_ms, d.action, d.status = land, latency_ms, action, status
            actions = {}
            late_mask = 0
            for a in live:
                if a in fresh:
                    actions[a] = last_decided[a] = fresh[a]
                else:
                    late_mask |= 1 << index[a]
                    stats[a].missed_ticks += 1
                    actions[a] = last_decided[a] if repeat[a] else noop[a]
            if set_order is not None:
                # fresh orders in arrival order, exact ties and late-policy orders in a seeded
                # random order, so that no agent id is favoured
                keys = tiebreak.random(len(live))
                ranked = {a: (0, arrival, keys[j]) for arrival, a in order for j in [live.index(a)]}
                arrival = sorted(live, key=lambda a: ranked.get(a, (1, 0.0, keys[live.index(a)])))
                set_order(arrival)
                trace.arrival.append([index[a] for a in arrival])
            trace.actions.append([actions.get(a) for a in ids])
            trace.late.append(late_mask)
            observations, rewards, terminations, truncations, infos = env.step(actions)
            for a, r in rewards.items():
                stats[a].reward += float(r)
            tick += 1
            if on_tick is not None:
                now = time.perf_counter()
                thinking = {a: (d.start_tick, (now - d.started_at) * 1000.0 if wall
                                else (tick - d.start_tick) * dt_ms)
                            for a, d in inflight.items() if d is not None}
                if on_tick(tick - 1, env, trace, thinking) is False:
                    break
    finally:
        for w in workers.values():
            w.jobs.put(None)

    outcome = env.match_outcome() if hasattr(env, "match_outcome") else {}
    for a, m in (outcome.get("metrics") or {}).items():
        if a in stats:
            stats[a].metrics = dict(m)
    if "winner" in outcome:
        winner = outcome["winner"]
    else:
        best = max(s.reward for s in stats.values())
        leaders = [a for a, s in stats.items() if s.reward == best]
        winner = leaders[0] if len(leaders) == 1 else None
    result = MatchResult(
        game=game or _game_name(env), seed=seed, clock=clock, tick_hz=tick_hz,
        late=late if isinstance(late, str) else "mixed", ticks=tick, winner=winner, stats=stats,
        trace=trace, final_digest=env.state_digest() if hasattr(env, "state_digest") else None,
        wall_time_s=time.perf_counter() - t0,
    )
    if record is not None:
        from .replay import save

        save(record, result, env_kwargs=env_kwargs, env=env)
    return result


def _sleep_until(target: float) -> None:
    """Sleep to within ~0.2 ms of target, then yield-spin: time.sleep alone overshoots by the
    kernel's timer slack, and a bare busy loop would starve the agents' threads of the GIL."""
    remaining = target - time.perf_counter()
    if remaining > 0.0015:
        time.sleep(remaining - 0.001)
    while time.perf_counter() < target:
        time.sleep(0)


def _game_name(env) -> str:
    from .games import GAMES, module_for

    mod = module_for(env)
    if mod is not None:
        for name, module_name in GAMES.items():
            if mod.__name__ == module_name:
                return name
    return str(env.metadata.get("name", type(getattr(env, "unwrapped", env)).__name__))
