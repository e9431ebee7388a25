"""Per-agent overlays (name, precision plan, thinking bar, last latency, missed ticks, the LATE
marker) and the status line with the key legend."""
from __future__ import annotations

import pygame

from .style import (BG, DIM, LATE_RED, PANEL_BG, PANELS_RECT, STATUS_RECT, TEXT, THINK_FILL,
                    THINK_OVER, THINK_TRACK, agent_color)

PANEL_PAD = 6


def panel_rects(n: int, area: pygame.Rect = PANELS_RECT) -> list:
    """One panel per agent side by side (two rows past four agents)."""
    if n <= 0:
        return []
    rows = 1 if n <= 4 else 2
    per_row = -(-n // rows)
    w = area.width // per_row
    h = area.height // rows
    return [pygame.Rect(area.x + (k % per_row) * w + 2, area.y + (k // per_row) * h + 2, w - 4, h - 4)
            for k in range(n)]


def thinking_bar_rect(panel: pygame.Rect) -> pygame.Rect:
    """Where the thinking bar of an agent's panel is drawn (tests look here)."""
    width = panel.width - 76 - 80
    if panel.height >= 80:
        return pygame.Rect(panel.x + 76, panel.y + 56, width, 14)
    return pygame.Rect(panel.x + 76, panel.y + panel.height - 16, width, 10)


def late_tag_rect(panel: pygame.Rect) -> pygame.Rect:
    return pygame.Rect(panel.right - 52, panel.y + 4, 46, 18)


def draw_agent_panel(surf, fonts, panel: pygame.Rect, index: int, view, scale_ms: float, dt_ms: float):
    pygame.draw.rect(surf, PANEL_BG, panel, border_radius=4)
    color = agent_color(index)
    x, y = panel.x + PANEL_PAD, panel.y + PANEL_PAD
    pygame.draw.rect(surf, color, (x, y + 2, 12, 12))
    name = f"{view.id}  {view.label}" + (f" @ {view.precision}" if view.precision else "")
    fonts.blit(surf, fonts.fit(name, panel.width - 80, 20), (x + 18, y), 20, TEXT)
    compact = panel.height < 80
    if not compact:
        plan = view.plan or (view.precision and f"{view.precision} (fixed)") or "-"
        fonts.blit(surf, fonts.fit(f"plan: {plan}", panel.width - 20, 18), (x, y + 22), 18, DIM)
    bar = thinking_bar_rect(panel)
    fonts.blit(surf, "thinking", (x, bar.centery), 18, DIM, anchor="midleft")
    pygame.draw.rect(surf, THINK_TRACK, bar)
    if view.thinking_ms is not None:
        frac = min(1.0, view.thinking_ms / scale_ms)
        fill = bar.copy()
        fill.width = max(2, int(bar.width * frac))
        pygame.draw.rect(surf, THINK_FILL if view.thinking_ms <= scale_ms else THINK_OVER, fill)
        fonts.blit(surf, f"{view.thinking_ms:6.0f} ms", (bar.right + 6, bar.centery), 18, THINK_FILL,
                   anchor="midleft")
    # one tick: an action decided slower than this misses at least one tick
    tick_x = bar.x + int(bar.width * min(1.0, dt_ms / scale_ms))
    pygame.draw.line(surf, TEXT, (tick_x, bar.y - 2), (tick_x, bar.bottom + 1))
    fonts.blit(surf, f"{scale_ms:g} ms", (bar.right, bar.bottom + 1), 14, DIM, anchor="topright")
    last = "-" if view.last_latency_ms is None else f"{view.last_latency_ms:.0f} ms"
    if view.last_status:
        last += f" ({view.last_status})"
    info = f"last {last}   missed {view.missed}"
    if panel.width >= 300:
        info += f"   decisions {view.decisions}"
    if not compact:
        fonts.blit(surf, fonts.fit(info, panel.width - 12, 18), (x, panel.bottom - 22), 18, TEXT)
    else:
        fonts.blit(surf, fonts.fit(info, panel.width - 12, 16), (x, y + 20), 16, TEXT)
    if view.late:
        # this frame's action was the late policy's: the agent stood idle while thinking
        pygame.draw.rect(surf, LATE_RED, panel, width=3, border_radius=4)
        tag = late_tag_rect(panel)
        pygame.draw.rect(surf, LATE_RED, tag, border_radius=3)
        fonts.blit(surf, "LATE", tag.center, 18, (255, 255, 255), anchor="center")


def draw_panels(surf, fonts, views, scale_ms: float, dt_ms: float, area: pygame.Rect = PANELS_RECT):
    surf.fill(BG, area)
    for k, (panel, view) in enumerate(zip(panel_rects(len(views), area), views)):
        draw_agent_panel(surf, fonts, panel, k, view, scale_ms, dt_ms)


def draw_status(surf, fonts, status: str, legend: str, area: pygame.Rect = STATUS_RECT):
    surf.fill(BG, area)
    pygame.draw.line(surf, THINK_TRACK, area.topleft, area.topright)
    fonts.blit(surf, fonts.fit(status, area.width - 16, 20), (area.x + 8, area.y + 4), 20, TEXT)
    fonts.blit(surf, fonts.fit(legend, area.width - 16, 17), (area.x + 8, area.y + 25), 17, DIM)
