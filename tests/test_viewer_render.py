"""The viewer's pictures: frames of both games, health bars, the thinking bar, the LATE marker,
and the headless export (GIF / MP4 / PNG frames), all drawn off-screen under SDL's dummy driver."""
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import importlib.util
import subprocess
import sys

import numpy as np
import pygame
import pytest

from fpx_arena import games, replay, run_match
from fpx_arena.agents import make
from fpx_arena.viewer import render_replay
from fpx_arena.viewer.app import Screen, snapshot_of
from fpx_arena.viewer.cursor import ReplayCursor
from fpx_arena.games.fighter.draw import health_bar_rect
from fpx_arena.viewer.overlays import late_tag_rect, panel_rects, thinking_bar_rect
from fpx_arena.viewer.style import GAME_RECT, HEALTH_GREEN, LATE_RED, THINK_FILL
from fpx_arena.viewer.timeline import ReplayTimeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def fighter_replay(tmp_path_factory):
    """reactive at 0 ms (p0) against reactive at 150 ms (p1) under the profile clock."""
    path = tmp_path_factory.mktemp("viewer") / "fighter.replay"
    env = games.make("fighter", round_ticks=600)
    run_match(env, {"p0": make("fighter/reactive"), "p1": make("fighter/reactive")}, clock="profile",
              latency={"p0": 0, "p1": 150}, seed=3, record=path, env_kwargs={"round_ticks": 600})
    return path, replay.load(path)


def count(surf, rect, color, tol=12):
    """Pixels of `color` (within tol per channel) inside rect."""
    px = pygame.surfarray.pixels3d(surf)[rect.left:rect.right, rect.top:rect.bottom].astype(int)
    return int((np.abs(px - np.array(color)).max(axis=2) <= tol).sum())


def draw(data, frame, screen=None, cursor=None, timeline=None):
    cursor = cursor or ReplayCursor(data)
    timeline = timeline or ReplayTimeline(data)
    screen = screen or Screen(data["game"], data["agents"], window=False)
    env = cursor.seek(frame)
    return screen.render(snapshot_of(env), timeline.views(frame), "status", "legend", timeline.scale_ms,
                         timeline.dt_ms, cursor.last_actions()).copy()


def test_fighter_frames_render_with_both_fighters(fighter_replay):
    _, data = fighter_replay
    surf = draw(data, 60)
    assert surf.get_size() == (960, 600)
    # each fighter is drawn in its agent colour somewhere on the stage
    screen = Screen("fighter", data["agents"], window=False)
    for a in data["agents"]:
        assert count(surf, GAME_RECT, screen.colors[a], tol=4) > 300, a


def test_health_bar_shrinks_after_a_hit(fighter_replay):
    _, data = fighter_replay
    cursor = ReplayCursor(data)
    hit = None
    for frame in range(1, cursor.total + 1):
        before = cursor.seek(frame - 1).snapshot()["fighters"]
        after = cursor.seek(frame).snapshot()["fighters"]
        for i in (0, 1):
            if after[i]["health"] < before[i]["health"] and after[i]["health"] > 0:
                hit = (frame, i, before[i]["health"], after[i]["health"])
                break
        if hit:
            break
    assert hit, "no hit in the match"
    frame, i, h0, h1 = hit
    bar = health_bar_rect(i, GAME_RECT)
    green0 = count(draw(data, frame - 1), bar, HEALTH_GREEN)
    green1 = count(draw(data, frame), bar, HEALTH_GREEN)
    rows = bar.height - 4  # the 2 px frame covers the top and bottom rows
    assert green1 < green0
    lost_px = (green0 - green1) / rows
    assert lost_px == pytest.approx(bar.width * (h0 - h1) / 100, abs=3)
    # the other fighter's bar did not change
    other = health_bar_rect(1 - i, GAME_RECT)
    assert count(draw(data, frame - 1), other, HEALTH_GREEN) == count(draw(data, frame), other, HEALTH_GREEN)


def test_thinking_bar_fills_while_a_decision_is_in_flight(fighter_replay):
    _, data = fighter_replay
    timeline = ReplayTimeline(data)
    panels = panel_rects(2)
    # p1 (150 ms = 9 ticks) starts deciding at tick 0: in flight in frames 1..9
    views = timeline.views(5)
    assert views[1].thinking_ms == pytest.approx(5 * 1000 / 60)
    assert views[0].thinking_ms is None  # p0 answers at once
    surf = draw(data, 5, timeline=timeline)
    p1_bar, p0_bar = thinking_bar_rect(panels[1]), thinking_bar_rect(panels[0])
    early = count(surf, p1_bar, THINK_FILL)
    assert early > 0 and count(surf, p0_bar, THINK_FILL) == 0
    # later in the same decision the bar is longer
    later = count(draw(data, 8, timeline=timeline), p1_bar, THINK_FILL)
    assert later > early * 1.4


def test_late_idle_frames_are_marked(fighter_replay):
    _, data = fighter_replay
    timeline = ReplayTimeline(data)
    panels = panel_rects(2)
    late_frames = [k for k in range(1, 200) if timeline.views(k)[1].late]
    on_time = [k for k in range(1, 200) if not timeline.views(k)[1].late]
    assert late_frames and on_time
    late_surf = draw(data, late_frames[0], timeline=timeline)
    ok_surf = draw(data, on_time[0], timeline=timeline)
    tag = late_tag_rect(panels[1])
    assert count(late_surf, tag, LATE_RED, tol=4) > 0.5 * tag.width * tag.height
    assert count(ok_surf, tag, LATE_RED, tol=4) == 0
    # p0 is never late: no marker on its panel
    assert count(late_surf, panels[0], LATE_RED, tol=4) == 0
    # and the fighter itself is outlined on the stage
    assert count(late_surf, GAME_RECT, LATE_RED, tol=4) > count(ok_surf, GAME_RECT, LATE_RED, tol=4)


def test_seeking_back_gives_the_same_state_as_playing_forward(fighter_replay):
    _, data = fighter_replay
    cursor = ReplayCursor(data, every=50)
    fresh = ReplayCursor(data, every=10**9)
    digests = {}
    for frame in (0, 37, 50, 173, 400):
        digests[frame] = fresh.seek(frame).state_digest()
    cursor.seek(cursor.total)
    for frame in (400, 37, 173, 0, 50):
        assert cursor.seek(frame).state_digest() == digests[frame], frame
    assert cursor.seek(cursor.total).state_digest() == data["final_digest"]


def test_gif_frames_and_mp4_export(fighter_replay, tmp_path):
    path, data = fighter_replay
    from PIL import Image

    gif = tmp_path / "m.gif"
    info = render_replay(path, gif, end_s=2.0, progress=False)
    assert info["frames"] == 51 and info["size"] == (480, 300)
    with Image.open(gif) as img:
        assert img.n_frames == 51 and img.size == (480, 300)
        assert img.info["duration"] == 40
    frames = tmp_path / "frames"
    info = render_replay(path, frames, fps=6, start_s=1.0, end_s=2.0, progress=False)
    names = sorted(p.name for p in frames.glob("*.png"))
    assert names == [f"frame_{t:06d}.png" for t in range(60, 121, 10)]
    assert pygame.image.load(str(frames / names[0])).get_size() == (960, 600)
    mp4 = tmp_path / "m.mp4"
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        with pytest.raises(Exception, match="pip install imageio-ffmpeg"):
            render_replay(path, mp4, end_s=0.5, progress=False)
    else:
        info = render_replay(path, mp4, end_s=0.5, scale=0.5, progress=False)
        assert info["frames"] == 31 and mp4.stat().st_size > 1000
        assert mp4.read_bytes()[4:8] == b"ftyp"


def _cli(*args, display=True):
    env = dict(os.environ, PYTHONPATH=ROOT, SDL_VIDEODRIVER="dummy")
    if not display:
        for var in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
            env.pop(var, None)
    return subprocess.run([sys.executable, "-m", "fpx_arena", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


def test_render_cli_and_clear_errors(fighter_replay, tmp_path):
    path, _ = fighter_replay
    out = _cli("render", str(path), "--out", str(tmp_path / "a.gif"), "--end", "0.5", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "wrote 13 frames" in out.stdout and (tmp_path / "a.gif").stat().st_size > 0
    bad = tmp_path / "bad.replay"
    bad.write_text("not a replay")
    for cmd in (["render", str(bad), "--out", str(tmp_path / "b.gif")], ["watch", str(bad)],
                ["render", str(path), "--out", str(tmp_path / "b.avi")]):
        out = _cli(*cmd)
        assert out.returncode == 2
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "error:" in lines[0], out.stderr
        assert "Traceback" not in out.stderr
    out = _cli("watch", str(path), display=False)  # a server: point to render, not SDL's error
    assert out.returncode == 2 and "no display found" in out.stderr and "fpx-arena render" in out.stderr


def test_market_frames_show_book_chart_and_traders(tmp_path):
    from fpx_arena.games.market.draw import trader_rects
    from fpx_arena.viewer.style import TEXT

    path = tmp_path / "market.replay"
    env = games.make("market", n_agents=3, day_ticks=200)
    run_match(env, {"t0": make("market/informed"), "t1": make("market/informed"), "t2": make("market/noise")},
              clock="profile", latency={"t0": 0, "t1": 200, "t2": 50}, seed=4, record=path,
              env_kwargs={"n_agents": 3, "day_ticks": 200})
    data = replay.load(path)
    cursor = ReplayCursor(data)
    screen = Screen("market", data["agents"], window=False)
    cursor.on_step = screen.observe
    surf = draw(data, 150, screen=screen, cursor=cursor)
    chart = pygame.Rect(GAME_RECT.x + 8, GAME_RECT.y + 8, 590, 292)
    # the mid line spans the chart's 15 s window (150 frames = 7.5 s of it, drawn from the history)
    cols = [x for x in range(chart.x + 56, chart.right - 64, 4)
            if count(surf, pygame.Rect(x, chart.y + 26, 4, chart.height - 50), TEXT, tol=8)]
    assert len(cols) > 0.35 * len(range(chart.x + 56, chart.right - 64, 4))
    # the book: bid and ask bars
    book = pygame.Rect(chart.right + 10, GAME_RECT.y + 8, GAME_RECT.right - chart.right - 18, 292)
    from fpx_arena.games.market.draw import ASK_COLOR, BID_COLOR

    assert count(surf, book, BID_COLOR, tol=4) > 500 and count(surf, book, ASK_COLOR, tol=4) > 500
    # one row per trader, in its colour, with its position and PnL as the game has them
    traders = pygame.Rect(GAME_RECT.x + 8, chart.bottom + 6, GAME_RECT.width - 16, GAME_RECT.bottom - chart.bottom - 10)
    snap = cursor.env.snapshot()
    for cell, a in zip(trader_rects(3, traders), data["agents"]):
        assert count(surf, cell, screen.colors[a], tol=4) > 50
    assert any(snap["agents"][a]["position"] != 0 or snap["agents"][a]["pnl"] != 0 for a in data["agents"])
    # seeking re-simulates the recorded match exactly (arrival orders included)
    assert cursor.seek(cursor.total).state_digest() == data["final_digest"]
    assert cursor.seek(37).state_digest() == ReplayCursor(data).seek(37).state_digest()
    # the slow trader's late ticks are marked in its row
    timeline = ReplayTimeline(data)
    late = next(k for k in range(1, 200) if timeline.views(k)[1].late)
    surf = draw(data, late, screen=screen, cursor=cursor)
    cell = trader_rects(3, traders)[1]
    assert count(surf, cell, LATE_RED, tol=4) > 200
