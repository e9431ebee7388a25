"""Colours, fonts and the window's fixed layout, shared by every drawing module.

The layout is fixed (not scaled to the window) so that exports, screenshots and the pixel
tests all see the same places: the game on top, one panel per agent under it, the status line
and the key legend at the bottom.
"""
from __future__ import annotations

import pygame

# the colours live with the games' drawing helpers, which every game drawer may import
from ..games.drawing import (AGENT_COLORS, BAD, BG, DIM, GOOD, GRID, HEALTH_GREEN,  # noqa: F401
                             HEALTH_LOST, LATE_RED, PANEL_BG, TEXT, THINK_FILL, THINK_OVER, THINK_TRACK,
                             agent_color)

WIDTH, HEIGHT = 960, 600
GAME_RECT = pygame.Rect(0, 0, WIDTH, 440)
PANELS_RECT = pygame.Rect(0, 440, WIDTH, 116)
STATUS_RECT = pygame.Rect(0, 556, WIDTH, 44)


class Fonts:
    """pygame's bundled default font in a few sizes, with a small cache of rendered text
    (the same labels are drawn every frame; rendering text is the costliest part)."""

    def __init__(self):
        if not pygame.font.get_init():
            pygame.font.init()
        self._fonts = {}
        self._cache = {}
        self._fitted = {}
        for size in (14, 16, 17, 18, 20, 24, 30, 40):  # load now, not in the first live frame
            self.font(size)

    def font(self, size: int):
        if size not in self._fonts:
            self._fonts[size] = pygame.font.Font(None, size)
        return self._fonts[size]

    def render(self, text: str, size: int = 20, color=TEXT):
        key = (text, size, color)
        surf = self._cache.get(key)
        if surf is None:
            if len(self._cache) > 2000:
                self._cache.clear()
            surf = self._cache[key] = self.font(size).render(text, True, color)
        return surf

    def blit(self, target, text: str, pos, size: int = 20, color=TEXT, anchor: str = "topleft"):
        surf = self.render(text, size, color)
        rect = surf.get_rect(**{anchor: pos})
        target.blit(surf, rect)
        return rect

    def fit(self, text: str, width: int, size: int) -> str:
        """The text cut with an ellipsis to fit the width (cached: called every frame)."""
        key = (text, width, size)
        out = self._fitted.get(key)
        if out is None:
            if len(self._fitted) > 2000:
                self._fitted.clear()
            font, out = self.font(size), text
            if font.size(out)[0] > width:
                while out and font.size(out + "...")[0] > width:
                    out = out[:-1]
                out += "..."
            self._fitted[key] = out
        return out
