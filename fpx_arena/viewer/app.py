"""The viewer's window and loops: a replay player with seeking, and the live view that
run_match drives through its on_tick callback.

Live pacing: under the virtual clocks (lockstep, profile, measured) the scheduler would run as
fast as it can, so the viewer holds each tick until its display time (tick_hz x speed), and
pausing simply holds the scheduler. Under the wall clock the world keeps real time whatever
the viewer does, so there is no pause or speed; the viewer draws only when the frame fits
before the next tick is due, so that drawing never delays a tick.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import pygame

from .. import games
from ..agents.keyboard import KEYBOARD
from ..errors import SpecError
from ..games import drawing
from .cursor import ReplayCursor
from .overlays import draw_panels, draw_status
from .style import BG, GAME_RECT, HEIGHT, WIDTH, Fonts, agent_color
from .timeline import LiveTimeline, ReplayTimeline

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass
class DrawContext:
    """What a game drawer needs besides the snapshot."""
    fonts: object
    agents: list
    colors: dict
    late: set = field(default_factory=set)  # agents whose action this frame was the late policy's
    thinking: set = field(default_factory=set)  # agents with a decision in flight
    hitboxes: bool = False
    actions: dict | None = None  # the actions applied by the last step
    action_names: dict | None = None  # agent -> list of action names, where the game has them
    history: object = None  # the drawer's History of past frames (charts), where it keeps one


@dataclass
class Controls:
    paused: bool = False
    speed_index: int = SPEEDS.index(1.0)
    overlays: bool = True
    hitboxes: bool = False
    quit: bool = False

    @property
    def speed(self) -> float:
        return SPEEDS[self.speed_index]


def _nearest_speed(speed: float) -> int:
    return min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - float(speed)))


class Screen:
    """Drawing and input for one game; window=False draws off-screen (export, tests)."""

    def __init__(self, game: str, agents, *, window: bool = True, title: str = "fpx-arena",
                 letter_keys: bool = True, action_names: dict | None = None):
        if window:
            pygame.display.init()
            self.surface = pygame.display.set_mode((WIDTH, HEIGHT))
            pygame.display.set_caption(title)
            pygame.key.set_repeat()  # held keys are read as held, not as repeats
            KEYBOARD.listening = True
        else:
            self.surface = pygame.Surface((WIDTH, HEIGHT))
        self.video_driver = pygame.display.get_driver() if window else "off-screen"
        self.window = window
        self.fonts = Fonts()
        self.game = game
        self.agents = list(agents)
        module = drawer_of(game)
        self.drawer = module.draw
        self.history = module.History() if hasattr(module, "History") else None
        self.controls = Controls()
        # letter shortcuts (h, o, q) clash with human players' keys: then only F1/F2/Esc work
        self.letter_keys = letter_keys
        self.action_names = action_names
        self.colors = {a: agent_color(i) for i, a in enumerate(self.agents)}

    def close(self):
        if self.window:
            KEYBOARD.listening = False
            KEYBOARD.clear()
            pygame.display.quit()

    # -- drawing ---------------------------------------------------------------------------
    def observe(self, frame: int, env):
        """Note a frame the game passed through (drawn or not), for drawers that chart the past."""
        if self.history is not None:
            self.history.record(frame, snapshot_of(env))

    def render(self, snapshot, views, status: str, legend: str, scale_ms: float, dt_ms: float,
               actions=None, frame: int | None = None):
        surf = self.surface
        surf.fill(BG)
        if self.history is not None and frame is not None:
            self.history.record(frame, snapshot)
        ctx = DrawContext(fonts=self.fonts, agents=self.agents, colors=self.colors,
                          late={v.id for v in views if v.late},
                          # a decision a tick old or more (not the one just asked)
                          thinking={v.id for v in views if v.thinking_ms is not None
                                    and v.thinking_ms >= dt_ms * 0.999},
                          hitboxes=self.controls.hitboxes, actions=actions, action_names=self.action_names,
                          history=self.history)
        surf.set_clip(GAME_RECT)
        self.drawer(surf, GAME_RECT, snapshot, ctx)
        surf.set_clip(None)
        if self.controls.overlays:
            draw_panels(surf, self.fonts, views, scale_ms, dt_ms)
        draw_status(surf, self.fonts, status, legend)
        return surf

    def present(self):
        if self.window:
            pygame.display.flip()

    # -- input -----------------------------------------------------------------------------
    def poll(self) -> list:
        """Handle pending events: keyboard state for human players, viewer toggles; returns the
        navigation commands (("pause",), ("step", +-1), ("seek", frames), ("jump", fraction),
        ("speed", +-1)) for the loop that owns the timeline."""
        if not self.window:
            return []
        out = []
        c = self.controls
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                c.quit = True
            elif event.type == pygame.WINDOWFOCUSLOST:
                KEYBOARD.clear()
            elif event.type == pygame.KEYUP:
                KEYBOARD.release(pygame.key.name(event.key))
            elif event.type == pygame.KEYDOWN:
                name = pygame.key.name(event.key)
                KEYBOARD.press(name)
                shift = bool(event.mod & pygame.KMOD_SHIFT)
                letters = self.letter_keys
                if event.key == pygame.K_ESCAPE or (letters and name == "q"):
                    c.quit = True
                elif event.key == pygame.K_F1 or (letters and name == "h"):
                    c.hitboxes = not c.hitboxes
                elif event.key == pygame.K_F2 or (letters and name == "o"):
                    c.overlays = not c.overlays
                elif event.key == pygame.K_SPACE:
                    out.append(("pause",))
                elif name in (".", "[.]"):
                    out.append(("step", 1))
                elif name == ",":
                    out.append(("step", -1))
                elif name in ("=", "+", "]", "[+]"):
                    out.append(("speed", 1))
                elif name in ("-", "[", "[-]"):
                    out.append(("speed", -1))
                elif event.key in (pygame.K_LEFT, pygame.K_RIGHT):
                    out.append(("seek", (-1 if event.key == pygame.K_LEFT else 1) * (10 if shift else 1)))
                elif event.key == pygame.K_HOME:
                    out.append(("jump", 0.0))
                elif event.key == pygame.K_END:
                    out.append(("jump", 1.0))
                elif len(name) == 1 and name.isdigit():
                    out.append(("jump", int(name) / 10))
        return out


def snapshot_of(env):
    snap = getattr(env, "snapshot", None)
    return snap() if callable(snap) else None


def drawer_of(game: str):
    """The drawer module of a registered game; the state as text for any other env."""
    try:
        return games.get(game).load_drawer() or drawing
    except SpecError:  # not a registered game (e.g. a replay of a PettingZoo classic)
        return drawing


def action_names_of(env, agents) -> dict | None:
    """agent -> action names, where the env's game has names (else None: actions as numbers)."""
    game = games.of_env(env)
    if game is None:
        return None
    names = {a: list(game.action_names(a)) for a in agents}
    return names if any(names.values()) else None


# -- replays ---------------------------------------------------------------------------------

REPLAY_LEGEND = ("space pause  ,/. step  -/+ speed  left/right seek 1 s (shift 10 s)  0-9 jump  "
                 "Home/End  h hitboxes  o overlays  q quit")


def replay_status(data: dict, frame: int, total: int, controls: Controls) -> str:
    t = frame / float(data["tick_hz"])
    state = "PAUSED" if controls.paused else "playing"
    if frame >= total:
        winner = (data.get("result") or {}).get("winner")
        state = f"END - winner {winner or 'draw'}"
    return (f"replay  {data['game']}  tick {frame}/{total}  {t:6.2f} s  x{controls.speed:g}  {state}  "
            f"clock {data.get('clock', '?')}  seed {data['seed']}")


def play_replay(data: dict, *, speed: float = 1.0, start: int = 0, paused: bool = False,
                hitboxes: bool = False, max_seconds: float | None = None) -> int:
    """Show a replay in a window until the user quits (or max_seconds pass); returns the frame
    it was on."""
    cursor = ReplayCursor(data)
    timeline = ReplayTimeline(data)
    screen = Screen(data["game"], data["agents"], title=f"fpx-arena replay: {data['game']}",
                    action_names=action_names_of(cursor.env, data["agents"]))
    cursor.on_step = screen.observe
    screen.observe(0, cursor.env)
    c = screen.controls
    c.speed_index, c.paused, c.hitboxes = _nearest_speed(speed), paused, hitboxes
    tick_hz, total = float(data["tick_hz"]), cursor.total
    pos = float(max(0, min(start, total)))
    clock = pygame.time.Clock()
    began = last = time.perf_counter()
    try:
        while not c.quit:
            for cmd in screen.poll():
                if cmd[0] == "pause":
                    c.paused = not c.paused
                    if pos >= total and not c.paused:
                        pos = 0.0  # play again from the start
                elif cmd[0] == "step":
                    c.paused = True
                    pos = float(int(pos) + cmd[1])
                elif cmd[0] == "speed":
                    c.speed_index = max(0, min(len(SPEEDS) - 1, c.speed_index + cmd[1]))
                elif cmd[0] == "seek":
                    pos += cmd[1] * tick_hz
                elif cmd[0] == "jump":
                    pos = cmd[1] * total
            now = time.perf_counter()
            if not c.paused:
                pos += (now - last) * tick_hz * c.speed
            last = now
            pos = max(0.0, min(pos, float(total)))
            if pos >= total:
                c.paused = True
            frame = int(pos)
            env = cursor.seek(frame)
            screen.render(snapshot_of(env), timeline.views(frame), replay_status(data, frame, total, c),
                          REPLAY_LEGEND, timeline.scale_ms, timeline.dt_ms, cursor.last_actions(), frame)
            screen.present()
            clock.tick(60 if not c.paused else 30)
            if max_seconds is not None and now - began > max_seconds:
                break
        return int(pos)
    finally:
        screen.close()


# -- live matches ----------------------------------------------------------------------------

class LiveView:
    """run_match's on_tick callback: draws each tick, paces virtual clocks, handles input."""

    def __init__(self, env, players: dict, *, game: str, clock: str, tick_hz: float, seed: int = 0,
                 speed: float = 1.0, hitboxes: bool = False, window: bool = True):


        self.env, self.players, self.game, self.clock = env, players, game, clock
        self.agents = list(env.possible_agents)
        self.tick_hz = float(tick_hz)
        self.dt = 1.0 / self.tick_hz
        self.seed = seed
        self.timeline = LiveTimeline(self.agents, players, self.tick_hz)
        humans = [a for a in self.agents if hasattr(type(players[a]), "key_help")]
        self.humans = humans
        self._key_help = None  # known once the players are reset (their game and layout)
        self.screen = Screen(game, self.agents, window=window, title=f"fpx-arena: {game}",
                             letter_keys=not humans, action_names=action_names_of(env, self.agents))
        c = self.screen.controls
        c.speed_index, c.hitboxes = _nearest_speed(speed), hitboxes
        self.wall = clock == "wall"
        self.frames_drawn = 0
        self.frames_skipped = 0
        self.draw_times_s = []
        self.overruns = 0  # wall clock: frames whose drawing ended after the next tick was due
        self._base = None  # (perf_counter, tick) the virtual-clock pacing counts from
        self._t0 = None  # wall clock: estimate of the scheduler's t0 (perf_counter)
        self._draw_s = 0.004  # running estimate of one frame's drawing time
        self.last_tick = -1
        self._last_actions = None

    def legend(self) -> str:
        keys = "F1 hitboxes  F2 overlays  Esc quit" if not self.screen.letter_keys \
            else "h hitboxes  o overlays  q quit"
        nav = "real time (no pause)" if self.wall else "space pause  . step  -/+ speed"
        text = f"{nav}  {keys}"
        if self.humans and self._key_help is None and self.last_tick >= 0:
            self._key_help = "   ".join(f"{a}: {self.players[a].key_help}" for a in self.humans)
        return f"{text}   |   {self._key_help}" if self._key_help else text

    def status(self, tick: int, final: str = "") -> str:
        c = self.screen.controls
        state = final or ("PAUSED" if c.paused else "live")
        speed = "" if self.wall else f"  x{c.speed:g}"
        return (f"{state}  {self.game}  tick {tick + 1}  {(tick + 1) * self.dt:6.2f} s{speed}  "
                f"clock {self.clock}  seed {self.seed}")

    def draw(self, tick: int, views, final: str = ""):
        t = time.perf_counter()
        self.screen.render(snapshot_of(self.env), views, self.status(tick, final), self.legend(),
                           self.timeline.scale_ms, self.timeline.dt_ms, self._last_actions, tick + 1)
        self.screen.present()
        took = time.perf_counter() - t
        self._draw_s = max(took, 0.8 * self._draw_s + 0.2 * took)  # quick to rise, slow to fall
        self.draw_times_s.append(took)
        self.frames_drawn += 1

    def on_tick(self, tick, env, trace, in_flight):
        views = self.timeline.update(tick, trace, in_flight)
        row = trace.actions[tick]
        self._last_actions = dict(zip(self.agents, row))
        self.last_tick = tick
        self.screen.observe(tick + 1, env)  # every tick, drawn or not (charts of the past)
        c = self.screen.controls
        if self.wall:
            return self._wall_tick(tick, trace, views)
        self._handle(self.screen.poll())
        while c.paused and not c.quit:
            self.draw(tick, views)
            time.sleep(1 / 30)
            if self._handle(self.screen.poll()):
                break  # single step: show the next tick, stay paused
        if c.quit:
            return False
        now = time.perf_counter()
        rate = self.tick_hz * c.speed
        if self._base is None or now - (self._base[0] + (tick - self._base[1]) / rate) > 0.25:
            self._base = (now, tick)  # first frame, or far behind (slow agents): do not race
        target = self._base[0] + (tick - self._base[1]) / rate
        if now > target + 2.0 / rate and tick % 8:
            self.frames_skipped += 1  # behind schedule: skip drawing, keep ticking
            return None
        while True:  # wait for the frame's time, keeping the keyboard fresh for humans
            left = target - time.perf_counter()
            if left <= 0:
                break
            time.sleep(min(left, 0.01))
            self._handle(self.screen.poll())
        self.draw(tick, views)
        return False if c.quit else None

    def _handle(self, commands) -> bool:
        """Apply navigation commands; True if a single step was asked."""
        c = self.screen.controls
        step = False
        for cmd in commands:
            if cmd[0] == "pause" and not self.wall:
                c.paused = not c.paused
                self._base = None
            elif cmd[0] == "step" and cmd[1] > 0 and not self.wall:
                c.paused, step = True, True
            elif cmd[0] == "speed" and not self.wall:
                c.speed_index = max(0, min(len(SPEEDS) - 1, c.speed_index + cmd[1]))
                self._base = None
        return step

    def _wall_tick(self, tick, trace, views):
        now = time.perf_counter()
        t0 = now - trace.tick_offsets_s[tick]  # >= the scheduler's t0, by this tick's work
        self._t0 = t0 if self._t0 is None else min(self._t0, t0)
        self._handle(self.screen.poll())
        if self.screen.controls.quit:
            return False
        due = self._t0 + (tick + 1) * self.dt
        if due - time.perf_counter() > 1.5 * self._draw_s + 0.001:
            self.draw(tick, views)
            if time.perf_counter() > due:
                self.overruns += 1  # this frame did delay the next tick
        else:
            self.frames_skipped += 1  # drawing now would delay the next tick
            self._draw_s *= 0.9  # forget a one-off slow frame, or no frame would be tried again
        return None

    def hold(self, result, max_seconds: float | None = None):
        """After the match: keep the last frame up until the user closes the window."""
        if not self.screen.window or self.last_tick < 0:
            return
        final = f"MATCH OVER - winner {result.winner or 'draw'} - Esc to close"
        c = self.screen.controls
        began = time.perf_counter()
        views = self.timeline.current
        while not c.quit:
            self.screen.poll()
            self.draw(self.last_tick, views, final)
            time.sleep(1 / 30)
            if max_seconds is not None and time.perf_counter() - began > max_seconds:
                break

    def close(self):
        self.screen.close()


def ensure_video_driver(window: bool):
    """No window wanted, or no display there: SDL's dummy driver (servers, CI)."""
    if not window or not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                          or os.name == "nt" or os.uname().sysname == "Darwin"):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
