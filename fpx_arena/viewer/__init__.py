"""The pygame viewer: watch live matches and replays, play as a human, export pictures.

- ``watch_live(env, players, **run_match_kwargs)``: run_match with a window that shows every
  tick (``fpx-arena play ... --watch``).
- ``watch_replay(path)``: a replay with pause, single-step, speed and seeking (``fpx-arena watch``).
- ``render_replay(path, out)``: GIF / MP4 / PNG frames without a screen (``fpx-arena render``).

pygame is imported only when one of these runs, so importing fpx_arena stays cheap.
"""
from __future__ import annotations

import os

from .. import games, replay
from ..errors import UserError
from ..scheduler import run_match

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # no banner in our command output


def _require_display():
    """A window needs a display; say so in one line instead of SDL's error."""
    if os.environ.get("SDL_VIDEODRIVER"):
        return
    if os.name == "nt" or os.uname().sysname == "Darwin":
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("no display found (DISPLAY is not set): on a server, export pictures with "
                        "`fpx-arena render REPLAY --out match.gif`, or run under xvfb-run")


def watch_live(env, players: dict, *, speed: float = 1.0, hitboxes: bool = False, hold: bool = True,
               hold_seconds: float | None = None, **run_match_kwargs):
    """Play a match with run_match while a window shows it at the game's frame rate; returns the
    MatchResult (covering the ticks played if the window was closed early). Viewer counters are in
    ``result.viewer``. hold: keep the final frame up until the window is closed."""
    _require_display()
    from .app import LiveView  # pygame: only when a window is wanted

    if "on_tick" in run_match_kwargs:
        raise UserError("watch_live sets on_tick itself")
    game = run_match_kwargs.get("game") or games.name_of(env)
    clock = run_match_kwargs.get("clock", "lockstep")
    tick_hz = float(run_match_kwargs.get("tick_hz") or env.metadata.get("tick_hz")
                    or env.metadata.get("render_fps") or 60)
    view = LiveView(env, players, game=game, clock=clock, tick_hz=tick_hz,
                    seed=run_match_kwargs.get("seed", 0), speed=speed, hitboxes=hitboxes)
    try:
        result = run_match(env, players, on_tick=view.on_tick, **run_match_kwargs)
        result.viewer = {"frames_drawn": view.frames_drawn, "frames_skipped": view.frames_skipped,
                         "draw_times_s": view.draw_times_s, "overruns": view.overruns,
                         "closed_early": view.screen.controls.quit, "video_driver": view.screen.video_driver}
        if hold and not view.screen.controls.quit and os.environ.get("SDL_VIDEODRIVER") != "dummy":
            view.hold(result, hold_seconds)
        return result
    finally:
        view.close()


def watch_replay(source, *, speed: float = 1.0, start_s: float = 0.0, paused: bool = False,
                 hitboxes: bool = False, max_seconds: float | None = None) -> int:
    """Show a replay (path or loaded data) in a window; returns the frame it was closed on."""
    _require_display()
    from .app import play_replay  # pygame

    data = source if isinstance(source, dict) else replay.load(source)
    return play_replay(data, speed=speed, start=int(round(start_s * float(data["tick_hz"]))),
                       paused=paused, hitboxes=hitboxes, max_seconds=max_seconds)


def render_replay(source, out, **kwargs) -> dict:
    from . import export  # pygame

    return export.render_replay(source, out, **kwargs)


__all__ = ["watch_live", "watch_replay", "render_replay"]
