"""Drawing the fighter game from env.snapshot(): the stage, both fighters posed by state and
attack phase, projectiles, health bars, round timer and wins, optional hit/hurt boxes."""
from __future__ import annotations

import math

import pygame

from ..drawing import DIM, GRID, HEALTH_GREEN, HEALTH_LOST, LATE_RED, TEXT, THINK_FILL

HUD_H = 92
FLOOR_H = 30
BAR_W, BAR_H, BAR_Y, BAR_MARGIN = 380, 22, 14, 24
PHASE_COLORS = {"startup": (250, 210, 70), "active": (240, 60, 60), "recovery": (150, 150, 175)}
STUN_COLOR = (255, 255, 255)
GUARD_COLOR = (90, 220, 255)
SKY, FLOOR = (26, 29, 44), (58, 50, 44)


def health_bar_rect(index: int, rect: pygame.Rect) -> pygame.Rect:
    """The full health bar of fighter `index` (0 left, 1 right) in the game rect."""
    x = rect.x + BAR_MARGIN if index == 0 else rect.right - BAR_MARGIN - BAR_W
    return pygame.Rect(x, rect.y + BAR_Y, BAR_W, BAR_H)


class _Stage:
    """Game coordinates (x right, y up from the ground, in stage pixels) to the screen."""

    def __init__(self, rect: pygame.Rect, width: float, height: float):
        self.scale = min(rect.width / width, (rect.height - HUD_H - FLOOR_H) / height)
        self.x0 = rect.x + (rect.width - width * self.scale) / 2
        self.ground = rect.bottom - FLOOR_H

    def pt(self, x, y):
        return (int(self.x0 + x * self.scale), int(self.ground - y * self.scale))

    def box(self, b) -> pygame.Rect:
        x0, y0 = self.pt(b[0], b[3])
        x1, y1 = self.pt(b[2], b[1])
        return pygame.Rect(x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def draw(surf, rect: pygame.Rect, snap: dict | None, ctx):
    if not snap:
        ctx.fonts.blit(surf, "fighter: no snapshot", rect.center, 24, DIM, anchor="center")
        return
    stage = _Stage(rect, snap["stage"]["width"], snap["stage"]["height"])
    surf.fill(SKY, rect)
    surf.fill(FLOOR, pygame.Rect(rect.x, stage.ground, rect.width, rect.bottom - stage.ground))
    left, _ = stage.pt(0, 0)
    right, _ = stage.pt(snap["stage"]["width"], 0)
    for wall in (left, right):
        pygame.draw.line(surf, GRID, (wall, rect.y + HUD_H), (wall, stage.ground), 2)
    for gx in range(0, int(snap["stage"]["width"]) + 1, 80):  # floor marks give a sense of speed
        x, _ = stage.pt(gx, 0)
        pygame.draw.line(surf, GRID, (x, stage.ground + 4), (x, stage.ground + 10))
    tick = snap.get("tick", 0)
    for f in snap["fighters"]:
        _draw_fighter(surf, stage, f, ctx, tick)
    for p in snap.get("projectiles", ()):
        _draw_projectile(surf, stage, p, ctx, tick)
    if ctx.hitboxes:
        _draw_boxes(surf, stage, snap)
    _draw_hud(surf, rect, snap, ctx)


def _color_of(ctx, agent_id, fallback=(200, 200, 200)):
    return ctx.colors.get(agent_id, fallback)


def _draw_fighter(surf, stage: _Stage, f: dict, ctx, tick: int):
    aid, state, phase, move = f["id"], f["state"], f["phase"], f["move"]
    color = _color_of(ctx, aid)
    s = stage.scale
    fx, fy = stage.pt(f["x"], f["y"])
    face = 1 if f["facing"] >= 0 else -1
    half = 20 * s
    body_h = (f["hurtbox"][3] - f["hurtbox"][1]) * s if f.get("hurtbox") else 18 * s
    if state in ("hitstun", "knockdown", "ko") and (tick // 3) % 2 == 0 and state != "ko":
        color = STUN_COLOR  # flashing while stunned
    outline = None
    if state in ("knockdown", "ko"):
        body = pygame.Rect(int(fx - 45 * s), int(fy - 16 * s), int(90 * s), int(16 * s))
        pygame.draw.rect(surf, color, body, border_radius=6)
        pygame.draw.circle(surf, color, (int(fx - face * 52 * s), int(fy - 9 * s)), int(9 * s))
        if state == "ko":
            ctx.fonts.blit(surf, "K.O.", (fx, body.y - 8), 30, LATE_RED, anchor="midbottom")
        top = body.y
    else:
        squat = state in ("prejump", "landing")
        h = body_h * (0.8 if squat else 1.0)
        torso = pygame.Rect(int(fx - half * 0.7), int(fy - h * 0.82), int(half * 1.4), int(h * 0.5))
        head_r = int(10 * s)
        head = (int(fx + face * 3 * s), int(torso.y - head_r + 2))
        legs_y = torso.bottom
        # legs: walking alternates, airborne tucks, crouch bends
        step = math.sin(tick * 0.35) * 10 * s if state in ("forward", "back") else 6 * s
        if state == "air":
            knees = [(fx - 8 * s, legs_y + 10 * s), (fx + 8 * s, legs_y + 12 * s)]
            feet = [(fx - 2 * s, legs_y + 20 * s), (fx + 14 * s, legs_y + 18 * s)]
        else:
            knees = [(fx - step, (legs_y + fy) / 2), (fx + step, (legs_y + fy) / 2)]
            feet = [(fx - step * 1.3, fy), (fx + step * 1.3, fy)]
        kicking = state == "attack" and move in ("kick", "sweep")  # the front leg is the attack
        for side, (k, ft) in zip((-1, 1), zip(knees, feet)):
            if not (kicking and side == face):
                pygame.draw.lines(surf, color, False, [(fx, legs_y), k, ft], max(3, int(6 * s)))
        pygame.draw.rect(surf, color, torso, border_radius=5)
        pygame.draw.circle(surf, color, head, head_r)
        pygame.draw.circle(surf, (20, 20, 20), (head[0] + face * int(5 * s), head[1] - 2), max(2, int(2 * s)))
        shoulder = (int(fx + face * half * 0.4), int(torso.y + 6 * s))
        _draw_arms_and_attack(surf, stage, f, ctx, shoulder, face, color, torso)
        if state in ("block", "lowblock", "blockstun") or f.get("guard") in ("high", "low"):
            guard = f.get("guard") or ("low" if state == "lowblock" else "high")
            y0, y1 = (torso.y - 8 * s, torso.bottom) if guard == "high" else (torso.centery, fy)
            shield = pygame.Rect(int(fx + face * half * 1.1 - 5 * s), int(y0), int(10 * s), int(y1 - y0))
            pygame.draw.rect(surf, GUARD_COLOR, shield, border_radius=4)
        if phase in PHASE_COLORS:
            outline = PHASE_COLORS[phase]
            pygame.draw.rect(surf, outline, torso.inflate(6, 6), width=2, border_radius=6)
        top = head[1] - head_r
    # what the fighter is doing, in words: the pose's state and attack phase
    if state == "attack":
        label, lcolor = f"{move} {phase} {f.get('phase_left', 0)}f", PHASE_COLORS.get(phase, TEXT)
    elif state in ("hitstun", "blockstun", "knockdown", "prejump", "landing"):
        label, lcolor = f"{state} {f.get('busy', 0)}f", (STUN_COLOR if "stun" in state else DIM)
    else:
        label, lcolor = state, DIM
    ctx.fonts.blit(surf, label, (fx, top - 6), 20, lcolor, anchor="midbottom")
    if aid in ctx.late:
        # late this frame: the agent's character stood idle (late policy) while it thought
        box = pygame.Rect(int(fx - half * 1.4), int(top - 4), int(half * 2.8), int(fy - top + 8))
        pygame.draw.rect(surf, LATE_RED, box, width=3, border_radius=6)
        tag = pygame.Rect(0, 0, 46, 18)
        tag.midbottom = (fx, top - 26)
        pygame.draw.rect(surf, LATE_RED, tag, border_radius=3)
        ctx.fonts.blit(surf, "LATE", tag.center, 18, (255, 255, 255), anchor="center")
    elif aid in ctx.thinking:
        # a thought bubble while a decision is in flight (and the last one did land)
        cx, cy = int(fx + face * 30 * s), int(top - 30)
        pygame.draw.ellipse(surf, THINK_FILL, (cx - 20, cy - 10, 40, 20), width=2)
        for k in range((tick // 8) % 3 + 1):
            pygame.draw.circle(surf, THINK_FILL, (cx - 10 + 10 * k, cy), 3)


def _draw_arms_and_attack(surf, stage, f, ctx, shoulder, face, color, torso):
    s = stage.scale
    state, phase, move = f["state"], f["phase"], f["move"]
    sx, sy = shoulder
    width = max(3, int(6 * s))
    if state != "attack":
        if state in ("block", "lowblock", "blockstun"):  # forearms up in front
            pygame.draw.lines(surf, color, False, [(sx, sy), (sx + face * 14 * s, sy + 4 * s),
                                                  (sx + face * 16 * s, sy - 10 * s)], width)
        elif state == "hitstun":  # thrown back
            pygame.draw.line(surf, color, (sx, sy), (sx - face * 18 * s, sy - 12 * s), width)
        else:
            pygame.draw.lines(surf, color, False, [(sx, sy), (sx + face * 10 * s, sy + 12 * s),
                                                  (sx + face * 18 * s, sy + 2 * s)], width)
        return
    hb = f.get("hitbox")
    pc = PHASE_COLORS.get(phase, color)
    if move == "fireball":
        reach = {"startup": -6, "active": 26, "recovery": 20}.get(phase, 10) * s
        for dy in (0, 8 * s):
            pygame.draw.line(surf, color, (sx, sy + dy), (sx + face * reach, sy + dy), width)
        if phase == "startup":  # charging
            pygame.draw.circle(surf, pc, (int(sx - face * 10 * s), int(sy + 4 * s)), int(6 * s))
        return
    # the limb: retracted in startup, extended to the hitbox when active, half out in recovery
    full = {"jab": 40, "kick": 60, "sweep": 72}.get(move, 40)
    out = {"startup": 0.15, "active": 1.0, "recovery": 0.5}.get(phase, 0.3) * full * s
    if move == "jab":
        start, y = (sx, sy), sy + 4 * s
    elif move == "kick":
        start, y = (int(f["x"] * s + stage.x0), torso.bottom), torso.y
    else:  # sweep: low, from the hip along the floor
        _, ground = stage.pt(f["x"], f["y"])
        start, y = (int(stage.x0 + f["x"] * s), torso.bottom), ground - 6 * s
    end = (int(sx + face * (20 * s + out)), int(y))
    if hb and phase == "active":
        box = stage.box(hb)
        end = (box.right if face > 0 else box.left, box.centery)
    pygame.draw.line(surf, color, start, end, width + 2)
    pygame.draw.circle(surf, pc, end, max(4, int(7 * s)))
    # the other arm guards the face
    pygame.draw.line(surf, color, (sx, sy), (sx + face * 8 * s, sy - 6 * s), width)


def _draw_projectile(surf, stage, p, ctx, tick):
    box = stage.box(p["box"])
    color = _color_of(ctx, p.get("owner"), (255, 140, 30))
    glow = (255, 170, 60)
    pygame.draw.ellipse(surf, glow, box.inflate(6 + 2 * (tick % 4), 6))
    pygame.draw.ellipse(surf, color, box)
    tail = -1 if p.get("vx", 0) > 0 else 1
    for k in range(1, 4):  # a trail behind it
        r = max(2, box.height // 2 - 3 * k)
        pygame.draw.circle(surf, glow, (box.centerx + tail * (box.width // 2 + 9 * k), box.centery), r)


def _draw_boxes(surf, stage, snap):
    for f in snap["fighters"]:
        if f.get("hurtbox"):
            pygame.draw.rect(surf, (80, 240, 120), stage.box(f["hurtbox"]), width=2)
        if f.get("hitbox"):
            box = stage.box(f["hitbox"])
            layer = pygame.Surface(box.size, pygame.SRCALPHA)
            layer.fill((255, 40, 40, 110))
            surf.blit(layer, box.topleft)
            pygame.draw.rect(surf, (255, 60, 60), box, width=2)
    for p in snap.get("projectiles", ()):
        pygame.draw.rect(surf, (255, 60, 60), stage.box(p["box"]), width=2)


def _draw_hud(surf, rect, snap, ctx):
    fonts = ctx.fonts
    for i, f in enumerate(snap["fighters"][:2]):
        bar = health_bar_rect(i, rect)
        frac = max(0.0, min(1.0, f["health"] / float(f.get("max_health") or 100)))
        pygame.draw.rect(surf, HEALTH_LOST, bar)
        filled = bar.copy()
        filled.width = int(round(bar.width * frac))
        if i == 0:  # both bars drain from the outside in, toward the timer
            filled.right = bar.right
        if filled.width:
            pygame.draw.rect(surf, HEALTH_GREEN, filled)
        pygame.draw.rect(surf, TEXT, bar, width=2)
        color = _color_of(ctx, f["id"])
        name_pos = (bar.x, bar.bottom + 4) if i == 0 else (bar.right, bar.bottom + 4)
        anchor = "topleft" if i == 0 else "topright"
        fonts.blit(surf, f"{f['id']}  {f['health']}/{f.get('max_health', 100)}", name_pos, 20, color,
                   anchor=anchor)
        for k in range(int(f.get("rounds_won", 0))):  # round wins as pips next to the timer
            cx = bar.right - 10 - 18 * k if i == 0 else bar.x + 10 + 18 * k
            pygame.draw.circle(surf, THINK_FILL, (cx, bar.bottom + 30), 6)
    left = snap.get("round_ticks_left", 0)
    secs = math.ceil(left / float(snap.get("tick_hz", 60)))
    timer = pygame.Rect(0, 0, 84, 42)
    timer.midtop = (rect.centerx, rect.y + 8)
    pygame.draw.rect(surf, (12, 12, 18), timer, border_radius=6)
    pygame.draw.rect(surf, TEXT, timer, width=2, border_radius=6)
    fonts.blit(surf, f"{secs:02d}", timer.center, 40, LATE_RED if secs <= 5 else TEXT, anchor="center")
    fonts.blit(surf, f"round {snap.get('round', 1)}/{snap.get('rounds', 1)}", (rect.centerx, timer.bottom + 4),
               18, DIM, anchor="midtop")
