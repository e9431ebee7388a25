"""The live viewer (run_match's on_tick) and the keyboard-driven human agent, in a real window
under SDL's dummy video driver, with key events injected through pygame's event queue."""
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import time

import pygame
import pytest

from fpx_arena import games, replay
from fpx_arena.agents import make
from fpx_arena.agents.human import HumanAgent
from fpx_arena.scheduler import run_match
from fpx_arena.viewer import watch_live, watch_replay
from fpx_arena.viewer.app import LiveView
from fpx_arena.viewer.overlays import panel_rects, thinking_bar_rect
from fpx_arena.viewer.style import THINK_FILL
from fpx_arena.viewer.timeline import ReplayTimeline


def key(kind, name):
    code = getattr(pygame, "K_" + (name if len(name) == 1 else name.upper()))
    pygame.event.post(pygame.event.Event(kind, key=code, mod=0))


class Script:
    """A no-op player that presses and releases keys at given ticks (it runs on the scheduler's
    thread under lockstep, so the events reach the viewer before the next tick), and records
    p0's state after each tick it sees."""

    def __init__(self, events):
        self.events = events
        self.tick = 0

    def reset(self, agent_id, observation_space, action_space, seed):
        self.tick = 0

    def act(self, observation, info):
        for kind, name in self.events.get(self.tick, ()):
            key(kind, name)
        self.tick += 1
        return 0


def test_live_views_match_the_replay_timeline(tmp_path):
    """What the live overlays show each tick equals what the replay shows for that frame."""
    env = games.make("fighter", round_ticks=240)
    players = {"p0": make("fighter/reactive"), "p1": make("fighter/reactive")}
    view = LiveView(env, players, game="fighter", clock="profile", tick_hz=60, speed=8.0, window=False)
    seen, thinking_px = [], []
    panels = panel_rects(2)

    def on_tick(tick, env, trace, in_flight):
        out = view.on_tick(tick, env, trace, in_flight)
        seen.append([(v.thinking_ms, v.late, v.missed, v.last_latency_ms) for v in view.timeline.current])
        px = pygame.surfarray.pixels3d(view.screen.surface)
        bar = thinking_bar_rect(panels[1])
        region = px[bar.left:bar.right, bar.top:bar.bottom]
        thinking_px.append(int(((region == THINK_FILL).all(axis=2)).sum()))
        return out

    path = tmp_path / "m.replay"
    result = run_match(env, players, clock="profile", latency={"p0": 0, "p1": 100}, seed=1, record=path,
                       on_tick=on_tick, env_kwargs={"round_ticks": 240})
    data = replay.load(path)
    timeline = ReplayTimeline(data)
    for tick, row in enumerate(seen):
        expect = [(v.thinking_ms, v.late, v.missed, v.last_latency_ms) for v in timeline.views(tick + 1)]
        assert len(row) == len(expect), tick
        for got, want in zip(row, expect):  # pytest >= 9 compares flat sequences only
            assert got == pytest.approx(want), tick
    # the thinking bar was drawn exactly on the frames with p1's decision in flight (where drawn)
    drawn = [k for k, row in enumerate(seen) if row[1][0] is not None]
    assert drawn and all(thinking_px[k] > 0 for k in drawn if k % 8 == 0)
    idle = [k for k, row in enumerate(seen) if row[1][0] is None]
    assert all(thinking_px[k] == 0 for k in idle if k % 8 == 0)
    assert result.missed_ticks["p1"] == seen[-1][1][2]


def test_watch_live_paces_virtual_clocks_to_the_frame_rate():
    env = games.make("fighter", round_ticks=60)
    players = {"p0": make("fighter/reactive"), "p1": make("fighter/weak")}
    t = time.perf_counter()
    result = watch_live(env, players, clock="lockstep", seed=0, speed=2.0)
    took = time.perf_counter() - t
    assert result.ticks == 60
    assert 0.4 < took < 3.0  # 60 ticks at 60 Hz x2 = 0.5 s, not as fast as the CPU allows
    assert result.viewer["frames_drawn"] + result.viewer["frames_skipped"] == 60


def test_keyboard_moves_the_human_fighter():
    """d held walks p0 right, then j presses a jab; a released key stops the walk."""
    from pygame.locals import KEYDOWN, KEYUP

    env = games.make("fighter", round_ticks=90)
    script = Script({2: [(KEYDOWN, "d")], 40: [(KEYUP, "d")], 60: [(KEYDOWN, "j"), (KEYUP, "j")]})
    human = make("human")
    x0 = None
    states = []

    def on_tick_states():
        nonlocal x0
        snap = env.snapshot()["fighters"][0]
        x0 = snap["x"] if x0 is None else x0
        states.append((snap["state"], snap["move"], snap["x"]))

    class Probe(Script):
        def act(self, observation, info):
            on_tick_states()
            return super().act(observation, info)

    probe = Probe(script.events)
    result = watch_live(env, {"p0": human, "p1": probe}, clock="lockstep", seed=5, speed=8.0)
    assert result.stats["p0"].errors == 0
    walked = [s for s in states[3:40] if s[0] == "forward"]
    assert len(walked) > 25
    x_walk = states[40][2]
    assert x_walk - x0 > 60  # 3 px per frame for ~37 frames, from the keyboard alone
    assert states[55][0] == "idle" and states[55][2] == pytest.approx(states[52][2])
    assert any(s[0] == "attack" and s[1] == "jab" for s in states[60:75])
    assert result.stats["p0"].metrics["attacks"] == 1


def test_human_under_the_wall_clock_reads_keys_from_its_worker_thread():
    from pygame.locals import KEYDOWN

    env = games.make("fighter", round_ticks=45)
    env.reset(seed=5)  # the same start as the match below
    start_x = env.snapshot()["fighters"][0]["x"]
    script = Script({0: [(KEYDOWN, "a")]})  # p0 walks back (left): away from p1
    result = watch_live(env, {"p0": make("human"), "p1": script}, clock="wall", seed=5)
    assert result.stats["p0"].decisions > 15 and result.stats["p0"].errors == 0
    assert result.trace.tick_offsets_s  # it really ran on the wall clock
    moved = start_x - env.snapshot()["fighters"][0]["x"]
    assert moved > 2.5 * 24  # walking back at 2.5 px per frame for most of the 45 frames


def test_human_without_a_window_is_a_clear_error():
    env = games.make("fighter", round_ticks=10)
    result = run_match(env, {"p0": HumanAgent(), "p1": make("noop")})
    assert "add --watch" in result.stats["p0"].last_error


def test_replay_window_keys_seek_and_quit(tmp_path, monkeypatch):
    """Keys posted to the replay window: End, Home, 5, left arrow, q; the frames it showed."""
    from pygame.locals import KEYDOWN

    from fpx_arena.viewer.app import Screen
    from fpx_arena.viewer.cursor import ReplayCursor

    env = games.make("fighter", round_ticks=120)
    path = tmp_path / "r.replay"
    run_match(env, {"p0": make("fighter/reactive"), "p1": make("fighter/zoner")}, seed=2, record=path,
              env_kwargs={"round_ticks": 120})
    data = replay.load(path)
    plan = [["end"], [], ["home"], ["5"], ["left"], ["q"]]
    frames = []
    poll, seek = Screen.poll, ReplayCursor.seek

    def poll_with_keys(self):  # pygame's event queue exists once the window does: post here
        for name in plan.pop(0) if plan else ():
            key(KEYDOWN, name)
        return poll(self)

    def seek_and_note(self, frame):
        frames.append(int(frame))
        return seek(self, frame)

    monkeypatch.setattr(Screen, "poll", poll_with_keys)
    monkeypatch.setattr(ReplayCursor, "seek", seek_and_note)
    end = watch_replay(data, paused=True, max_seconds=5)
    total = len(data["actions"])
    # End -> last frame, Home -> 0, 5 -> 50 %, left -> 1 s back, q -> closed there
    assert frames[0] == total and frames[2] == 0
    assert frames[3] == total // 2 and frames[4] == total // 2 - 60
    assert end == total // 2 - 60


def test_keyboard_trades_for_the_human_in_the_market():
    """w buys the small size at market; j lifts the large size; a rests a bid."""
    from pygame.locals import KEYDOWN, KEYUP

    env = games.make("market", day_ticks=40)
    script = Script({3: [(KEYDOWN, "w"), (KEYUP, "w")], 10: [(KEYDOWN, "j"), (KEYUP, "j")],
                     20: [(KEYDOWN, "a"), (KEYUP, "a")]})
    result = watch_live(env, {"t0": make("human"), "t1": script}, clock="lockstep", seed=1, speed=8.0)
    snap = env.snapshot()["agents"]["t0"]
    assert result.stats["t0"].errors == 0 and result.stats["t0"].invalid == 0
    assert result.stats["t0"].metrics["volume"] >= 6  # 1 + 5 units bought, maybe the bid filled too
    assert snap["position"] >= 6
    applied = [row[0] for row in result.trace.actions]
    names = games.get("market").action_names("t0")
    assert [names[a] for a in applied if a] == ["buy", "lift", "bid"]


def test_panels_name_the_precision_and_follow_a_changing_plan():
    """The spec's precision is shown; an agent's `plan` attribute (the adaptive controller's
    current plan) is read every tick."""
    from fpx_arena.viewer.timeline import parse_spec

    assert parse_spec("llm:qwen2.5-3b@fpx:0.3?max_tokens=4") == ("qwen2.5-3b", "fpx:0.3")
    assert parse_spec("fighter/reactive") == ("fighter/reactive", "")

    class Adaptive(Script):
        spec = "llm:tiny@adaptive"

        def act(self, observation, info):
            # switches from all-fp8 to 30 % fp4 after tick 10, like a controller under time pressure
            fp4 = 3 if self.tick >= 10 else 0
            self.plan = {f"layer{i}": "fp4" if i < fp4 else "fp8" for i in range(10)}
            return super().act(observation, info)

    env = games.make("fighter", round_ticks=20)
    players = {"p0": Adaptive({}), "p1": make("fighter/weak")}
    view = LiveView(env, players, game="fighter", clock="lockstep", tick_hz=60, speed=8.0, window=False)
    plans = []

    def on_tick(tick, env, trace, in_flight):
        view.on_tick(tick, env, trace, in_flight)
        plans.append((view.timeline.current[0].label, view.timeline.current[0].precision,
                      view.timeline.current[0].plan))

    run_match(env, players, on_tick=on_tick)
    assert plans[0] == ("tiny", "adaptive", "fp8")
    assert plans[-1] == ("tiny", "adaptive", "30% fp4 + 70% fp8 (6.8 bits)")
