"""Drawing the market game from env.snapshot(): the price chart (mid, the makers' reference, the
fundamental where the game exposes it, the signal's announced move), the book's depth with the
agents' resting orders, the tape, and each trader's position, orders and PnL.

The chart needs the past, which one snapshot does not hold: ``History`` keeps a few numbers per
frame, fed by the viewer for every frame the game passes through (also the frames a seek skips).
"""
from __future__ import annotations

import pygame

from ..drawing import BAD, DIM, GOOD, GRID, LATE_RED, PANEL_BG, TEXT, THINK_FILL

CHART_SECONDS = 15
REF_COLOR = (150, 150, 190)
FUND_COLOR = (250, 200, 60)
BID_COLOR, ASK_COLOR = (60, 170, 110), (200, 80, 80)


class History:
    """frame -> (mid, reference, fundamental or None, signal ticks, countdown)."""

    def __init__(self):
        self.points = {}

    def record(self, frame: int, snap: dict | None):
        if snap:
            sig = snap.get("signal") or {}
            self.points[frame] = (snap["mid"], snap["reference"], snap.get("fundamental"),
                                  sig.get("ticks", 0), sig.get("countdown", 0))


def draw(surf, rect: pygame.Rect, snap: dict | None, ctx):
    fonts = ctx.fonts
    if not snap:
        fonts.blit(surf, "market: no snapshot", rect.center, 24, DIM, anchor="center")
        return
    chart = pygame.Rect(rect.x + 8, rect.y + 8, 590, 292)
    book = pygame.Rect(chart.right + 10, rect.y + 8, rect.right - chart.right - 18, 292)
    traders = pygame.Rect(rect.x + 8, chart.bottom + 6, rect.width - 16, rect.bottom - chart.bottom - 10)
    _draw_chart(surf, chart, snap, ctx)
    _draw_book(surf, book, snap, ctx)
    _draw_traders(surf, traders, snap, ctx)


def _draw_chart(surf, r, snap, ctx):
    fonts = ctx.fonts
    pygame.draw.rect(surf, PANEL_BG, r, border_radius=4)
    hz = float(snap.get("tick_hz", 20))
    ts = float(snap.get("tick_size", 0.01))
    now = int(snap["tick"])
    span = int(CHART_SECONDS * hz)
    history = getattr(ctx, "history", None)
    points = history.points if history is not None else {}
    frames = [f for f in range(max(0, now - span), now + 1) if f in points]
    sig_ticks, countdown = (snap.get("signal") or {}).get("ticks", 0), (snap.get("signal") or {}).get("countdown", 0)
    target = snap["reference"] + sig_ticks * ts
    values = [v for f in frames for v in points[f][:3] if v is not None] + [snap["mid"], snap["reference"], target]
    for o in (o for a in snap["agents"].values() for o in a.get("orders", ())):
        values.append(o["price"])
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.1, 5 * ts)
    lo, hi = lo - pad, hi + pad
    plot = pygame.Rect(r.x + 56, r.y + 26, r.width - 120, r.height - 40)

    def y_of(price):
        return int(plot.bottom - (price - lo) / (hi - lo) * plot.height)

    def x_of(frame):
        return int(plot.right - (now - frame) / max(1, span) * plot.width)

    for k in range(5):  # price grid
        price = lo + (hi - lo) * k / 4
        y = y_of(price)
        pygame.draw.line(surf, GRID, (plot.x, y), (plot.right, y))
        fonts.blit(surf, f"{price:.2f}", (plot.x - 4, y), 16, DIM, anchor="midright")
    for series, color, width in ((1, REF_COLOR, 1), (2, FUND_COLOR, 1), (0, TEXT, 2)):
        pts = [(x_of(f), y_of(points[f][series])) for f in frames if points[f][series] is not None]
        if len(pts) > 1:
            pygame.draw.lines(surf, color, False, pts, width)
    # the agents' resting orders at the right edge, in their colours
    for aid, a in snap["agents"].items():
        for o in a.get("orders", ()):
            y = y_of(o["price"])
            c = ctx.colors.get(aid, TEXT)
            pygame.draw.line(surf, c, (plot.right - 30, y), (plot.right + 6, y), 3)
            fonts.blit(surf, f"{aid} {o['side']} {o['size']}", (plot.right + 8, y), 14, c, anchor="midleft")
    # the signal: the announced move of the reference, and how many ticks before it is priced in
    if sig_ticks:
        x = plot.right + 2
        y0, y1 = y_of(snap["reference"]), y_of(target)
        color = GOOD if sig_ticks > 0 else BAD
        pygame.draw.line(surf, color, (x, y0), (x, y1), 4)
        head = 1 if y1 < y0 else -1
        pygame.draw.polygon(surf, color, [(x - 7, y1 + head * 10), (x + 7, y1 + head * 10), (x, y1)])
        fonts.blit(surf, f"signal {sig_ticks:+d} ticks, priced in {countdown / hz:.2f} s",
                   (r.right - 8, r.y + 6), 18, color, anchor="topright")
    else:
        fonts.blit(surf, "signal: none", (r.right - 8, r.y + 6), 18, DIM, anchor="topright")
    t = now / hz
    day = float(snap.get("day_ticks", 0)) / hz
    fonts.blit(surf, f"mid {snap['mid']:.2f}   reference {snap['reference']:.2f}   day {t:5.1f}/{day:.0f} s",
               (r.x + 8, r.y + 6), 18, TEXT)
    legend_y = r.bottom - 14
    x = r.x + 60
    items = [("mid", TEXT), ("makers' reference", REF_COLOR)]
    if snap.get("fundamental") is not None:
        items.append(("fundamental", FUND_COLOR))
    for label, color in items:
        pygame.draw.line(surf, color, (x, legend_y), (x + 18, legend_y), 2)
        x = fonts.blit(surf, label, (x + 22, legend_y), 15, DIM, anchor="midleft").right + 14


def _draw_book(surf, r, snap, ctx):
    fonts = ctx.fonts
    pygame.draw.rect(surf, PANEL_BG, r, border_radius=4)
    fonts.blit(surf, "book (size by price)", (r.x + 8, r.y + 6), 18, TEXT)
    asks = list(snap["book"].get("asks", ()))[:9]
    bids = list(snap["book"].get("bids", ()))[:9]
    ts = float(snap.get("tick_size", 0.01))
    mine = {}
    for aid, a in snap["agents"].items():
        for o in a.get("orders", ()):
            mine.setdefault(round(o["price"] / ts), []).append(aid)
    rows = list(reversed(asks)) + bids
    if not rows:
        return
    row_h = min(14, (r.height - 96) // max(1, len(rows)))
    biggest = max(lv["size"] for lv in rows) or 1
    bar_max = r.width - 130
    y = r.y + 28
    for k, lv in enumerate(rows):
        ask = k < len(asks)
        color = ASK_COLOR if ask else BID_COLOR
        fonts.blit(surf, f"{lv['price']:.2f}", (r.x + 8, y + row_h // 2), 15, color, anchor="midleft")
        w = max(2, int(bar_max * lv["size"] / biggest))
        pygame.draw.rect(surf, color, (r.x + 60, y + 1, w, row_h - 2))
        fonts.blit(surf, str(lv["size"]), (r.x + 64 + w, y + row_h // 2), 14, DIM, anchor="midleft")
        for j, aid in enumerate(mine.get(round(lv["price"] / ts), ())):
            pygame.draw.circle(surf, ctx.colors.get(aid, TEXT), (r.right - 10 - 12 * j, y + row_h // 2), 5)
        y += row_h
        if ask and k == len(asks) - 1:
            pygame.draw.line(surf, DIM, (r.x + 8, y), (r.right - 8, y))
    # the tape: the last trades, + when the buyer took
    y = r.bottom - 62
    fonts.blit(surf, "last trades", (r.x + 8, y), 16, DIM)
    x = r.x + 8
    for tr in snap.get("trades", ())[:5]:
        c = GOOD if tr["size"] > 0 else BAD
        x = fonts.blit(surf, f"{tr['price']:.2f}{'+' if tr['size'] > 0 else '-'}{abs(tr['size'])}",
                       (x, y + 20), 15, c).right + 8
        if x > r.right - 40:
            break


def trader_rects(n: int, r: pygame.Rect) -> list:
    cols = 1 if n <= 3 else 2
    rows = -(-n // cols)
    w, h = r.width // cols, min(64, r.height // max(1, rows))
    return [pygame.Rect(r.x + (k % cols) * w, r.y + (k // cols) * h, w - 6, h - 3) for k in range(n)]


def _draw_traders(surf, r, snap, ctx):
    fonts = ctx.fonts
    agents = list(snap["agents"].items())
    limit = max([abs(a["position"]) for _, a in agents] + [20])
    for cell, (aid, a) in zip(trader_rects(len(agents), r), agents):
        pygame.draw.rect(surf, PANEL_BG, cell, border_radius=4)
        color = ctx.colors.get(aid, TEXT)
        mid_y = cell.centery
        pygame.draw.rect(surf, color, (cell.x + 6, mid_y - 6, 12, 12))
        fonts.blit(surf, aid, (cell.x + 24, mid_y), 20, color, anchor="midleft")
        # position as a bar around zero: long right (green), short left (red)
        bar = pygame.Rect(cell.x + 60, mid_y - 7, 120, 14)
        pygame.draw.rect(surf, GRID, bar)
        pos = a["position"]
        w = int(bar.width / 2 * min(1.0, abs(pos) / limit))
        if pos:
            fill = pygame.Rect(bar.centerx if pos > 0 else bar.centerx - w, bar.y, w, bar.height)
            pygame.draw.rect(surf, GOOD if pos > 0 else BAD, fill)
        pygame.draw.line(surf, TEXT, (bar.centerx, bar.y - 2), (bar.centerx, bar.bottom + 1))
        fonts.blit(surf, f"pos {pos:+d}", (bar.right + 6, mid_y), 17, TEXT, anchor="midleft")
        pnl = a["pnl"]
        fonts.blit(surf, f"PnL {pnl:+.2f}", (bar.right + 70, mid_y), 18, GOOD if pnl >= 0 else BAD, anchor="midleft")
        orders = ", ".join(f"{o['side']} {o['size']}@{o['price']:.2f}" for o in a.get("orders", ())) or "no orders"
        fonts.blit(surf, fonts.fit(orders, cell.right - bar.right - 180, 16), (bar.right + 170, mid_y), 16, DIM,
                   anchor="midleft")
        if aid in ctx.late:  # stood idle this tick while its decision was in flight
            pygame.draw.rect(surf, LATE_RED, cell, width=2, border_radius=4)
            tag = pygame.Rect(0, 0, 40, 16)
            tag.midright = (cell.right - 4, mid_y)
            pygame.draw.rect(surf, LATE_RED, tag, border_radius=3)
            fonts.blit(surf, "LATE", tag.center, 16, (255, 255, 255), anchor="center")
        elif aid in ctx.thinking:
            pygame.draw.circle(surf, THINK_FILL, (cell.right - 14, mid_y), 5)
