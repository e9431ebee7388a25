"""The deadline scheduler: clock semantics, late policies, containment, determinism, replays."""
import functools
import gzip
import json
import math
import time

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.classic import rps_v2

from fpx_arena import replay, run_match
from fpx_arena.agents import make
from fpx_arena.errors import ReplayError, UserError
from fpx_arena.latency import LatencyProfile, load_profiles, save_profiles


class TickEnv(ParallelEnv):
    """Observation = the tick number; logs every applied action with its tick. Action 2 is
    masked illegal, so containment of illegal actions can be checked."""

    metadata = {"name": "tick_v0", "render_fps": 100}

    def __init__(self, n_agents=2, length=40):
        self.possible_agents = [f"a{i}" for i in range(n_agents)]
        self.length = length
        self.arrivals = []

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent):
        return spaces.Dict({"observation": spaces.Box(0, 10**6, (1,), np.float32),
                            "action_mask": spaces.MultiBinary(4)})

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent):
        return spaces.Discrete(4)

    def _obs(self):
        mask = np.array([1, 1, 0, 1], dtype=np.int8)
        return {a: {"observation": np.array([self.t], np.float32), "action_mask": mask} for a in self.agents}

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.t = 0
        self.log = []
        return self._obs(), {a: {} for a in self.agents}

    def set_arrival_order(self, order):
        self.arrivals.append(list(order))

    def step(self, actions):
        self.log.append((self.t, dict(actions)))
        self.t += 1
        done = self.t >= self.length
        rewards = {a: float(actions[a] == 1) for a in self.agents}
        obs = self._obs()
        term = {a: False for a in self.agents}
        trunc = {a: done for a in self.agents}
        infos = {a: {} for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, term, trunc, infos

    def state_digest(self):
        return str(self.log)


class Recorder:
    """Answers 1 or 3 by the parity of the tick it saw, and remembers the ticks it was asked."""

    def reset(self, agent_id, observation_space, action_space, seed):
        self.asked = []

    def act(self, observation, info):
        t = int(observation["observation"][0])
        self.asked.append(t)
        return 1 if t % 2 == 0 else 3


class Raising(Recorder):
    def act(self, observation, info):
        super().act(observation, info)
        if len(self.asked) % 3 == 0:
            raise RuntimeError("boom")
        return 1


class Illegal(Recorder):
    def act(self, observation, info):
        super().act(observation, info)
        return 2  # masked


class WrongType(Recorder):
    def act(self, observation, info):
        return "jab"


class Hanging(Recorder):
    def act(self, observation, info):
        super().act(observation, info)
        if len(self.asked) == 2:
            time.sleep(1.0)
        return 1


def applied(env, agent):
    return [(t, acts.get(agent)) for t, acts in env.log]


@pytest.mark.parametrize("latency_ms", [0.0, 4.0, 10.0, 25.0, 31.0])
def test_action_lands_at_first_tick_after_latency(latency_ms):
    env = TickEnv(n_agents=1)
    agent = Recorder()
    result = run_match(env, {"a0": agent}, clock="profile", latency={"a0": latency_ms}, tick_hz=100, seed=1)
    delay = math.ceil(latency_ms / 10.0 - 1e-9)
    # decisions start at ticks 0, delay, 2*delay... (or every tick at zero latency)
    step = max(delay, 1)
    assert agent.asked == list(range(0, env.length, step))[: len(agent.asked)]
    for t, action in applied(env, "a0"):
        if delay and (t % step or t == 0):
            assert action == 0, (t, action)  # late: noop
        else:
            decided_at = t - delay
            assert action == (1 if decided_at % 2 == 0 else 3)
    expected_missed = 0 if delay == 0 else sum(1 for t in range(env.length) if t % step or t == 0)
    assert result.missed_ticks["a0"] == expected_missed


def test_repeat_policy_repeats_the_last_decided_action():
    env = TickEnv(n_agents=1)
    run_match(env, {"a0": Recorder()}, clock="profile", latency={"a0": 30.0}, tick_hz=100, late="repeat")
    actions = [a for _, a in applied(env, "a0")]
    # decided at ticks 0, 3, 6, ... (answers 1, 3, 1, ...), each landing 3 ticks later and
    # repeated until the next one lands
    expected = [0, 0, 0] + [(1 if (t // 3 - 1) % 2 == 0 else 3) for t in range(3, env.length)]
    assert actions == expected


def test_lockstep_ignores_latency_and_agrees_with_plain_loop():
    env = TickEnv(n_agents=2)
    result = run_match(env, {"a0": Recorder(), "a1": Recorder()}, clock="lockstep",
                       network_delay_ms=50, seed=0)
    assert result.missed_ticks == {"a0": 0, "a1": 0}
    assert all(acts == {"a0": 1 if t % 2 == 0 else 3, "a1": 1 if t % 2 == 0 else 3} for t, acts in env.log)


def test_network_delay_adds_to_latency():
    env = TickEnv(n_agents=1)
    agent = Recorder()
    run_match(env, {"a0": agent}, clock="profile", latency={"a0": 5.0}, network_delay_ms=15.0, tick_hz=100)
    assert agent.asked[:3] == [0, 2, 4]


def test_profile_clock_is_deterministic_by_seed():
    prof = LatencyProfile(agent="x", distribution={"kind": "lognormal", "median_ms": 20, "sigma": 0.5})

    def play(seed):
        env = TickEnv()
        r = run_match(env, {"a0": Recorder(), "a1": make("random")}, clock="profile",
                      latency={"a0": prof, "a1": [3.0, 12.0, 40.0]}, seed=seed)
        return r.trace.actions, r.trace.late, [d[:5] for d in r.trace.decisions]

    assert play(5) == play(5)
    assert play(5) != play(6)


def test_measured_clock_charges_real_time():
    class Slow(Recorder):
        def act(self, observation, info):
            time.sleep(0.025)
            return super().act(observation, info)

    env = TickEnv(n_agents=1, length=20)
    result = run_match(env, {"a0": Slow()}, clock="measured", tick_hz=100)
    lat = result.latencies_ms["a0"]
    assert min(lat) >= 25.0
    # each 25+ ms decision spans at least 3 ticks of 10 ms: the agent is late most of the time
    assert result.missed_ticks["a0"] >= 0.6 * env.length


def test_raising_agent_is_contained_and_counted():
    env = TickEnv()
    result = run_match(env, {"a0": Raising(), "a1": Recorder()}, clock="lockstep")
    s = result.stats["a0"]
    assert result.ticks == env.length
    assert s.errors == env.length // 3 and "RuntimeError: boom" in s.last_error
    assert s.missed_ticks == s.errors  # each failed decision leaves that tick on the late policy
    assert all(acts["a0"] in (0, 1) for _, acts in env.log)


@pytest.mark.parametrize("agent_cls", [Illegal, WrongType])
def test_illegal_actions_never_reach_the_game(agent_cls):
    env = TickEnv()
    result = run_match(env, {"a0": agent_cls(), "a1": Recorder()}, clock="lockstep")
    assert result.stats["a0"].invalid == env.length
    assert result.missed_ticks["a0"] == env.length
    assert all(acts["a0"] == 0 for _, acts in env.log)
    assert result.stats["a1"].invalid == 0


def test_reset_failure_is_contained():
    class BadReset(Recorder):
        def reset(self, *args):
            raise ValueError("no weights")

    result = run_match(TickEnv(), {"a0": BadReset(), "a1": Recorder()}, clock="lockstep")
    assert result.ticks == 40 and "no weights" in result.stats["a0"].last_error
    assert result.stats["a0"].missed_ticks == 40


def test_hanging_agent_under_wall_clock_is_contained():
    env = TickEnv(length=60)
    agent = Hanging()
    t0 = time.perf_counter()
    result = run_match(env, {"a0": agent, "a1": Recorder()}, clock="wall", tick_hz=100,
                       decision_timeout_s=0.2)
    elapsed = time.perf_counter() - t0
    assert result.ticks == 60 and elapsed < 1.5
    assert result.stats["a0"].timeouts == 1
    # it rejoined after its stuck call returned (at ~1 s, after the match) or never: either way
    # the other agent played every tick
    assert result.stats["a1"].decisions >= 30


def test_wall_clock_ticks_on_time_and_charges_thinking():
    class Think(Recorder):
        def act(self, observation, info):
            time.sleep(0.035)
            return super().act(observation, info)

    env = TickEnv(n_agents=1, length=30)
    result = run_match(env, {"a0": Think()}, clock="wall", tick_hz=100)
    offsets = np.array(result.trace.tick_offsets_s)
    # the world does not wait for the agent: ticks keep their schedule (no drift)
    assert np.median(np.diff(offsets)) == pytest.approx(0.010, abs=0.002)
    assert offsets[-1] == pytest.approx(0.29, abs=0.05)
    assert result.missed_ticks["a0"] >= 20


def test_overage_bank_pays_overruns_while_it_lasts():
    env = TickEnv(n_agents=1, length=30)
    agent = Recorder()
    run_match(env, {"a0": agent}, clock="profile", latency={"a0": 30.0}, tick_hz=100, overage_ms=60.0)
    # 30 ms against a 10 ms deadline: the bank pays 20 ms per decision for three decisions
    assert agent.asked[:5] == [0, 1, 2, 3, 6]


def test_arrival_order_follows_latency():
    env = TickEnv(n_agents=3, length=5)
    run_match(env, {"a0": Recorder(), "a1": Recorder(), "a2": Recorder()}, clock="profile",
              latency={"a0": 9.0, "a1": 1.0, "a2": 5.0}, tick_hz=100)
    assert env.arrivals[1] == ["a1", "a2", "a0"]


@pytest.mark.parametrize("clock", ["lockstep", "profile", "measured", "wall"])
def test_stock_pettingzoo_env_runs_under_every_clock(clock):
    env = rps_v2.parallel_env(max_cycles=30)
    agents = {a: make("random") for a in env.possible_agents}
    result = run_match(env, agents, clock=clock, tick_hz=200, seed=2,
                       latency={a: 7.0 for a in env.possible_agents})
    assert result.ticks == 30
    assert sum(result.rewards.values()) == 0  # rock-paper-scissors is zero-sum
    assert all(s.decisions > 0 and s.errors == 0 and s.invalid == 0 for s in result.stats.values())


@pytest.fixture
def tick_game():
    """TickEnv registered as a game: replays name registered games only."""
    import fpx_arena.games as games

    games.GAMES["tick_test"] = __name__
    yield "tick_test"
    del games.GAMES["tick_test"]
    games._LOADED.pop("tick_test", None)


def test_replay_reproduces_the_match(tmp_path, tick_game):
    path = tmp_path / "m.replay"
    env = TickEnv(length=25)
    agents = {a: make("random") for a in env.possible_agents}
    result = run_match(env, agents, clock="profile", seed=9, latency={a: [0.0, 12.0] for a in agents},
                       tick_hz=100, record=path, game=tick_game, env_kwargs={"length": 25})
    data = replay.load(path)
    assert data["actions"] == result.trace.actions
    env2 = TickEnv(length=25)
    env2.reset(seed=9)
    totals = {a: 0.0 for a in env2.possible_agents}
    for row in data["actions"]:
        _, rewards, *_ = env2.step(dict(zip(data["agents"], row)))
        for a, r in rewards.items():
            totals[a] += r
    assert totals == result.rewards


def test_replay_detects_a_different_final_state(tmp_path, tick_game):
    path = tmp_path / "t.replay"
    run_match(TickEnv(), {"a0": Recorder(), "a1": Recorder()}, record=path, game=tick_game)
    data = replay.load(path)
    assert replay.resimulate(data)["matches"]
    data["actions"][3][0] = 0
    with pytest.raises(ReplayError, match="edited or damaged"):
        replay.resimulate(data)
    data["check"]["stream"] = replay._stream_hash(data)  # re-sealed by hand: the states still differ
    with pytest.raises(ReplayError, match="leaves the recorded match|does not reproduce"):
        replay.resimulate(data)


def parallel_env(**kw):  # lets the replay rebuild TickEnv by module name
    return TickEnv(**kw)


@pytest.mark.parametrize("content,message", [
    (b"not gzip at all", "not a replay file"),
    (gzip.compress(b"{truncated"), "corrupt"),
    (gzip.compress(json.dumps({"format": "other"}).encode()), "not an fpx-arena replay"),
    (gzip.compress(json.dumps({"format": "fpx-arena-replay", "version": 99}).encode()), "version 99"),
    (gzip.compress(json.dumps({"format": "fpx-arena-replay", "version": 1, "game": "x"}).encode()), "version 1"),
    (gzip.compress(json.dumps({"format": "fpx-arena-replay", "version": 2, "game": "x"}).encode()), "lacks"),
    (gzip.compress(b'{"format":"fpx-arena-replay","version":2,"game":"fighter","seed":0,"final_digest":"",'
                   b'"result":{},"check":{},"agents":["p0","p1"],"tick_hz":60,"actions":[[0]]}'), "expected 2 actions"),
])
def test_malformed_replay_gives_one_clear_line(tmp_path, content, message):
    path = tmp_path / "bad.replay"
    path.write_bytes(content)
    with pytest.raises(ReplayError, match=message) as e:
        replay.load(path)
    assert "\n" not in str(e.value)


def test_truncated_replay_is_rejected(tmp_path, tick_game):
    path = tmp_path / "m.replay"
    env = TickEnv(length=50)
    run_match(env, {a: make("random") for a in env.possible_agents}, record=path, game=tick_game,
              env_kwargs={"length": 50})
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ReplayError):
        replay.load(path)


def test_bad_arguments_are_user_errors():
    env = TickEnv()
    agents = {"a0": Recorder(), "a1": Recorder()}
    with pytest.raises(UserError, match="unknown clock"):
        run_match(env, agents, clock="sundial")
    with pytest.raises(UserError, match="late policy"):
        run_match(env, agents, late="panic")
    with pytest.raises(UserError, match="missing"):
        run_match(env, {"a0": Recorder()})
    with pytest.raises(UserError, match="latency profile for agent 'a1'"):
        run_match(env, agents, clock="profile", latency={"a0": 1.0})


def test_latency_profile_files_round_trip_and_reject_garbage(tmp_path):
    path = tmp_path / "lat.json"
    profiles = [LatencyProfile(agent="llm:x@fp8", device="cpu", samples_ms=(1.0, 2.0)),
                LatencyProfile.constant(150.0, agent="fighter/reactive")]
    save_profiles(path, profiles)
    loaded = load_profiles(path)
    assert loaded["llm:x@fp8"].samples_ms == (1.0, 2.0)
    assert loaded["fighter/reactive"].sample(np.random.default_rng(0)) == 150.0
    path.write_text('{"format": "fpx-arena-latency-profile", "version": 1, '
                    '"profiles": [{"agent": "a", "samples_ms": [-1]}]}')
    with pytest.raises(UserError, match="finite and >= 0"):
        load_profiles(path)
    path.write_text("[1, 2")
    with pytest.raises(UserError, match="not valid JSON"):
        load_profiles(path)


class ContextRecorder(Recorder):
    """A Recorder that takes the scheduler's DecisionContext."""

    def act(self, observation, info, context=None):
        self.contexts = getattr(self, "contexts", []) + [context]
        return super().act(observation, info)


class UrgentTickEnv(TickEnv):
    def reset(self, seed=None, options=None):
        obs, _ = super().reset(seed=seed)
        return obs, {a: {"urgency": 0.25} for a in self.agents}


@pytest.mark.parametrize("clock", ["lockstep", "profile", "measured", "wall"])
def test_agents_that_take_a_context_get_one_and_plain_agents_do_not(clock):
    env = UrgentTickEnv(length=12)
    ctx_agent, plain = ContextRecorder(), Recorder()
    latency = {"a0": 25.0, "a1": 0.0} if clock == "profile" else None
    r = run_match(env, {"a0": ctx_agent, "a1": plain}, clock=clock, latency=latency, overage_ms=30.0,
                  tick_hz=100 if clock != "wall" else 50)
    dt = 1000.0 / r.tick_hz
    first, rest = ctx_agent.contexts[0], ctx_agent.contexts[1:]
    assert first.tick == 0 and first.dt_ms == pytest.approx(dt) and first.clock == clock
    assert first.deadline_ms == pytest.approx(dt) and first.urgency == 0.25
    assert first.overage_left_ms == pytest.approx(30.0) and first.recent_latencies_ms == ()
    for c in rest:
        assert c.deadline_ms == pytest.approx((c.tick + 1) * dt)
        if clock != "wall":
            assert c.observed_at_ms == pytest.approx(c.tick * dt)
        assert c.urgency is None  # only the first observation's info carries it
    if clock == "profile":  # 25 ms against a 10 ms tick: the bank pays 15 ms twice, then runs dry
        assert [c.overage_left_ms for c in ctx_agent.contexts[:3]] == pytest.approx([30.0, 15.0, 0.0])
        assert ctx_agent.contexts[2].recent_latencies_ms == pytest.approx((10.0, 10.0))
    assert len(plain.asked) >= 1  # called as act(observation, info)
    # the reward so far: TickEnv pays 1 for every tick whose applied action was 1
    paid = [float(row[0] == 1) for row in r.trace.actions]
    for c in ctx_agent.contexts:
        assert c.reward == pytest.approx(sum(paid[:c.tick]))


class ChargeListener(ContextRecorder):
    """Wants each decision's charge as soon as it is known (the on_charged hook): remembers
    what it heard, and what it had heard when each later decision started."""

    def reset(self, *args):
        super().reset(*args)
        self.heard, self.heard_at_act = [], []

    def on_charged(self, latency_ms):
        self.heard.append(latency_ms)

    def act(self, observation, info, context=None):
        self.heard_at_act.append(list(self.heard))
        return super().act(observation, info, context)


@pytest.mark.parametrize("clock,timeout", [("profile", None), ("measured", 5.0), ("wall", None)])
def test_on_charged_hears_each_charge_before_the_next_decision(clock, timeout):
    agent = ChargeListener()
    r = run_match(TickEnv(n_agents=1, length=20), {"a0": agent}, clock=clock, tick_hz=50,
                  latency={"a0": 30.0} if clock == "profile" else None, decision_timeout_s=timeout)
    charged = r.stats["a0"].latencies_ms
    assert len(charged) >= 5 and agent.heard[:len(charged)] == pytest.approx(charged)
    for heard, c in zip(agent.heard_at_act[1:], agent.contexts[1:]):
        # before a decision starts, the hook has told it everything its context reports
        assert heard[-len(c.recent_latencies_ms):] == pytest.approx(c.recent_latencies_ms)


def test_an_on_charged_hook_that_raises_or_hangs_is_contained():
    class Raises(ChargeListener):
        def on_charged(self, latency_ms):
            raise RuntimeError("no")

    r = run_match(TickEnv(n_agents=1, length=20), {"a0": Raises()}, clock="profile", latency={"a0": 5.0})
    assert r.stats["a0"].decisions == 20 and r.stats["a0"].errors == 0

    class HangsOnce(ChargeListener):
        def on_charged(self, latency_ms):
            if len(self.heard) == 2 and not getattr(self, "slept", False):
                self.slept = True
                time.sleep(0.3)  # a notice runs before the next call: that call times out
            super().on_charged(latency_ms)

    r = run_match(TickEnv(n_agents=1, length=60), {"a0": HangsOnce()}, clock="measured",
                  decision_timeout_s=0.2)  # 100 Hz: the timeout charges 20 ticks, then it plays on
    assert r.ticks == 60 and r.stats["a0"].timeouts == 1 and r.stats["a0"].decisions >= 30


def test_match_spec_builds_and_plays_what_run_match_plays(tmp_path):
    from fpx_arena import MatchSpec, games

    spec = MatchSpec(game="fighter", env_kwargs={"round_ticks": 300}, agents={"p0": "fighter/reactive",
                     "p1": "fighter/aggressive"}, clock="profile", latency={"p0": 50, "p1": 0}, seed=4)
    a = spec.play(record=tmp_path / "m.replay")
    env = games.make("fighter", round_ticks=300)
    b = run_match(env, {"p0": make("fighter/reactive"), "p1": make("fighter/aggressive")}, clock="profile",
                  latency={"p0": 50, "p1": 0}, seed=4)
    assert a.trace.actions == b.trace.actions and a.final_digest == b.final_digest and a.game == "fighter"
    data = replay.load(tmp_path / "m.replay")
    assert data["env_kwargs"] == {"round_ticks": 300} and replay.resimulate(data)["matches"]
    d = a.trace.decisions[0]
    assert (d.agent, d.start, d.land, d.latency_ms) == (0, 0, 3, 50.0) and tuple(d[:5]) == (0, 0, 3, 50.0, 0)


def test_lockstep_decisions_are_records_like_any_other():
    env = TickEnv(length=5)
    r = run_match(env, {"a0": Recorder(), "a1": make("random")}, clock="lockstep")
    assert len(r.trace.decisions) == 10 and [d.start for d in r.trace.decisions[::2]] == [0, 1, 2, 3, 4]
    assert all(d.latency_ms == 0.0 and d.land == d.start for d in r.trace.decisions)
    assert r.to_dict(with_trace=True)["trace"]["decisions"][1][:2] == [1, 0]


class LeavingTickEnv(TickEnv):
    """a1 leaves the game at tick 6; the others play on."""

    def step(self, actions):
        out = super().step(actions)
        if self.t == 6 and "a1" in self.agents:
            self.agents = [a for a in self.agents if a != "a1"]
            out = tuple({a: v for a, v in d.items() if a != "a1"} for d in out)
        return out


class Misbehaving(Recorder):
    """Answers like Recorder but, by the tick, raises, abstains, answers out of range, answers
    the masked action 2 or a numpy integer."""

    def act(self, observation, info):
        t = int(observation["observation"][0])
        if t % 7 == 3:
            raise ValueError("bad tick")
        return {0: None, 1: 9, 2: 2, 5: np.int64(3)}.get(t % 11, super().act(observation, info))


class BrokenReset(Recorder):
    def reset(self, *args):
        raise RuntimeError("no model")


@pytest.mark.parametrize("late", ["noop", "repeat"])
@pytest.mark.parametrize("cast", [(Misbehaving, Recorder, Recorder), (Recorder, BrokenReset, Misbehaving),
                                  (BrokenReset, Misbehaving, Recorder)])
def test_the_lean_lockstep_loop_plays_like_the_general_one(late, cast):
    """Agents called inline without a viewer take the lean lockstep loop (implicit decisions);
    with a viewer (on_tick), or on their own threads (a decision timeout), the general loop.
    All must give the same trace and counts, whoever misbehaves."""
    out = []
    for on_tick, timeout in ((None, None), (lambda *args: None, None), (None, 5.0)):
        env = LeavingTickEnv(n_agents=3, length=30)
        r = run_match(env, {f"a{i}": cls() for i, cls in enumerate(cast)}, clock="lockstep", late=late, seed=2,
                      on_tick=on_tick, decision_timeout_s=timeout)
        stats = {a: (s.reward, s.decisions, s.missed_ticks, s.invalid, s.errors, s.abstained, len(s.latencies_ms),
                     s.last_error) for a, s in r.stats.items()}
        out.append((r.ticks, list(r.trace.actions), list(r.trace.late), r.trace.arrival,
                    [tuple(d) for d in r.trace.decisions], stats, r.final_digest))
    assert out[0] == out[1] == out[2]
    assert out[0][1][10][1] is None  # a1 was gone by then
