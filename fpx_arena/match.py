"""The fixed-tick deadline scheduler: the world ticks whether or not an agent has answered.

A ``MatchSpec`` says everything a match needs (game and settings, agent specs, clock, late
policy, latencies, seed, decision timeout); ``MatchSpec.play`` builds and plays it, and
``run_match(env, agents, ...)`` plays one with agents already built. See clocks.py for how
each clock charges a decision; an action decided from the observation of tick t with latency
L takes effect at the first tick at or after t*dt + L; until then the agent's late policy
applies (``noop``: the game's no-op action, ``repeat``: the last action it decided). Each
agent has at most one decision in flight; the next one starts from the observation of the
tick at which the previous one lands. An optional overage bank (Kaggle style) lets an agent
overrun ``deadline_ms`` while the bank lasts, the world waiting.

Agents are contained (isolation.py): an exception, an invalid action or a decision that
takes longer than ``decision_timeout_s`` (under every clock) loses that decision;
``forfeit_after`` timeouts in a match, ``sys.exit`` or a dead agent process forfeit the match,
which ends there, the other agent winning.
"""
from __future__ import annotations

import importlib
import math
import sys
import time
from dataclasses import dataclass, field
from functools import reduce
from itertools import repeat
from operator import add

import numpy as np

from . import agents as registry
from . import games
from .agents.context import DecisionContext
from .agents.process import AgentDied
from .clocks import Clock, agent_seed, device_sync, land_tick, make_clock
from .errors import SpecError, UserError
from .isolation import Guard, is_hung, trusted
from .latency import latency_key
from .replay import save as save_replay
from .slots import Slot, check_action
from .trace import ERROR, OK, TIMEOUT, ActionLog, Decision, MatchResult, Trace
from .wallclock import play_wall

LATE_POLICIES = ("noop", "repeat")
DEFAULT_DECISION_TIMEOUT_S = 10.0
FORFEIT_AFTER = 3  # decision timeouts in one match
RESET_TIMEOUT_S = 900.0  # reset() may load a model (an LLM agent's first): minutes, not a decision's seconds


@dataclass
class MatchSpec:
    """One match, as the CLI, the tournament runner and run_match describe it."""
    game: str | None = None                 # registered game name (or package.module:factory)
    env_kwargs: dict = field(default_factory=dict)
    agents: dict = field(default_factory=dict)  # player id -> spec string or AgentSpec
    tick_hz: float | None = None            # None: the game's own
    clock: str = "lockstep"
    late: str | dict = "noop"
    seed: int = 0
    latency: dict | None = None             # profile clock: {player: ms | [samples] | LatencyProfile}
    network_delay_ms: float | dict | None = None
    overage_ms: float | dict | None = None
    deadline_ms: float | None = None        # overage threshold (default: one tick)
    max_ticks: int | None = None
    decision_timeout_s: float | None = DEFAULT_DECISION_TIMEOUT_S
    forfeit_after: int = FORFEIT_AFTER
    isolate: bool = False                   # module/entry-point agents in child processes

    def make_env(self):
        if self.game is None:
            raise UserError("the match spec names no game")
        if ":" not in self.game:
            return games.make(self.game, **self.env_kwargs)
        module_name, _, attr = self.game.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr or "parallel_env")
        except (ImportError, AttributeError) as e:
            raise SpecError(f"cannot load game {self.game!r}: {e}") from None
        try:
            return factory(**self.env_kwargs)
        except TypeError as e:
            raise SpecError(f"game {self.game!r}: {e}") from None

    def make_agents(self) -> dict:
        return {p: registry.make(s, isolate=self.isolate) for p, s in self.agents.items()}

    def play(self, env=None, agents: dict | None = None, *, record=None, on_tick=None) -> MatchResult:
        """Play the match (building the env and agents the spec names where none are given)."""
        env = env if env is not None else self.make_env()
        agents = agents if agents is not None else self.make_agents()
        result = _Match(self, env, agents, on_tick).play()
        if record is not None:
            save_replay(record, result, env_kwargs=self.env_kwargs, env=env)
        return result


def run_match(env, agents: dict, *, tick_hz: float | None = None, clock: str = "lockstep",
              late: str | dict = "noop", seed: int = 0, record=None, latency=None,
              network_delay_ms=None, overage_ms=None, deadline_ms: float | None = None,
              max_ticks: int | None = None, decision_timeout_s: float | None = DEFAULT_DECISION_TIMEOUT_S,
              forfeit_after: int = FORFEIT_AFTER, game: str | None = None, env_kwargs: dict | None = None,
              on_tick=None) -> MatchResult:
    """Play one match of a PettingZoo ParallelEnv with built agents ({agent_id: agent}); the
    keywords are MatchSpec's fields. record: a replay file to write. on_tick (viewers): called
    after each env.step as on_tick(tick, env, trace, in_flight), in_flight = {agent: (start_tick,
    elapsed_ms)}; returning False ends the match there."""
    spec = MatchSpec(game=game or game_name(env), env_kwargs=env_kwargs or {},
                     agents={a: str(getattr(p, "spec", type(p).__name__)) for a, p in agents.items()},
                     tick_hz=tick_hz, clock=clock, late=late, seed=seed, latency=latency,
                     network_delay_ms=network_delay_ms, overage_ms=overage_ms, deadline_ms=deadline_ms,
                     max_ticks=max_ticks, decision_timeout_s=decision_timeout_s, forfeit_after=forfeit_after)
    return spec.play(env, agents, record=record, on_tick=on_tick)


def game_name(env) -> str:
    return games.name_of(env)


class _Match:
    def __init__(self, spec: MatchSpec, env, agents: dict, on_tick):
        ids = list(env.possible_agents)
        missing, unknown = [a for a in ids if a not in agents], sorted(set(agents) - set(ids))
        if missing or unknown:
            raise UserError(f"agents must be given for exactly {ids}; missing {missing}, unknown {unknown}")
        late = {a: spec.late.get(a, "noop") if isinstance(spec.late, dict) else spec.late for a in ids}
        for a, policy in late.items():
            if policy not in LATE_POLICIES:
                raise UserError(f"unknown late policy {policy!r} for {a}; choose noop or repeat")
        self.tick_hz = float(spec.tick_hz or env.metadata.get("tick_hz") or env.metadata.get("render_fps") or 60)
        if not (self.tick_hz > 0 and math.isfinite(self.tick_hz)):
            raise UserError(f"tick_hz must be a positive number, got {spec.tick_hz}")
        timeout = spec.decision_timeout_s
        if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
            raise UserError(f"decision_timeout_s must be a positive number of seconds, got {timeout}")
        if not (isinstance(spec.forfeit_after, int) and spec.forfeit_after >= 1):
            raise UserError(f"forfeit_after must be a whole number of timeouts >= 1, got {spec.forfeit_after!r}")
        self.spec, self.env, self.ids, self.on_tick = spec, env, ids, on_tick
        self.index = {a: i for i, a in enumerate(ids)}
        self.dt_ms = 1000.0 / self.tick_hz
        self.timeout_s = timeout
        self.deadline_ms = float(spec.deadline_ms) if spec.deadline_ms is not None else self.dt_ms
        self.slots = [Slot(a, i, agents[a], env, late[a]) for i, a in enumerate(ids)]
        self.clock: Clock = make_clock(spec.clock, ids, self._per_agent(spec.network_delay_ms, "network_delay_ms"),
                                       latency=spec.latency, seed=spec.seed)
        if spec.overage_ms is not None:
            for s, (a, ms) in zip(self.slots, self._per_agent(spec.overage_ms, "overage_ms").items()):
                s.bank = ms
        for s in self.slots:
            s.fixed_ms = self.clock.fixed_ms(s.id)
        self.trace = Trace(agents=ids)
        self.set_order = getattr(env, "set_arrival_order", None)
        if self.set_order is not None:
            self.tiebreak = np.random.default_rng(agent_seed(spec.seed, 999))
            self._draws, self._drawn = [], 0
        self.over = False  # an agent forfeited

    def _per_agent(self, value, name) -> dict:
        if value is None:
            return {a: 0.0 for a in self.ids}
        if isinstance(value, dict):
            unknown = set(value) - set(self.ids)
            if unknown:
                raise UserError(f"{name} names unknown agents {sorted(unknown)}")
            return {a: float(value.get(a, 0.0)) for a in self.ids}
        return {a: float(value) for a in self.ids}

    # ------------------------------------------------------------------ the match
    def play(self) -> MatchResult:
        env, seed = self.env, self.spec.seed
        self.observations, self.infos = env.reset(seed=seed)
        self.t0 = time.perf_counter()
        self.tick = 0
        try:
            self._reset_agents()
            if self.clock.realtime:
                play_wall(self)
            elif self._plain():
                self._play_lockstep()
            else:
                self._play_virtual()
        finally:
            for s in self.slots:
                if s.guard is not None:
                    s.guard.close()
        return self._result()

    def _reset_agents(self):
        wall = self.clock.realtime
        for s in self.slots:
            if is_hung(s.agent):
                self.forfeit(s, "the agent is still stuck in a call from an earlier match")
                continue
            if wall or (self.timeout_s is not None and not trusted(s.agent)):
                s.guard = Guard(s.agent, s.id)
            try:
                if hasattr(s.agent, "attach_env"):
                    s.agent.attach_env(self.env)
                args = (s.id, self.env.observation_space(s.id), self.env.action_space(s.id),
                        agent_seed(self.spec.seed, s.i))
                if s.guard is None:
                    s.agent.reset(*args)
                    continue
                out = s.guard.call(RESET_TIMEOUT_S, s.agent.reset, *args)
                if out is None:
                    self.forfeit(s, f"reset() did not return within {RESET_TIMEOUT_S:g} s")
                elif not out[0]:
                    raise out[1]
            except AgentDied as e:
                self.forfeit(s, str(e))
            except Exception as e:  # the agent plays no more (it never acts): its late policy
                s.stats.errors += 1
                s.stats.last_error = f"reset: {type(e).__name__}: {e}"
                s.land = sys.maxsize

    def _plain(self) -> bool:
        """Whether every agent is called inline, charged no time and told nothing, and nobody
        watches tick by tick: the lean loop."""
        return not self.over and self.on_tick is None and all(
            s.guard is None and s.fixed_ms == 0.0 and not s.context and s.bank is None and s.n is not None
            for s in self.slots)

    def _play_lockstep(self):
        """Every live agent decides every tick with no latency (lockstep, or profiles of 0 ms):
        the hot loop the scheduler benchmark measures, kept to the bone. Decisions stay implicit
        (trace.DecisionLog); only failed ones are written down."""
        env, trace, n = self.env, self.trace, len(self.slots)
        limit = self.spec.max_ticks if self.spec.max_ticks is not None else sys.maxsize
        set_order = self.set_order
        dead = [s for s in self.slots if s.land > 0]  # reset() failed: the late policy for good
        columns = [[] for _ in self.slots]  # the applied actions, one column per agent (trace.ActionLog)
        # per agent a mask memo (see _legal): [mask, its legal actions as bytes, mask seen once]
        fast = [(s.i, s.id, s.act, s.n, [None, b"", None], columns[s.i].append) for s in self.slots if s.land <= 0]
        base_actions = {s.id: s.noop for s in dead}
        late_at, gone_at, rewards_log, failed = {}, {}, [], {}  # late_at: tick -> agents late by failure
        observations, infos, tick = self.observations, self.infos, 0
        try:
            while env.agents and tick < limit:
                live = env.agents
                actions, seated = base_actions.copy(), fast
                if len(live) != n:  # some agents have left the game
                    seated = [f for f in fast if f[1] in live]
                    for s in self.slots:
                        if s.id not in live:
                            gone_at.setdefault(s.i, tick)
                            if s in dead:
                                del actions[s.id]
                            else:
                                columns[s.i].append(None)
                for i, a, act, size, memo, put in seated:
                    obs = observations[a]
                    try:
                        action = act(obs, infos.get(a))
                    except SystemExit as e:
                        action = _Failed(_EXIT, f"the agent called sys.exit({e.code!r})")
                    except Exception as e:
                        action = _Failed(ERROR, f"{type(e).__name__}: {e}")
                    # the usual case, checked inline: an int in range, legal by the observation's mask
                    m = obs.get("action_mask") if type(obs) is dict else None
                    if not (type(action) is int and 0 <= action < size and m is not None and (
                            memo[1][action] if m is memo[0] else _legal(memo, m, action, size))):
                        action = self._lockstep_check(i, tick, action, obs, infos.get(a), failed)
                        if action is None:  # late policy: repeat re-applies what it applied last
                            s = self.slots[i]
                            action = columns[i][-1] if s.repeat and columns[i] else s.noop
                            late_at[tick] = late_at.get(tick, 0) | 1 << i
                    put(action)
                    actions[a] = action
                if dead:  # the env gets its actions in seat order, as from the other loops
                    actions = {s.id: actions[s.id] for s in self.slots if s.id in actions}
                if set_order is not None:
                    self._lockstep_order(live, self._late_bits(dead, gone_at, late_at, tick) if dead
                                         else late_at.get(tick, 0))
                observations, rewards, _, _, infos = env.step(actions)
                rewards_log.append(rewards)
                tick += 1
        except _Forfeit:
            pass
        finally:
            self.tick = tick
            for s in dead:  # their noop while they were in the game
                columns[s.i].extend([s.noop] * gone_at.get(s.i, tick) + [None] * (tick - gone_at.get(s.i, tick)))
            for column in columns:
                del column[tick:]  # a forfeit mid-tick: that tick was not played
            trace.late[:] = [self._late_bits(dead, gone_at, late_at, t) for t in range(tick)] if dead or late_at \
                else [0] * tick
            trace.actions = ActionLog(columns)
            trace.decisions.set_lockstep(trace.actions, failed, frozenset(s.i for s in dead))
            failures = [0] * n
            for _, i in failed:
                failures[i] += 1
            for s in self.slots:
                i, st = s.i, s.stats
                lived = gone_at.get(i, tick)
                late = lived if s in dead else failures[i]
                st.missed_ticks += late
                if s not in dead:
                    st.decisions += lived - late
                    st.latencies_ms.extend([0.0] * (lived - late))
                # summed in tick order, as every other clock (and a replay's verification) sums them
                st.reward += reduce(add, map(float, map(dict.get, rewards_log, repeat(s.id), repeat(0.0))), 0.0)

    @staticmethod
    def _late_bits(dead, gone_at: dict, late_at: dict, tick: int) -> int:
        """The late mask of one tick of the lean loop: agents whose reset failed (while in the
        game) and agents whose decision failed that tick."""
        bits = late_at.get(tick, 0)
        for s in dead:
            if gone_at.get(s.i, tick + 1) > tick:
                bits |= 1 << s.i
        return bits

    def _lockstep_check(self, i, tick, action, obs, info, failed: dict):
        """The full check of an action the inline one did not pass (a numpy integer, a mask in
        info, a failure, which is counted)."""
        s = self.slots[i]
        if isinstance(action, _Failed):
            if action.status == _EXIT:
                self.forfeit(s, action.error)
                raise _Forfeit
            status, error = action.status, action.error
        else:
            action, status = check_action(action, s, obs, info or {})
            if status == OK:
                return action
            error = None
        s.stats.count(status, error)
        failed[(tick, i)] = status
        return None

    def _play_virtual(self):
        """Lockstep, profile and measured with latencies, guards, contexts or overage banks."""
        env, slots, trace, dt = self.env, self.slots, self.trace, self.dt_ms
        limit = self.spec.max_ticks if self.spec.max_ticks is not None else sys.maxsize
        while env.agents and self.tick < limit and not self.over:
            tick, live = self.tick, env.agents
            fresh, order = {}, []
            for s in slots:
                if s.id not in live or s.land > tick:
                    continue
                if s.land == tick and s.pending is not None:  # the decision in flight lands now
                    self.land(s, fresh, order)
                if self.over:
                    break
                self._decide(s, tick)
                if s.land == tick and s.pending is not None:  # no latency: lands at once, the newer wins
                    self.land(s, fresh, order)
            if self.over:
                break
            self.step(live, fresh, order)
            if self.on_tick is not None:
                thinking = {s.id: (s.start_tick, (self.tick - s.start_tick) * dt)
                            for s in slots if s.land >= self.tick and s.pending is not None}
                if self.on_tick(self.tick - 1, env, trace, thinking) is False:
                    break

    def _decide(self, s: Slot, tick: int):
        """Ask one agent to decide from this tick's observation; record the decision."""
        obs, info = self.observations[s.id], self.infos.get(s.id) or {}
        kwargs = {"context": self.context(s, tick, info)} if s.context else {}
        timed = self.clock.timed
        started = time.perf_counter()
        if s.guard is None:
            try:
                out = (True, s.act(obs, info, **kwargs))
            except SystemExit as e:
                out = (False, AgentDied(f"the agent called sys.exit({e.code!r})"))
            except Exception as e:
                out = (False, e)
            if timed:
                device_sync()
            elapsed_ms = (time.perf_counter() - started) * 1000.0 if timed else 0.0
        else:  # timed on the agent's thread: the hop between threads is not the agent's time
            out = s.guard.call(self.timeout_s, _synced if timed else s.act, *((s.act,) if timed else ()),
                               obs, info, **kwargs)
            elapsed_ms = out[2] * 1000.0 if out is not None and timed else 0.0
        s.start_tick = tick
        timing = getattr(s.agent, "last_timing", None)
        if out is None:
            return self.timed_out(s, tick, self.clock.charge(s.id, self.timeout_s * 1000.0))
        if out[0]:
            action, status = check_action(out[1], s, obs, info)
            error = None
        elif isinstance(out[1], AgentDied):
            return self.forfeit(s, str(out[1]))
        else:
            action, status, error = None, ERROR, f"{type(out[1]).__name__}: {out[1]}"
        latency = s.fixed_ms if s.fixed_ms is not None else self.clock.charge(s.id, elapsed_ms, latency_key(s.agent))
        if s.bank is not None and latency > self.deadline_ms and s.bank > 0:
            paid = min(s.bank, latency - self.deadline_ms)
            s.bank -= paid
            latency -= paid
        s.land, s.start_tick, s.key = land_tick(tick, latency, self.dt_ms), tick, tick * self.dt_ms + latency
        s.pending = (action, status)
        self.record(s, status, error, latency, timing)
        if status == OK and s.on_charged is not None:
            self.tell_charged(s, latency)

    def tell_charged(self, s: Slot, latency: float):
        """Tell an agent with an ``on_charged`` hook what its decision was charged, as soon as
        it is known: on its own thread where it has one (queued before its next decision, so a
        hook that hangs is that decision's timeout, not the match's), else here; a hook that
        raises is ignored (the next context carries the same figure)."""
        if s.guard is not None:
            s.guard.notify(s.on_charged, latency)
            return
        try:
            s.on_charged(latency)
        except Exception:  # noqa: BLE001 - advisory: the agent learns it from its next context
            pass

    def record(self, s: Slot, status: int, error, latency: float, timing):
        """Count a decision and trace it (virtual clocks: when it is decided, landed or not;
        wall clock: when it lands)."""
        self.trace.decisions.append(Decision(s.i, s.start_tick, s.land, latency, status, timing))
        if status == OK:
            s.stats.decisions += 1
            s.stats.latencies_ms.append(latency)
        else:
            s.stats.count(status, error)

    def timed_out(self, s: Slot, tick: int, latency_ms: float):
        """A decision given up after the timeout: lost, counted now, and the next one starts when
        the time it was charged has passed; ``forfeit_after`` of them in one match forfeit it (counted
        over the match, not in a row: a restarted child agent would otherwise hang every few calls
        and never forfeit)."""
        s.stats.count(TIMEOUT)
        self.trace.decisions.append(Decision(s.i, s.start_tick, tick, None, TIMEOUT, None))
        s.pending, s.land = None, land_tick(tick, latency_ms, self.dt_ms)
        if s.stats.timeouts >= self.spec.forfeit_after:
            self.forfeit(s, f"{s.stats.timeouts} decisions took longer than {self.timeout_s:g} s")

    def land(self, s: Slot, fresh: dict, order: list):
        """A decision takes effect: its action (if it has one) is this tick's."""
        action, status = s.pending
        s.pending = None
        if status == OK:
            if s.id in fresh:  # an older decision landed this tick too: the newer wins
                order[:] = [o for o in order if o[1] != s.id]
            fresh[s.id] = action
            order.append((s.key, s.id))

    def context(self, s: Slot, tick: int, info: dict) -> DecisionContext:
        observed = (time.perf_counter() - self.t0) * 1000.0 if self.clock.realtime else tick * self.dt_ms
        urgency = info.get("urgency") if info else None
        return DecisionContext(tick=tick, dt_ms=self.dt_ms, observed_at_ms=observed,
                               deadline_ms=(tick + 1) * self.dt_ms, overage_left_ms=s.bank or 0.0,
                               clock=self.clock.name, recent_latencies_ms=tuple(s.stats.latencies_ms[-8:]),
                               urgency=float(urgency) if isinstance(urgency, (int, float)) else None,
                               reward=s.stats.reward)

    def step(self, live, fresh: dict, order: list):
        """Apply this tick's actions (fresh ones, else the late policy) and step the world."""
        actions, row, late = {}, [None] * len(self.slots), 0
        for s in self.slots:
            if s.id not in live:
                continue
            if s.id in fresh:
                action = s.last = fresh[s.id]
            else:
                action = s.last if s.repeat else s.noop
                late |= 1 << s.i
                s.stats.missed_ticks += 1
            row[s.i] = actions[s.id] = action
        if self.set_order is not None:
            self._order(live, order)
        self.trace.actions.append(row)
        self.trace.late.append(late)
        self.observations, rewards, _, _, self.infos = self.env.step(actions)
        for a, r in rewards.items():
            self.slots[self.ids.index(a)].stats.reward += float(r)
        self.tick += 1

    def _order(self, live, order: list):
        """Fresh actions in arrival order; exact ties and late-policy actions in a seeded random
        order, so that no agent id is favoured."""
        keys = self._tiebreak(len(live))
        ranked = {a: (0, arrival, keys[live.index(a)]) for arrival, a in order}
        arrival = sorted(live, key=lambda a: ranked.get(a, (1, 0.0, keys[live.index(a)])))
        self.set_order(arrival)
        self.trace.arrival.append([self.ids.index(a) for a in arrival])

    def _tiebreak(self, k: int) -> list:
        """The next k tiebreak draws. Drawn 4096 at a time: a generator's doubles come in the
        same sequence whatever the batch size, and one numpy call per tick costs more than the
        sorting."""
        if self._drawn + k > len(self._draws):
            self._draws = self._draws[self._drawn:] + self.tiebreak.random(max(4096, k)).tolist()
            self._drawn = 0
        self._drawn += k
        return self._draws[self._drawn - k:self._drawn]

    def _lockstep_order(self, live, late: int):
        """_order for the lean loop: every fresh action arrived at the same time, so the order is
        fresh before late, then the seeded tiebreak (the same draws as _order)."""
        keys = self._tiebreak(len(live))
        index = self.index
        if late:
            ranks = sorted(range(len(live)), key=lambda j: (late >> index[live[j]] & 1, keys[j]))
        else:
            ranks = sorted(range(len(live)), key=keys.__getitem__)
        arrival = [live[j] for j in ranks]
        self.set_order(arrival)
        self.trace.arrival.append(ranks if live == self.ids else [index[a] for a in arrival])

    def forfeit(self, s: Slot, reason: str):
        s.stats.forfeit = reason
        s.land, s.pending = sys.maxsize, None
        self.over = True

    # ------------------------------------------------------------------ result
    def _result(self) -> MatchResult:
        env, stats = self.env, {s.id: s.stats for s in self.slots}
        outcome = env.match_outcome() if hasattr(env, "match_outcome") else {}
        for a, m in (outcome.get("metrics") or {}).items():
            if a in stats:
                stats[a].metrics = dict(m)
        standing = [a for a, st in stats.items() if not st.forfeit]
        if len(standing) < len(stats):
            winner = standing[0] if len(standing) == 1 else None
        elif "winner" in outcome:
            winner = outcome["winner"]
        else:
            best = max(st.reward for st in stats.values())
            leaders = [a for a, st in stats.items() if st.reward == best]
            winner = leaders[0] if len(leaders) == 1 else None
        late = self.spec.late
        return MatchResult(
            game=self.spec.game if self.spec.game and ":" not in self.spec.game else game_name(env),
            seed=self.spec.seed, clock=self.clock.name,
            tick_hz=self.tick_hz, late=late if isinstance(late, str) else "mixed", ticks=self.tick,
            winner=winner, stats=stats, trace=self.trace,
            final_digest=env.state_digest() if hasattr(env, "state_digest") else None,
            wall_time_s=time.perf_counter() - self.t0)


def _legal(memo: list, mask, action: int, size: int) -> bool:
    """Whether `mask` allows `action`, remembering a read-only mask seen twice in a row with its
    legal actions as bytes: games hand out the same few mask arrays tick after tick, and one
    that cannot change needs no numpy indexing next time."""
    if mask is memo[2] and isinstance(mask, np.ndarray) and not mask.flags.writeable and mask.base is None \
            and mask.ndim == 1 and len(mask) >= size:
        memo[0], memo[1] = mask, bytes(mask.astype(bool))
    memo[2] = mask
    return action < len(mask) and bool(mask[action])


class _Forfeit(Exception):
    """Ends the lean lockstep loop: an agent forfeited."""


_EXIT = -1  # a _Failed status: the agent ended itself


class _Failed:
    """What an inline act() call that raised leaves for the checks."""
    __slots__ = ("status", "error")

    def __init__(self, status, error):
        self.status, self.error = status, error


def _synced(act, *args, **kwargs):
    """act() followed by a device synchronisation, so the measured clock charges the GPU's work."""
    action = act(*args, **kwargs)
    device_sync()
    return action


__all__ = ["MatchSpec", "run_match", "check_action", "game_name", "DEFAULT_DECISION_TIMEOUT_S",
           "FORFEIT_AFTER", "LATE_POLICIES"]
