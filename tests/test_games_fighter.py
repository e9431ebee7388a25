"""The fighter game: PettingZoo API conformance, determinism, and the frame data that makes
reaction time matter."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, render_test

from fpx_arena.agents import make as make_agent
from fpx_arena.errors import UserError
from fpx_arena.games import fighter as F
from fpx_arena.games import make

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def close_env(gap=20, **kw):
    """Fighters `gap` pixels apart (a jab reaches 40)."""
    env = F.parallel_env(start_gap=(gap, gap), **kw)
    env.reset(seed=0)
    return env


def run(env, script0, script1, steps):
    """Step with per-step actions from two functions of the step index; returns the per-step
    (p0 health, p1 health, p1 state name) after each step."""
    out = []
    for k in range(steps):
        env.step({"p0": script0(k), "p1": script1(k)})
        out.append((env._f[0].health, env._f[1].health, F.STATES[env._f[1].state]))
    return out


def test_pettingzoo_api_and_seed_tests():
    parallel_api_test(F.parallel_env(round_ticks=400), num_cycles=1000)
    parallel_seed_test(lambda: F.parallel_env(round_ticks=300), num_cycles=300)
    api_test(F.env(round_ticks=300), num_cycles=300)


def test_render_modes():
    render_test(F.env)
    env = F.parallel_env(render_mode="rgb_array")
    env.reset(seed=3)
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    env.step({"p0": F.FIREBALL, "p1": 0})
    for _ in range(14):
        env.step({"p0": 0, "p1": 0})
    img2 = env.render()
    assert (img2 != img).any()                            # the fireball is drawn
    assert (img2 == (255, 140, 30)).all(axis=2).any()
    text = F.parallel_env(render_mode="ansi")
    text.reset(seed=0)
    assert "p0: hp 100" in text.render()


def test_observation_layout_and_mirroring():
    env = make("fighter")
    obs, _ = env.reset(seed=5)
    space = env.observation_space("p0")
    assert env.observation_space("p0") is space and env.action_space("p1") is env.action_space("p1")
    assert obs["p0"]["observation"].shape == (F.OBS_SIZE,) == (len(F.OBS_FIELDS),)
    for agent in env.possible_agents:
        assert space.contains(obs[agent])
        d = F.decode(obs[agent])
        assert d.opp.x > d.own.x                               # each sees itself on the left
        assert d.own.faces_opponent and d.opp.faces_opponent
        assert d.own.health == 100 and d.own.state_name == "idle"
    assert F.decode(obs["p0"]).gap == pytest.approx(F.decode(obs["p1"]).gap)
    # walking forward moves +x in one's own frame, for both sides
    obs, *_ = env.step({"p0": F.FORWARD, "p1": F.FORWARD})
    for agent in env.possible_agents:
        assert F.decode(obs[agent]).own.vx == pytest.approx(F.WALK_FWD)


def test_determinism_and_digest():
    rng = np.random.default_rng(1)
    actions = rng.integers(0, len(F.ACTIONS), size=(600, 2))
    digests = []
    for _ in range(2):
        env = F.parallel_env()
        env.reset(seed=42)
        for a0, a1 in actions:
            if not env.agents:
                break
            env.step({"p0": int(a0), "p1": int(a1)})
        digests.append(env.state_digest())
    assert digests[0] == digests[1]
    starts = set()
    for seed in range(6):
        env = F.parallel_env()
        env.reset(seed=seed)
        starts.add(env.state_digest())
    assert len(starts) > 1                                      # the seed varies the start


def test_jab_hits_exactly_after_its_startup():
    env = close_env()
    hist = run(env, lambda k: F.JAB if k == 0 else 0, lambda k: 0, 8)
    jab = F.MOVES[1]
    assert [h[1] for h in hist[:jab.startup]] == [100] * jab.startup
    assert hist[jab.startup][1] == 100 - jab.damage
    assert hist[jab.startup][2] == "hitstun"
    d = F.decode(env._obs_for(1))
    assert d.own.state_name == "hitstun"


def test_attack_phases_are_observable():
    env = close_env(gap=150)
    obs, *_ = env.step({"p0": F.KICK, "p1": 0})
    kick = F.MOVES[2]
    opp = F.decode(obs["p1"]).opp
    assert (opp.move_name, opp.phase, opp.phase_left) == ("kick", F.STARTUP, kick.startup - 1)
    assert opp.busy == kick.total - 1
    text = F.describe(obs["p1"], "p1")
    assert "kick startup 7f left" in text and "gap" in text


def test_urgency_rises_with_a_threat_in_reach():
    """info["urgency"]: low far apart, 1 - frames-to-hit / horizon while an attack in reach is in
    its startup, and the same number as rules.urgency of the observation."""
    env = F.parallel_env()
    obs, infos = env.reset(seed=0)
    far = infos["p0"]["urgency"]
    assert 0.0 <= far < 0.5 and far == F.urgency(obs["p0"])
    kick = F.MOVES[2]
    env = close_env(gap=kick.reach - 1)     # in the kick's reach, a few frames' walk from the jab's
    obs, _, _, _, infos = env.step({"p0": F.KICK, "p1": 0})
    assert infos["p1"]["urgency"] == pytest.approx(1 - (kick.startup - 1) / F.URGENCY_HORIZON)
    assert infos["p1"]["urgency"] > far and infos["p1"]["urgency"] == F.urgency(obs["p1"])


@pytest.mark.parametrize("action,guard,wrong_guard", [
    (F.JAB, F.BLOCK_A, None), (F.JAB, F.LOWBLOCK_A, None),
    (F.KICK, F.BLOCK_A, F.LOWBLOCK_A), (F.SWEEP, F.LOWBLOCK_A, F.BLOCK_A)])
def test_reacting_within_startup_blocks(action, guard, wrong_guard):
    """A guard pressed `delay` steps after the observation that shows the attack's first frame
    blocks it iff delay <= startup - 1: reaction time within the startup decides."""
    move = F.MOVES[F.MOVE_OF_ACTION[action]]
    for delay in range(move.startup + 2):
        env = close_env()
        hist = run(env, lambda k: action if k == 0 else 0, lambda k: guard if k >= 1 + delay else 0, 40)
        blocked = hist[-1][1] == 100 - move.chip
        assert blocked == (delay <= move.startup - 1), (move.name, delay)
        if blocked:
            assert "blockstun" in [h[2] for h in hist]
    if wrong_guard is not None:
        env = close_env()
        hist = run(env, lambda k: action if k == 0 else 0, lambda k: wrong_guard, 40)
        assert hist[-1][1] == 100 - move.damage


def test_block_applies_blockstun_then_punish_lands():
    kick = F.MOVES[2]
    env = close_env()
    hist = run(env, lambda k: F.KICK if k == 0 else 0, lambda k: F.BLOCK_A, kick.startup + 1)
    assert hist[-1][1] == 100 and hist[-1][2] == "blockstun"
    assert env._f[1].busy() == kick.blockstun
    # the blocked kick is -6: a jab pressed as soon as the defender can act hits
    for k in range(kick.blockstun):
        env.step({"p0": 0, "p1": F.BLOCK_A})
    assert env._f[1].busy() == 0
    p0_busy = env._f[0].busy()
    assert p0_busy >= F.MOVES[1].startup + 1
    for k in range(F.MOVES[1].startup + 1):
        env.step({"p0": 0, "p1": F.JAB if k == 0 else 0})
    assert env._f[0].health == 100 - F.MOVES[1].damage


def test_fireball_travels_and_chips_through_a_block():
    fb = F.MOVES[4]
    env = close_env(gap=300)
    obs, *_ = env.step({"p0": F.FIREBALL, "p1": 0})
    assert obs["p0"]["action_mask"][F.FIREBALL] == 0        # one own fireball at a time
    xs = []
    for _ in range(fb.startup + 4):
        obs, *_ = env.step({"p0": 0, "p1": F.BLOCK_A})
        d = F.decode(obs["p0"])
        if d.own_proj:
            xs.append(d.own_proj_x)
    assert len(xs) >= 3 and np.allclose(np.diff(xs), F.FIREBALL_SPEED)
    opp_view = F.decode(obs["p1"])
    assert opp_view.opp_proj and opp_view.opp_proj_gap > 0
    assert "opp fireball" in F.describe(obs["p1"])
    for _ in range(120):
        obs, *_ = env.step({"p0": 0, "p1": F.BLOCK_A})
    assert env._f[1].health == 100 - fb.chip
    assert obs["p0"]["action_mask"][F.FIREBALL] == 1
    # unblocked, it does full damage
    env = close_env(gap=300)
    run(env, lambda k: F.FIREBALL if k == 0 else 0, lambda k: 0, 150)
    assert env._f[1].health == 100 - fb.damage


def test_time_limit_rounds_and_rewards():
    env = F.parallel_env(round_ticks=30)
    env.reset(seed=0)
    steps = 0
    while env.agents:
        _, rewards, terms, truncs, _ = env.step({"p0": 0, "p1": 0})
        steps += 1
    assert steps == 30 and all(terms.values()) and rewards == {"p0": 0.0, "p1": 0.0}
    assert env.match_outcome()["winner"] is None
    with pytest.raises(RuntimeError):
        env.step({"p0": 0, "p1": 0})
    # best of 3 on time: p0 jabs once each round to lead on health and wins 2 rounds to 0
    env = F.parallel_env(round_ticks=60, rounds=3, start_gap=(20, 20))
    env.reset(seed=0)
    total = {"p0": 0.0, "p1": 0.0}
    t = 0
    while env.agents:
        _, rewards, *_ = env.step({"p0": F.JAB if t % 60 == 0 else 0, "p1": 0})
        for a in total:
            total[a] += rewards[a]
        t += 1
    out = env.match_outcome()
    assert t == 120 and out["winner"] == "p0" and out["metrics"]["p0"]["rounds_won"] == 2
    assert total["p0"] == pytest.approx(2 * (1 + 5 / 100)) and total["p1"] == pytest.approx(-total["p0"])


def test_snapshot_and_helpers():
    env = close_env()
    for k in range(5):
        env.step({"p0": F.JAB if k == 0 else 0, "p1": 0})
    snap = env.snapshot()
    json.dumps(snap)
    fighters = {f["id"]: f for f in snap["fighters"]}
    assert fighters["p0"]["move"] == "jab" and fighters["p0"]["phase"] == "active"
    assert fighters["p0"]["hitbox"] is not None and fighters["p1"]["state"] == "hitstun"
    assert snap["round_ticks_left"] == 1800 - 5
    names = F.action_names("p0")
    assert names[0] == "wait" and len(names) == env.action_space("p0").n
    assert len({n.split()[0] for n in names}) == len(names) and all(n == n.lower() for n in names)
    assert F.metadata["render_fps"] == 60 and F.metadata["is_parallelizable"]
    with pytest.raises(ValueError):
        env.step({"p0": 99, "p1": 0})
    for bad in ({"round_ticks": 0}, {"rounds": 0}, {"start_gap": (300, 100)}, {"render_mode": "tv"}):
        with pytest.raises(UserError) as e:
            make("fighter", **bad)
        assert "\n" not in str(e.value)


def _duel(spec0, spec1, seed, round_ticks=900):
    env = F.parallel_env(round_ticks=round_ticks)
    obs, infos = env.reset(seed=seed)
    bots = {a: make_agent(s) for a, s in (("p0", spec0), ("p1", spec1))}
    for i, (a, b) in enumerate(bots.items()):
        b.reset(a, env.observation_space(a), env.action_space(a), seed * 2 + i)
    while env.agents:
        obs, *_ = env.step({a: bots[a].act(obs[a], {}) for a in env.agents})
    return env.match_outcome(), env.state_digest()


def test_bots_are_deterministic_fast_and_ranked():
    assert type(make_agent("fighter/reactive")).__name__ == "ReactiveBot"
    assert _duel("fighter/reactive", "fighter/zoner", 3) == _duel("fighter/reactive", "fighter/zoner", 3)
    for style in ("aggressive", "zoner", "turtle", "weak"):   # lockstep: the expert never loses
        for seed in range(3):
            out, _ = _duel("fighter/reactive", f"fighter/{style}", seed)
            assert out["winner"] in ("p0", None), (style, seed)
    for style in ("reactive", "aggressive", "zoner"):       # and the weak bot never wins
        out, _ = _duel("fighter/weak", f"fighter/{style}", 1)
        assert out["winner"] == "p1"
    env = F.parallel_env()
    obs, _ = env.reset(seed=0)
    bot = make_agent("fighter/reactive")
    bot.reset("p0", env.observation_space("p0"), env.action_space("p0"), 0)
    start = time.perf_counter()
    for _ in range(2000):
        bot.act(obs["p0"], {})
    assert (time.perf_counter() - start) / 2000 < 50e-6
