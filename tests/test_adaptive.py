"""The adaptive agent and its controllers: the spec forms, the deadline and bandit rules, one
clear line for bad settings, and real matches under the profile clock (deterministic choices,
switching mid-match, the chosen candidate in the trace and an exact replay)."""
import math

import pytest

from fpx_arena import agents, games, replay
from fpx_arena.agents.adaptive import AdaptiveAgent, parse_candidate
from fpx_arena.agents.context import DecisionContext
from fpx_arena.agents.controllers import (BanditController, CandidateInfo, Choice, DeadlineController,
                                          LatencyModel, make_controller, precision_bits, prompt_bucket,
                                          rank_candidates)
from fpx_arena.errors import SpecError, UserError
from fpx_arena.latency import CandidateProfiles, LatencyProfile, draw
from fpx_arena.scheduler import run_match

TWO = "adaptive:arena-tiny@bf16,arena-tiny@nvfp4"


def infos(*pairs):
    out = [CandidateInfo(key=f"{m}@{p}", model=m, precision=p, params=n, bits=precision_bits(p))
           for m, p, n in pairs]
    rank_candidates(out)
    return out


CANDS = (("big", "bf16", 100), ("big", "nvfp4", 100), ("small", "bf16", 10))


def seated(spec, seed):
    """An agent reset as fighter's p0, its env, and the env's first observations and infos."""
    a = agents.make(spec)
    env = games.make("fighter", round_ticks=60)
    a.attach_env(env)
    obs, info = env.reset(seed=seed)
    a.reset("p0", env.observation_space("p0"), env.action_space("p0"), 0)
    return a, env, obs, info


def test_rank_orders_by_size_then_bits_or_by_agreement():
    c = infos(("small", "bf16", 10), ("big", "fp8", 100), ("big", "fpx:0.3", 100), ("big", "bf16", 100))
    assert [x.rank for x in c] == [3, 1, 2, 0]
    assert precision_bits("fpx:0.3") == pytest.approx(6.8)
    for x, a in zip(c, (0.99, 0.5, 0.6, 0.7)):
        x.agreement = a
    rank_candidates(c)
    assert [x.rank for x in c] == [0, 3, 2, 1]


def test_deadline_rule_takes_the_most_accurate_candidate_that_lands_in_time():
    lat = LatencyModel(3)
    ctl = DeadlineController(infos(*CANDS), lat, k=0.0)
    c = Choice(dt_ms=10.0, time_left_ms=10.0)
    assert ctl.choose(c) == 0  # nothing learned yet: the most accurate is tried first
    for i, ms in enumerate((25.0, 15.0, 8.0)):
        lat.observe(i, 0, ms)
    assert ctl.choose(c) == 2                          # only `small` lands within one tick
    assert ctl.choose(Choice(dt_ms=10.0, time_left_ms=20.0)) == 1
    assert ctl.choose(Choice(dt_ms=10.0, time_left_ms=30.0)) == 0
    # the overage bank and a calm game (low urgency, with patience) widen the budget
    no_bank = DeadlineController(infos(*CANDS), lat, k=0.0, bank_share=0.0)
    assert no_bank.choose(Choice(dt_ms=10.0, time_left_ms=10.0, overage_left_ms=200.0)) == 2
    assert ctl.choose(Choice(dt_ms=10.0, time_left_ms=10.0, overage_left_ms=200.0)) == 0  # 0.1 of it: 30 ms
    calm = DeadlineController(infos(*CANDS), lat, k=0.0, patience_ms=20.0, bank_share=0.0)
    assert calm.choose(Choice(dt_ms=10.0, time_left_ms=10.0, urgency=0.0)) == 0
    assert calm.choose(Choice(dt_ms=10.0, time_left_ms=10.0, urgency=1.0)) == 2
    in_ticks = DeadlineController(infos(*CANDS), lat, k=0.0, patience_ticks=2.0, bank_share=0.0)
    assert in_ticks.choose(Choice(dt_ms=10.0, time_left_ms=10.0, urgency=0.0)) == 0
    assert in_ticks.choose(Choice(dt_ms=10.0, time_left_ms=10.0, urgency=0.5)) == 1  # one tick more: 15 ms
    assert in_ticks.choose(Choice(dt_ms=10.0, time_left_ms=10.0)) == 2  # no signal: no patience
    # none lands in time: the most accurate of those that land first (8 ms and 9 ms: same tick)
    lat.observe(1, 0, 5.0), lat.observe(1, 0, 5.0), lat.observe(1, 0, 5.0), lat.observe(1, 0, 5.0)
    tight = Choice(dt_ms=4.0, time_left_ms=4.0)
    assert math.ceil(ctl.predicted_ms(1, tight) / 4.0) == math.ceil(ctl.predicted_ms(2, tight) / 4.0)
    assert ctl.choose(tight) == 1


def test_a_latency_prior_spares_the_tries(isolated_fpx_cache):
    a = AdaptiveAgent(["arena-tiny@bf16", "arena-tiny@nvfp4"], latency_prior={"llm:arena-tiny@nvfp4": 5.0,
                                                                               "arena-tiny@bf16": 50.0})
    assert a.controller.choose(Choice(dt_ms=10.0, time_left_ms=10.0)) == 1  # no try of the slow one first
    assert a.controller.choose(Choice(dt_ms=10.0, time_left_ms=60.0)) == 0
    with pytest.raises(SpecError, match="must be a number of ms"):
        AdaptiveAgent(["arena-tiny@bf16"], latency_prior={"arena-tiny@bf16": "fast"})


def test_deadline_rule_learns_per_prompt_length_and_widens_its_margin_after_misses():
    lat = LatencyModel(3)
    ctl = DeadlineController(infos(*CANDS), lat, k=1.0)
    short, long = Choice(dt_ms=10.0, time_left_ms=10.0, bucket=0), Choice(dt_ms=10.0, time_left_ms=10.0, bucket=3)
    for _ in range(5):
        lat.observe(0, 0, 6.0), lat.observe(0, 3, 30.0)
        lat.observe(1, 0, 6.0), lat.observe(1, 3, 30.0)
        lat.observe(2, 0, 4.0), lat.observe(2, 3, 9.0)
    assert ctl.choose(short) == 0 and ctl.choose(long) == 2
    assert prompt_bucket(100) == 0 and prompt_bucket(300) == 2 and prompt_bucket(10**9) == 8
    ctl.observe(0, short, 9.0)  # charged above mean + k x std (6 ms, no spread): a miss
    lat.observe(0, 0, 9.0)
    fresh = DeadlineController(infos(*CANDS), lat, k=1.0)  # the same latencies, no miss seen
    mean, std, _ = lat.estimate(0, 0)
    assert std > 0 and fresh.predicted_ms(0, short) == pytest.approx(mean + std)
    assert ctl.predicted_ms(0, short) == pytest.approx(mean + 2 * std)  # k doubled: all recent missed


def test_bandit_learns_which_candidate_pays_in_each_urgency_bucket():
    lat = LatencyModel(3)
    ctl = BanditController(infos(*CANDS), lat, explore=0.1, cost=0.5, patience_ms=40.0)
    charge = {0: 35.0, 1: 25.0, 2: 8.0}
    for _ in range(60):
        for u in (0.0, 1.0):
            c = Choice(dt_ms=10.0, time_left_ms=10.0, urgency=u)
            i = ctl.choose(c)
            ctl.observe(i, c, charge[i])
    calm, urgent = Choice(dt_ms=10.0, time_left_ms=10.0, urgency=0.0), Choice(dt_ms=10.0, time_left_ms=10.0, urgency=1.0)
    assert ctl.choose(calm) == 0    # 40 ms of patience: the accurate one lands in time
    assert ctl.choose(urgent) == 2  # every tick counts: the fast one
    assert calm.urgency_bucket != urgent.urgency_bucket
    assert Choice(dt_ms=1, time_left_ms=1).urgency_bucket == 4  # no signal: a bucket of its own


def test_bandit_with_reward_weight_learns_which_candidate_the_game_pays():
    """All three land in time and the accuracy prior favours the big one; the game pays the
    small one: with reward_weight the bandit follows the outcome, without it the prior."""
    pays = {0: 0.0, 1: 0.2, 2: 1.0}
    picks = {}
    for w in (0.0, 2.0):
        ctl = BanditController(infos(*CANDS), LatencyModel(3), explore=0.2, reward_weight=w, alpha=0.0)
        chosen = []
        for k in range(150):
            c = Choice(dt_ms=10.0, time_left_ms=10.0)
            i = ctl.choose(c)
            ctl.observe(i, c, 5.0, pays[i] + 0.1 * math.sin(k))
            chosen.append(i)
        picks[w] = chosen[-50:]
    assert picks[0.0].count(0) >= 45
    assert picks[2.0].count(2) >= 45


def test_adaptive_agent_passes_the_outcome_of_each_decision_to_its_controller():
    a = agents.make(TWO + "?controller=bandit&reward_weight=1")
    env = games.make("fighter", round_ticks=120)
    run_match(env, {"p0": a, "p1": agents.make("fighter/reactive")}, tick_hz=60, clock="profile", seed=3,
                  latency={"p0": {"arena-tiny@bf16": 40.0, "arena-tiny@nvfp4": 20.0}, "p1": 0.0}, game="fighter",
                  env_kwargs={"round_ticks": 120})
    assert a.controller.outcomes_seen == sum(a.counts) - 1 > 5  # every decision but the last was paid for


@pytest.mark.parametrize("name, settings, words", [
    ("bogus", {}, "unknown controller 'bogus'; choose one of deadline, bandit, fixed"),
    ("deadline", {"k": -1}, "k=-1"),
    ("deadline", {"k": "abc"}, "expected a number"),
    ("deadline", {"margin_ms": float("nan")}, "margin_ms=nan"),
    ("deadline", {"bank_share": 2}, "in [0, 1]"),
    ("bandit", {"explore": -0.5}, "explore=-0.5"),
    ("bandit", {"spread": True}, "spread=True"),
    ("deadline", {"explore": 1}, "controller 'deadline' has no setting explore; it takes k, margin_ms"),
    ("fixed", {"index": 3}, "index=3"),
    ("fixed", {"index": 0.5}, "an integer"),
    ("deadline", {"patience_ticks": -2}, "patience_ticks=-2"),
    ("bandit", {"reward_weight": float("inf")}, "reward_weight=inf"),
])
def test_bad_controller_settings_are_one_line(name, settings, words):
    with pytest.raises(SpecError) as e:
        make_controller(name, infos(*CANDS), LatencyModel(3), settings)
    assert words in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("spec, words", [
    (TWO + "?controller=bogus", "unknown controller 'bogus'"),
    (TWO + "?controller=deadline&k=-2", "k=-2"),
    (TWO + "?controller=bandit&cost=lots", "cost='lots'"),
    (TWO + "?memory_gb=0", "memory_gb must be a positive number"),
    ("adaptive:arena-tiny@bf16,arena-tiny@adaptive", "a candidate needs a fixed precision"),
    ("adaptive:arena-tiny@bf16,arena-tiny@fp7", "fp7"),
    ("adaptive:arena-tiny@bf16,no-such-model@fp8", "no-such-model"),
    ("adaptive:arena-tiny@bf16,arena-tiny@bf16", "adaptive candidates repeat"),
    ("llm:arena-tiny@adaptive?controller=bogus", "unknown controller 'bogus'"),
])
def test_bad_adaptive_specs_are_one_line(spec, words):
    with pytest.raises(UserError) as e:
        agents.make(spec)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_spec_forms():
    a = agents.make(TWO + "?controller=bandit&explore=0.2&threads=1")
    assert isinstance(a, AdaptiveAgent) and a.keys == ["arena-tiny@bf16", "arena-tiny@nvfp4"]
    assert a.controller.name == "bandit" and a.controller.explore == 0.2
    assert all(x.threads == 1 for x in a.agents)
    assert a.spec == TWO + "?controller=bandit&explore=0.2&threads=1"
    b = agents.make("llm:arena-tiny@adaptive?memory_gb=1")
    assert b.keys == ["arena-tiny@" + p for p in ("bf16", "fp8", "fpx:0.3", "fpx:0.6", "nvfp4")]
    assert b.controller.name == "deadline"
    assert parse_candidate("llm:m@fp8") == ("m", "fp8") and parse_candidate("m") == ("m", "bf16")


def test_memory_budget_keeps_the_most_accurate_candidates_and_reports_resident_bytes(isolated_fpx_cache):
    a = agents.make("adaptive:arena-tiny@nvfp4,arena-tiny@bf16,arena-tiny@fp8?memory_gb=0.004")
    a.load()  # arena-tiny has 1.3 M parameters: 2.6 MB at bf16, 1.3 MB at fp8, 0.7 MB at nvfp4
    assert a.keys == ["arena-tiny@bf16", "arena-tiny@fp8"] and a.dropped == ["arena-tiny@nvfp4"]
    mem = a.memory()
    assert mem["candidates"]["arena-tiny@bf16"] > mem["candidates"]["arena-tiny@fp8"] > 0
    assert mem["total_bytes"] >= sum(mem["candidates"].values()) // 2


def test_candidate_profiles_draw_from_the_chosen_candidate():
    import numpy as np

    class Agent:
        key = "arena-tiny@nvfp4"

        def latency_key(self):
            return self.key

    p = CandidateProfiles.coerce({"arena-tiny@bf16": 40.0, "llm:arena-tiny@nvfp4": [10.0, 11.0]})
    rng = np.random.default_rng(0)
    agent = Agent()
    assert draw(p, rng, agent) in (10.0, 11.0)
    agent.key = "arena-tiny@bf16"
    assert draw(p, rng, agent) == 40.0
    agent.key = "arena-tiny@fp8"
    with pytest.raises(UserError, match="no latency profile for candidate 'arena-tiny@fp8'"):
        draw(p, rng, agent)
    assert draw(LatencyProfile.constant(5.0), rng, agent) == 5.0


def test_direct_contexts_switch_as_the_bank_runs_out(isolated_fpx_cache):
    """Without a scheduler: contexts built by hand, the clock's charges fed back through them."""
    a, env, obs, info = seated(TWO + "?bank_share=0.5&k=0&threads=1", seed=3)
    charge = {"arena-tiny@bf16": 60.0, "arena-tiny@nvfp4": 20.0}
    bank, recent, chosen = 200.0, [], []
    for t in range(12):
        ctx = DecisionContext(tick=t, dt_ms=20.0, observed_at_ms=t * 20.0, deadline_ms=(t + 1) * 20.0,
                              overage_left_ms=bank, clock="profile", recent_latencies_ms=tuple(recent[-4:]))
        action = a.act(obs["p0"], info.get("p0", {}), context=ctx)
        assert env.action_space("p0").contains(action)
        key = a.latency_key()
        chosen.append(key)
        assert a.last_timing["plan"] == key == a.plan and a.last_timing["controller_ms"] >= 0
        ms = charge[key]
        bank -= min(bank, max(0.0, ms - 20.0))
        recent.append(ms)
    # bf16 first (most accurate), kept while half the bank covers its 40 ms overrun, then nvfp4
    assert chosen[0] == "arena-tiny@bf16" and chosen[-1] == "arena-tiny@nvfp4"
    assert a.counts[0] >= 2 and a.counts[1] >= 2


PROFILES = {"arena-tiny@bf16": {"kind": "lognormal", "median_ms": 45.0, "sigma": 0.3},
            "arena-tiny@nvfp4": {"kind": "lognormal", "median_ms": 15.0, "sigma": 0.3}}


def profile_table():
    return {k: LatencyProfile(agent=k, distribution=dict(v)) for k, v in PROFILES.items()}


def adaptive_match(seed, record=None, controller="deadline", agent=None):
    """arena-tiny at two precisions against a scripted fighter at 60 Hz with a small overage
    bank: the accurate candidate while the bank pays its overrun, the fast one after."""
    a = agent or agents.make(TWO + f"?controller={controller}&threads=1")
    env = games.make("fighter", round_ticks=240)
    result = run_match(env, {"p0": a, "p1": agents.make("fighter/weak")}, tick_hz=60, clock="profile",
                       seed=seed, latency={"p0": profile_table(), "p1": 0.0}, overage_ms={"p0": 150.0},
                       record=record, env_kwargs={"round_ticks": 240})
    return a, result


def chosen(result):
    return [(d[1], d[3], d[5]["candidate"]) for d in result.trace.decisions if d[0] == 0]


@pytest.mark.parametrize("controller", ["deadline", "bandit"])
def test_profile_clock_choices_are_deterministic_and_switch_mid_match(isolated_fpx_cache, controller):
    a, r1 = adaptive_match(5, controller=controller)
    _, r2 = adaptive_match(5, controller=controller)
    seq = chosen(r1)
    assert seq == chosen(r2) and len(seq) > 20
    keys = [k for _, _, k in seq]
    assert len(set(keys)) == 2, keys  # both candidates decided in one match
    switches = sum(1 for x, y in zip(keys, keys[1:]) if x != y)
    assert switches >= 1
    # each decision was charged from its own candidate's profile: the bf16 draws (median 45 ms)
    # sit far above the nvfp4 ones (median 15 ms), less what the bank paid
    fast = [ms for _, ms, k in seq if k.endswith("nvfp4")]
    assert max(fast) < 60.0
    assert r1.stats["p0"].errors == 0 and r1.stats["p0"].invalid == 0
    # a different seed draws other latencies, so other choices
    _, r3 = adaptive_match(6, controller=controller)
    assert chosen(r3) != seq


def test_learning_between_decisions_chooses_as_learning_at_the_next_one(isolated_fpx_cache):
    """The scheduler's on_charged hook moves the learning off the decision's path; an agent
    it cannot reach (no hook) learns the same figures from its next context."""
    _, hooked = adaptive_match(5)
    a = agents.make(TWO + "?controller=deadline&threads=1")
    a.on_charged = None
    _, unhooked = adaptive_match(5, agent=a)
    assert chosen(hooked) == chosen(unhooked)
    learned = [d[5]["learned_ms"] for d in hooked.trace.decisions if d[0] == 0]
    assert all(ms > 0 for ms in learned[1:]) and learned[0] == 0.0
    assert all(d[5]["learned_ms"] == 0.0 for d in unhooked.trace.decisions if d[0] == 0)


def test_replay_of_an_adaptive_match_resimulates_and_names_each_candidate(isolated_fpx_cache, tmp_path):
    path = tmp_path / "adaptive.replay.gz"
    _, result = adaptive_match(9, record=path)
    data = replay.load(path)
    check = replay.resimulate(data)
    assert check["matches"] and check["ticks"] == result.ticks
    mine = [t for (i, *_), t in zip(data["decisions"], data["timings"]) if i == 0]
    assert [t["candidate"] for t in mine] == [k for _, _, k in chosen(result)]
    assert {t["plan"] for t in mine} == {"arena-tiny@bf16", "arena-tiny@nvfp4"}
    # the viewer's plan label follows the candidate of the last decision that landed
    from fpx_arena.viewer.timeline import ReplayTimeline

    timeline = ReplayTimeline(data)
    landed = sorted((d[2], t["candidate"]) for d, t in zip(data["decisions"], data["timings"]) if d[0] == 0)
    for frame in (landed[0][0] + 1, landed[len(landed) // 2][0] + 1, timeline.frames - 1):
        view = timeline.views(frame)[0]
        assert view.plan == [c for land, c in landed if land < frame][-1]
        assert view.label == "adaptive (2 candidates)" and view.precision == "adaptive"


def test_controller_time_is_small_against_the_decision(isolated_fpx_cache):
    """The controller's own time per decision (CPU, arena-tiny: the cheapest decision shipped)."""
    _, result = adaptive_match(3)
    timings = [d[5] for d in result.trace.decisions if d[0] == 0]
    ctl = sorted(t["controller_ms"] for t in timings)
    total = sorted(t["total_ms"] for t in timings)
    assert ctl[len(ctl) // 2] <= 0.05 * total[len(total) // 2]


TOURNAMENT = """
name = "adaptive"
format = "gauntlet"
baselines = ["weak"]
games_per_pairing = 2
seed = 4

[[agents]]
name = "switcher"
spec = "adaptive:arena-tiny@bf16,arena-tiny@nvfp4?threads=1"

[[agents]]
name = "weak"
spec = "fighter/weak"

[games.fighter]
clock = "profile"
tick_hz = 60
env = { round_ticks = 240 }
overage_ms = 150
latency_profile = "profiles.json"
"""


def test_tournament_draws_per_candidate_and_reports_each_candidates_share(isolated_fpx_cache, tmp_path):
    from fpx_arena.latency import save_profiles
    from fpx_arena.tournaments.report import write_reports
    from fpx_arena.tournaments.runner import run_tournament
    from fpx_arena.tournaments.spec import load_spec

    save_profiles(tmp_path / "profiles.json",
                  [LatencyProfile(agent="llm:" + k, distribution=dict(v)) for k, v in PROFILES.items()]
                  + [LatencyProfile.constant(0.0, agent="fighter/weak")])
    (tmp_path / "spec.toml").write_text(TOURNAMENT)
    outcome = run_tournament(load_spec(tmp_path / "spec.toml"), tmp_path / "run", workers=1, progress=False)
    assert outcome.stored == outcome.total == 2
    report = write_reports(tmp_path / "run", n_bootstrap=100)
    row = report["summaries"][0].row("switcher")
    assert set(row.candidates) == {"arena-tiny@bf16", "arena-tiny@nvfp4"}
    assert sum(c["share"] for c in row.candidates.values()) == pytest.approx(1.0)
    assert row.candidates["arena-tiny@bf16"]["mean_ms"] > row.candidates["arena-tiny@nvfp4"]["mean_ms"]
    md = report["md"].read_text()
    assert "Adaptive agents: decisions per candidate" in md and "arena-tiny@nvfp4" in md


def test_real_clocks_do_not_learn_a_candidates_warm_up_decision(isolated_fpx_cache):
    a, env, obs, info = seated(TWO + "?k=0&threads=1", seed=1)

    def ctx(t, recent, clock):
        return DecisionContext(tick=t, dt_ms=20.0, observed_at_ms=t * 20.0, deadline_ms=(t + 1) * 20.0,
                               overage_left_ms=0.0, clock=clock, recent_latencies_ms=tuple(recent))

    a.act(obs["p0"], {}, context=ctx(0, (), "measured"))             # bf16, first try
    a.act(obs["p0"], {}, context=ctx(1, (900.0,), "measured"))       # 900 ms of graph capture: not learned
    assert a.latency.count(0) == 0 and a.latency_key() == "arena-tiny@bf16"  # so bf16 is tried again
    a.act(obs["p0"], {}, context=ctx(2, (900.0, 12.0), "measured"))
    assert a.latency.estimate(0, 0)[0] == 12.0
    # the profile clock's draws are all learned, the first one too
    b = seated(TWO + "?k=0&threads=1", seed=1)[0]
    b.act(obs["p0"], {}, context=ctx(0, (), "profile"))
    b.act(obs["p0"], {}, context=ctx(1, (900.0,), "profile"))
    assert b.latency.count(0) == 1
