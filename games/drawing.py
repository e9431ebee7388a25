"""Fallback drawing for a game the viewer has no picture for: its snapshot (or, without one,
the last applied actions) as text, so any PettingZoo env can still be watched."""
from __future__ import annotations

import json

from .style import DIM, TEXT


def draw(surf, rect, snap, ctx):
    fonts = ctx.fonts
    x, y = rect.x + 16, rect.y + 12
    fonts.blit(surf, "no picture for this game: its state as text", (x, y), 20, DIM)
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
