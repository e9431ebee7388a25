"""Faulty agents cost a decision or a match, never the program (issue 17, items 4-6): decision
timeouts under every clock, forfeits, sys.exit and os._exit in play and in a tournament, hung
threads stopped or retired, and a match that kills its worker twice given up for good."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import faulty_agents
from fpx_arena import games, run_match
from fpx_arena.agents import make
from fpx_arena.errors import UserError
from fpx_arena.isolation import is_hung
from fpx_arena.match import DEFAULT_DECISION_TIMEOUT_S, MatchSpec
from fpx_arena.tournaments.runner import run_tournament
from fpx_arena.tournaments.spec import load_spec
from fpx_arena.tournaments.store import Store
from fpx_arena.trace import TIMEOUT

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def _play(p0, clock="lockstep", **kw):
    env = games.make("fighter", round_ticks=600)
    latency = {"p0": 20.0, "p1": 0.0} if clock == "profile" else None
    return run_match(env, {"p0": p0, "p1": make("fighter/reactive")}, clock=clock, seed=1, latency=latency, **kw)


@pytest.mark.parametrize("clock", ["lockstep", "profile", "measured"])
@pytest.mark.parametrize("kind", [faulty_agents.Spin, faulty_agents.Sleep])
def test_a_hanging_agent_loses_its_decisions_then_forfeits(clock, kind):
    agent = kind(after=2)
    started = time.monotonic()
    r = _play(agent, clock, decision_timeout_s=0.2, forfeit_after=3, max_ticks=300)
    assert time.monotonic() - started < 10
    s = r.stats["p0"]
    assert s.timeouts == 3 and "3 decisions took longer than 0.2 s" in s.forfeit
    assert r.winner == "p1" and r.forfeits == {"p0": s.forfeit}
    assert r.ticks < 300  # the match ended at the forfeit
    assert [d.status for d in r.trace.decisions if d.agent == 0][-3:] == [TIMEOUT] * 3
    assert agent.max_active == 1


def test_one_slow_decision_is_lost_not_the_match():
    # 0.3 s: timed out at 0.2 s; the next decision waits out the rest of that call and makes it
    r = _play(faulty_agents.SlowOnce(0.3), "lockstep", decision_timeout_s=0.2, max_ticks=60)
    s = r.stats["p0"]
    assert (s.timeouts, s.forfeit, r.ticks) == (1, "", 60)
    assert s.decisions == 60 and s.missed_ticks == 1


def test_decision_timeout_default_and_bad_values():
    assert MatchSpec().decision_timeout_s == DEFAULT_DECISION_TIMEOUT_S == 10.0
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(UserError, match="decision_timeout_s"):
            _play(make("random"), decision_timeout_s=bad)
    out = subprocess.run([sys.executable, "-m", "fpx_arena", "play", "fighter", "--decision-timeout", "nan"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--decision-timeout" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("timeout", [None, 5.0])  # inline, and on the agent's own thread
def test_sys_exit_inside_act_forfeits_in_process(timeout):
    r = _play(faulty_agents.Exit(code=3, after=4), decision_timeout_s=timeout, max_ticks=100)
    assert r.stats["p0"].forfeit == "the agent called sys.exit(3)" and r.winner == "p1" and r.ticks == 4


def _cli_play(*args):
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    return subprocess.run([sys.executable, "-m", "fpx_arena", "play", "fighter", "--max-ticks", "100", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_play_survives_sys_exit_and_an_isolated_os_exit():
    out = _cli_play("-a", "p0=faulty_agents:Exit?code=3&after=5")
    assert out.returncode == 0, out.stderr
    assert "p0 forfeited: the agent called sys.exit(3)" in out.stdout and "winner: p1" in out.stdout
    out = _cli_play("-a", "p0=faulty_agents:Exit?code=7&after=5&hard=true", "--isolate")
    assert out.returncode == 0, out.stderr
    assert "p0 forfeited: the agent's process exited with code 7" in out.stdout and "winner: p1" in out.stdout
    out = _cli_play("-a", "p1=faulty_agents:Sleep?after=3", "--isolate", "--decision-timeout", "0.3")
    assert out.returncode == 0, out.stderr
    assert "p1 forfeited: 3 decisions took longer than 0.3 s" in out.stdout


def test_an_isolated_agent_plays_like_the_same_agent_in_process():
    spec = "faulty_agents:SlowOnce?seconds=0"
    a = _play(make(spec), "profile", max_ticks=200)
    b = _play(make(spec, isolate=True), "profile", max_ticks=200)
    assert a.trace.actions == b.trace.actions and a.final_digest == b.final_digest


def test_three_hung_agents_then_a_clean_match_keeps_its_timing():
    def clean():
        env = games.make("fighter")
        return run_match(env, {"p0": make("fighter/reactive"), "p1": make("fighter/aggressive")}, clock="wall",
                         tick_hz=60, seed=2, max_ticks=90)

    before = clean()
    spinners = [faulty_agents.Spin(after=1) for _ in range(3)]
    for agent in spinners:
        r = _play(agent, "wall", decision_timeout_s=0.2, forfeit_after=1, max_ticks=600)
        assert r.stats["p0"].forfeit and r.stats["p0"].timeouts == 1
    deadline = time.monotonic() + 5
    while any(map(is_hung, spinners)) and time.monotonic() < deadline:  # their spinning calls were stopped
        time.sleep(0.05)
    assert not any(map(is_hung, spinners))
    after = clean()
    for a in ("p0", "p1"):  # with three spinning threads left running: tens of ms, most ticks missed
        lat = after.stats[a].latency_summary()
        assert lat["p50_ms"] < 5, lat
        assert after.stats[a].missed_ticks <= before.stats[a].missed_ticks + 20  # a shared machine's noise


def test_a_hung_agent_is_never_called_from_two_threads():
    agent = faulty_agents.Block(after=1)
    r = _play(agent, "lockstep", decision_timeout_s=0.2, forfeit_after=1, max_ticks=100)
    assert r.stats["p0"].forfeit and is_hung(agent)
    again = _play(agent, "wall", decision_timeout_s=0.2, max_ticks=100)  # still stuck: retired
    assert "still stuck" in again.stats["p0"].forfeit and again.ticks == 0
    assert agent.max_active == 1
    agent.release.set()
    deadline = time.monotonic() + 5
    while is_hung(agent) and time.monotonic() < deadline:
        time.sleep(0.02)
    agent.after = 10**9
    r = _play(agent, "lockstep", decision_timeout_s=5, max_ticks=50)
    assert r.ticks == 50 and not r.stats["p0"].forfeit and agent.max_active == 1


TOURNAMENT = """
name = "faulty"
format = "round-robin"
games_per_pairing = 2
paired = true
seed = 5
concurrency = 1

[[agents]]
name = "exits"
spec = "faulty_agents:Exit?code=4&after=3"

[[agents]]
name = "dies"
spec = "faulty_agents:Exit?code=5&after=3&hard=true"

[[agents]]
name = "random"
spec = "random"

[games.fighter]
clock = "lockstep"
max_ticks = 40
"""


def _spec(tmp_path, text):
    path = tmp_path / "t.toml"
    path.write_text(text)
    return load_spec(path)


def test_a_child_started_from_a_thread_outlives_that_thread(monkeypatch):
    """The parent-death signal follows the thread that started a child: a match's agent thread
    that restarts an isolated agent and then ends must not take the new child with it."""
    import threading

    monkeypatch.syspath_prepend(str(TESTS))
    agent = make("faulty_agents:Exit?code=3&after=1000", isolate=True)
    env = games.make("fighter")
    obs, info = env.reset(seed=0)
    agent.reset("p0", env.observation_space("p0"), env.action_space("p0"), 0)
    agent.interrupt()  # as after a hung call: the next act starts a fresh child
    t = threading.Thread(target=agent.act, args=(obs["p0"], info["p0"]))
    t.start()
    t.join()
    time.sleep(0.5)
    assert agent.alive and agent.act(obs["p0"], info["p0"]) in range(env.action_space("p0").n)
    agent.close()


def test_a_tournament_survives_sys_exit_and_os_exit(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    out = run_tournament(_spec(tmp_path, TOURNAMENT), tmp_path / "run", progress=False, log=lambda m: None)
    assert out.stored == out.total == 6
    with Store.open(out.db_path) as store:
        matches = store.matches(with_latencies=False)
    for m in matches:
        names = {m.agent_a, m.agent_b}
        forfeited = {n for n in names if (m.agents[n]["last_error"] or "").startswith("forfeit: ")}
        if names == {"exits", "dies"}:  # both quit at their 4th decision: the first seat first
            assert forfeited == {m.seats[0]} and m.winner == m.seats[1]
        else:
            assert forfeited == names - {"random"} and m.winner == "random", (m.key, m.winner)
    reasons = {m.agents["dies"]["last_error"] for m in matches if "dies" in m.agents and m.winner != "dies"}
    assert reasons == {"forfeit: the agent's process exited with code 5"}
    reasons = {m.agents["exits"]["last_error"] for m in matches if "exits" in m.agents and m.winner != "exits"}
    assert reasons == {"forfeit: the agent called sys.exit(4)"}


def test_a_match_that_kills_its_worker_twice_is_given_up(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    text = TOURNAMENT.replace('[games.fighter]', '[games.crash]\ngame = "faulty_agents:crashing_game"')
    text = text.replace("games_per_pairing = 2\npaired = true", "games_per_pairing = 1\npaired = false")
    text = text.replace('spec = "faulty_agents:Exit?code=4&after=3"', 'spec = "noop"').replace(
        '[[agents]]\nname = "dies"\nspec = "faulty_agents:Exit?code=5&after=3&hard=true"\n', "")
    messages = []
    out = run_tournament(_spec(tmp_path, text), tmp_path / "run", progress=False, log=messages.append)
    assert (out.total, out.stored, out.played) == (1, 0, 0)
    assert any("killed its worker 2 times" in m for m in messages)
    with Store.open(out.db_path) as store:
        assert list(store.meta()["worker_crashes"].values()) == [2]
    again = run_tournament(None, tmp_path / "run", resume=True, progress=False, log=messages.append)
    assert again.played == 0 and again.stored == 0
