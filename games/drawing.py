"""What a game's drawer may use without importing the viewer: the viewer's colours and the
fallback picture of a game (its state as text).

A drawer is a module (named by ``Game.drawer``) with ``draw(surface, rect, snapshot, ctx)``
and, where it charts the past, a ``History`` class with ``record(frame, snapshot)``. ``ctx``
carries ``fonts`` (``fonts.blit(surface, text, pos, size, color, anchor=...)``), ``agents``,
``colors`` (agent -> colour), ``late``, ``thinking``, ``hitboxes``, ``actions``,
``action_names`` and ``history``. This module needs no pygame: the fallback draws text only.
"""
from __future__ import annotations

import json

BG = (18, 20, 28)
PANEL_BG = (30, 33, 44)
GRID = (48, 52, 66)
TEXT = (225, 228, 236)
DIM = (140, 146, 160)
LATE_RED = (235, 40, 50)
THINK_FILL = (250, 200, 60)  # the thinking bar, below the one-tick deadline scale
THINK_OVER = (245, 120, 40)  # the part of the bar past ... the bar's scale (long thoughts)
THINK_TRACK = (55, 58, 72)
HEALTH_GREEN = (60, 210, 90)
HEALTH_LOST = (120, 30, 34)
GOOD = (80, 210, 120)
BAD = (235, 85, 85)

AGENT_COLORS = [(70, 140, 255), (255, 150, 50), (90, 205, 120), (215, 95, 215),
                (235, 220, 80), (80, 215, 225), (200, 120, 90), (160, 160, 240)]


def agent_color(index: int) -> tuple:
    return AGENT_COLORS[index % len(AGENT_COLORS)]


def draw_state_text(surf, rect, snap, ctx, title: str = "no picture for this game: its state as text"):
    """The picture of a game without a drawer of its own: the last applied actions by name and
    the snapshot (where the env has one) as text, so any PettingZoo env can still be watched.
    Returns the y below the last line, for drawers that draw more under it."""
    fonts = ctx.fonts
    x, y = rect.x + 16, rect.y + 12
    if title:
        fonts.blit(surf, title, (x, y), 20, DIM)
        y += 28
    if ctx.actions:
        for a, act in ctx.actions.items():
            names = (ctx.action_names or {}).get(a)
            label = names[act] if names and isinstance(act, int) and 0 <= act < len(names) else act
            fonts.blit(surf, f"{a}: {label}" + ("   (late)" if a in ctx.late else ""), (x, y), 22,
                       ctx.colors.get(a, TEXT))
            y += 24
    if snap:
        text = json.dumps(snap, default=str, separators=(", ", ": "))
        width = max(20, (rect.width - 32) // 8)
        for k in range(0, min(len(text), width * 14), width):
            fonts.blit(surf, text[k:k + width], (x, y), 18, TEXT)
            y += 20
    return y


draw = draw_state_text  # the drawer protocol's name, so this module is itself a drawer
