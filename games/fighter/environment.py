"""fighter: a real-time 2-player fighting game (Street Fighter spirit) as a PettingZoo ParallelEnv.

Two fighters ("p0", "p1") on a flat stage, 60 ticks per second of game time. Each tick both
agents send one input; ``step`` advances the world by one frame. Walk, jump, crouch, block
(high or low), three normal attacks and a fireball, each with frame data (``MOVES``).

Timing rules (what reaction time buys you)
------------------------------------------
* An attack pressed in step p occupies steps p .. p+total-1; its hitbox is out on frames
  startup+1 .. startup+active, so a jab (startup 4) hits in step p+4.
* The observation after step p already shows the attack in its startup. A defender whose
  block lands ``L`` frames after that observation blocks it iff ``L <= startup - 1``: at 0 ms a
  bot blocks everything; at 150 ms (9 frames) only the sweep (startup 14) and fireballs.
* Every normal is safe or minus on block: jab 0, kick -6 (jab punishes), sweep -11 (kick
  punishes). So a fast defender turns each attack it sees into damage for itself.
* Guard: "block" (or walking back) guards high, "lowblock" guards low. Jab and fireball are
  mid (either guard), kick is an overhead (high guard only), sweep is low (low guard only).
* Movement inputs (forward, back, crouch, block, lowblock) are held for ``HOLD_FRAMES`` frames
  unless another input replaces them; "wait" (action 0) sends nothing new. An agent that
  decides a few times a second therefore still walks and guards; one that stops deciding
  stands idle within 0.2 s (the paper's "while it thinks, the character stands still").
* Presses (jump, leap, attacks) made while busy are buffered for ``BUFFER_FRAMES`` frames.
* Fighters cannot pass each other (no cross-ups): p0 starts left, p1 right.

Observation (own fighter first, mirrored so that the observer always faces +x; see
``OBS_FIELDS`` and ``decode``): per fighter x, y, vx, vy, health, state, move, phase, frame,
phase_left, busy, guard, airborne, crouching, faces_opponent, rounds won; then gap, time left,
round, and both projectiles. Positions and velocities are scaled to about [-1, 1] (x / 640,
y / 100, v / 10), time left is seconds / 30; frame counters are raw frames. ``action_mask``
masks the fireball while one's own is being thrown or on screen.

Rewards per tick: (damage dealt - damage taken) / MAX_HEALTH, plus +1 / -1 for a round won /
lost. Rounds end on KO or time (``round_ticks``, default 1800 = 30 s); ``rounds`` is best-of-N.
"""
from __future__ import annotations

import hashlib

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from ...errors import UserError
from .._base import ArenaEnv, aec_forms
from .rules import *  # noqa: F401,F403  (the rules are part of this module's API)
from .rules import (  # the names this module uses itself
    ACTIONABLE, ACTIONS, ACTIVE, AIR, AIR_FRAMES, AIR_H, ATTACK, BLOCK, BLOCKSTUN, BODY_W, BUFFER_FRAMES, CROUCH,
    CROUCH_H, FIREBALL, FIREBALL_SPEED, FIREBALL_W, FIREBALL_Y0, FIREBALL_Y1, F_HIGH, F_LOW, GRAVITY, GUARDS,
    GUARD_HIGH, GUARD_LOW, G_HIGH, G_LOW, HALF_W, HITSTUN, HOLD_FRAMES, HOLD_GUARD, HOLD_STATE, IDLE, JUMP, JUMP_VY,
    KNOCKDOWN, KNOCKDOWN_FRAMES, KO, LANDING, LANDING_FRAMES, LEAP, LEAP_VX, LOWBLOCK, MAX_HEALTH, MOVES, MOVE_NAMES,
    MOVE_OF_ACTION, MOVE_T, Move, NO_GUARD, NO_PHASE, OBS_FIELDS, OBS_INDEX, PHASES, PREJUMP, PREJUMP_FRAMES,
    RECOVERY, STAGE_W, STAND_H, STARTUP, STATES, TIME_SCALE, WALK_BACK, WALK_BACK_S, WALK_FWD, WALK_FWD_S,
    action_names, decode, describe, urgency)


class _Fighter:
    __slots__ = ("x", "y", "vx", "vy", "health", "facing", "state", "move", "frame", "left",
                 "bs_guard", "hold", "hold_left", "buf", "buf_left", "hit_done", "leap", "wins",
                 "dealt", "taken", "hits", "blocked", "landed_blocked", "attacks")

    def __init__(self, x: float, facing: int):
        self.x, self.y, self.vx, self.vy = float(x), 0.0, 0.0, 0.0
        self.health, self.facing, self.state, self.move = MAX_HEALTH, facing, IDLE, 0
        self.frame = self.left = self.hold = self.hold_left = self.buf = self.buf_left = 0
        self.bs_guard, self.hit_done, self.leap = NO_GUARD, False, False
        self.wins = self.dealt = self.taken = self.hits = self.blocked = self.landed_blocked = self.attacks = 0

    def phase(self) -> int:
        if self.state != ATTACK:
            return NO_PHASE
        s, a, _, _ = MOVE_T[self.move]
        return STARTUP if self.frame <= s else ACTIVE if self.frame <= s + a else RECOVERY

    def phase_left(self) -> int:
        """Frames still to come in the current attack phase, or in the current timed state."""
        st = self.state
        if st == ATTACK:
            s, a, total, _ = MOVE_T[self.move]
            f = self.frame
            return s - f if f <= s else s + a - f if f <= s + a else total - f
        if st == AIR:
            return max(0, AIR_FRAMES - self.frame)
        return self.left

    def busy(self) -> int:
        """Upcoming steps in which this fighter cannot act (0 = it may act next step)."""
        st = self.state
        if st in ACTIONABLE:
            return 0
        if st == ATTACK:
            return MOVE_T[self.move][2] - self.frame
        if st == AIR:
            return max(0, AIR_FRAMES - self.frame) + LANDING_FRAMES
        if st == PREJUMP:
            return self.left + AIR_FRAMES + LANDING_FRAMES
        return self.left if st != KO else 255

    def guard(self) -> int:
        st = self.state
        if st == BLOCK or st == WALK_BACK_S:
            return GUARD_HIGH
        if st == LOWBLOCK:
            return GUARD_LOW
        if st == BLOCKSTUN:
            return self.bs_guard
        return NO_GUARD

    def crouching(self) -> bool:
        st = self.state
        return (st == CROUCH or st == LOWBLOCK or (st == BLOCKSTUN and self.bs_guard == GUARD_LOW)
                or (st == ATTACK and self.move == 3))

    def hurtbox(self):
        """(x0, y0, x1, y1) or None while knocked down (invulnerable)."""
        st = self.state
        if st == KNOCKDOWN or st == KO:
            return None
        h = AIR_H if self.y > 0 else CROUCH_H if self.crouching() else STAND_H
        return (self.x - HALF_W, self.y, self.x + HALF_W, self.y + h)

    def hitbox(self):
        if self.state != ATTACK or self.move == 4 or self.phase() != ACTIVE:
            return None
        m = MOVES[self.move]
        front = self.x + self.facing * HALF_W
        x0, x1 = (front, front + m.reach) if self.facing > 0 else (front - m.reach, front)
        return (x0, self.y + m.y0, x1, self.y + m.y1)


class _Projectile:
    __slots__ = ("owner", "x", "vx")

    def __init__(self, owner: int, x: float, vx: float):
        self.owner, self.x, self.vx = owner, x, vx


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class FighterEnv(ArenaEnv):
    metadata = {"name": "fighter_v0", "render_modes": ["ansi", "rgb_array"], "render_fps": 60,
                "is_parallelizable": True, "tick_hz": 60}

    def __init__(self, render_mode: str | None = None, round_ticks: int = 1800, rounds: int = 1,
                 damage_scale: float = 1.0, start_gap: tuple[int, int] = (140, 240)):
        if render_mode is not None and render_mode not in self.metadata["render_modes"] + ["human"]:
            raise UserError(f"fighter: render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        if int(round_ticks) < 1 or int(rounds) < 1:
            raise UserError(f"fighter: round_ticks and rounds must be >= 1, got {round_ticks} and {rounds}")
        if not 0 <= int(start_gap[0]) <= int(start_gap[1]) <= STAGE_W - 2 * BODY_W - 80:
            raise UserError(f"fighter: start_gap must be (low, high) with 0 <= low <= high <= "
                            f"{STAGE_W - 2 * BODY_W - 80}, got {start_gap}")
        self.render_mode = render_mode
        self.round_ticks, self.rounds = int(round_ticks), int(rounds)
        self.wins_needed = self.rounds // 2 + 1
        self.damage_scale = float(damage_scale) / MAX_HEALTH
        self.start_gap = (int(start_gap[0]), int(start_gap[1]))
        self.possible_agents = ["p0", "p1"]
        self.agents = []
        g_high = list(G_HIGH)
        g_high[1] = max(1.0, self.round_ticks / TIME_SCALE)
        self._obs_space = spaces.Dict({
            "observation": spaces.Box(np.array(F_LOW * 2 + G_LOW, np.float32),
                                      np.array(F_HIGH * 2 + g_high, np.float32), dtype=np.float32),
            "action_mask": spaces.Box(0, 1, (len(ACTIONS),), dtype=np.int8)})
        self._act_space = spaces.Discrete(len(ACTIONS))
        self._masks = []
        for fireball_ok in (False, True):
            m = np.ones(len(ACTIONS), np.int8)
            m[FIREBALL] = int(fireball_ok)
            m.flags.writeable = False
            self._masks.append(m)
        self.np_random, _ = seeding.np_random(None)
        self._reset_state()

    # -- PettingZoo API ------------------------------------------------------------------------
    # one space object per env, the same for every call and agent (PettingZoo requires the same
    # object; an lru_cache on the method would keep every env alive)
    def observation_space(self, agent):
        return self._obs_space

    def action_space(self, agent):
        return self._act_space

    urgency = staticmethod(urgency)     # info["urgency"] of each step (rules.urgency)

    def reset(self, seed=None, options=None):
        if seed is not None or not hasattr(self, "_seeded"):
            self.np_random, _ = seeding.np_random(seed)
            self._seeded = True
        self._reset_state()
        self.agents = self.possible_agents[:]
        self._start_round()
        obs = self._observations()
        return obs, self._infos(obs)

    def step(self, actions):
        if not self.agents:
            raise RuntimeError("step() called on a finished match; call reset()")
        f0, f1 = self._f
        a0, a1 = actions.get("p0", 0), actions.get("p1", 0)
        n = len(ACTIONS)
        if not (0 <= a0 < n and 0 <= a1 < n):
            raise ValueError(f"actions must be in 0..{n - 1}, got {actions}")
        h0, h1 = f0.health, f1.health
        self._tick_fighter(f0, f1, int(a0), 0)
        self._tick_fighter(f1, f0, int(a1), 1)
        self._physics()
        self._resolve_hits()
        self.tick += 1
        self.round_left -= 1
        d0, d1 = h0 - f0.health, h1 - f1.health     # damage taken this tick
        r0 = (d1 - d0) * self.damage_scale
        rewards = {"p0": r0, "p1": -r0}
        done = False
        if f0.health <= 0 or f1.health <= 0 or self.round_left <= 0:
            winner = self._end_round()
            if winner is not None:
                rewards[self.possible_agents[winner]] += 1.0
                rewards[self.possible_agents[1 - winner]] -= 1.0
            done = self._match_over()
            if not done:
                self._start_round()
        return self._step_result(rewards, done)

    # -- hooks the scheduler, replays and the viewer use ---------------------------------------
    def match_outcome(self) -> dict:
        wins = [f.wins for f in self._f]
        winner = None if wins[0] == wins[1] else self.possible_agents[int(wins[1] > wins[0])]
        metrics = {}
        for i, a in enumerate(self.possible_agents):
            f = self._f[i]
            metrics[a] = {"rounds_won": f.wins, "health": f.health, "damage_dealt": f.dealt,
                          "damage_taken": f.taken, "hits": f.hits, "blocked": f.blocked,
                          "attacks": f.attacks, "attacks_blocked": f.landed_blocked}
        return {"winner": winner, "metrics": metrics, "rounds_played": self.round_no,
                "ticks": self.tick}

    def state_digest(self) -> str:
        state = (self.tick, self.round_no, self.round_left, self.draws,
                 tuple(tuple(getattr(f, s) for s in _Fighter.__slots__) for f in self._f),
                 tuple((p.owner, p.x, p.vx) for p in self._proj if p is not None))
        return hashlib.sha1(repr(state).encode()).hexdigest()

    def snapshot(self) -> dict:
        fighters = []
        for i, f in enumerate(self._f):
            hb, ub = f.hitbox(), f.hurtbox()
            fighters.append({
                "id": self.possible_agents[i], "x": f.x, "y": f.y, "vx": f.vx, "vy": f.vy,
                "health": f.health, "max_health": MAX_HEALTH, "state": STATES[f.state],
                "move": MOVE_NAMES[f.move] if f.state == ATTACK else "none",
                "phase": PHASES[f.phase()], "frame": f.frame if f.state in (ATTACK, AIR) else 0,
                "phase_left": f.phase_left(), "busy": f.busy(), "facing": f.facing,
                "guard": GUARDS[f.guard()], "rounds_won": f.wins,
                "hurtbox": list(ub) if ub else None, "hitbox": list(hb) if hb else None})
        projectiles = [{"owner": self.possible_agents[p.owner], "x": p.x, "vx": p.vx,
                        "box": [p.x - FIREBALL_W / 2, FIREBALL_Y0, p.x + FIREBALL_W / 2, FIREBALL_Y1]}
                       for p in self._proj if p is not None]
        return {"game": "fighter", "tick": self.tick, "tick_hz": 60, "round": self.round_no,
                "rounds": self.rounds, "round_ticks_left": self.round_left,
                "round_ticks": self.round_ticks, "stage": {"width": STAGE_W, "height": 160},
                "fighters": fighters, "projectiles": projectiles}

    # -- simulation ----------------------------------------------------------------------------
    def _reset_state(self):
        self._f = [_Fighter(STAGE_W / 2 - 100, 1), _Fighter(STAGE_W / 2 + 100, -1)]
        self._proj = [None, None]
        self.tick = self.round_no = self.draws = 0
        self.round_left = self.round_ticks

    def _start_round(self):
        lo, hi = self.start_gap
        gap = lo + int(self.np_random.integers(0, hi - lo + 1)) if hi > lo else lo
        shift = int(self.np_random.integers(-40, 41))
        centre = STAGE_W / 2 + shift
        for i, f in enumerate(self._f):
            side = -1 if i == 0 else 1
            keep = (f.wins, f.dealt, f.taken, f.hits, f.blocked, f.landed_blocked, f.attacks)
            f.__init__(centre + side * (gap / 2 + HALF_W), -side)
            f.wins, f.dealt, f.taken, f.hits, f.blocked, f.landed_blocked, f.attacks = keep
        self._proj = [None, None]
        self.round_no += 1
        self.round_left = self.round_ticks

    def _end_round(self):
        f0, f1 = self._f
        if f0.health != f1.health:
            w = 0 if f0.health > f1.health else 1
            self._f[w].wins += 1
            return w
        self.draws += 1
        return None

    def _match_over(self) -> bool:
        played = self._f[0].wins + self._f[1].wins + self.draws
        return max(self._f[0].wins, self._f[1].wins) >= self.wins_needed or played >= self.rounds

    def _tick_fighter(self, f: _Fighter, o: _Fighter, a: int, idx: int):
        # 1. the input: holds replace holds, presses go to a short buffer
        if a:
            if a in HOLD_STATE:
                f.hold, f.hold_left = a, HOLD_FRAMES
                if f.state == BLOCKSTUN and a in HOLD_GUARD:
                    f.bs_guard = HOLD_GUARD[a]     # switching guard during blockstun is allowed
            elif a != FIREBALL or self._proj[idx] is None:
                f.buf, f.buf_left, f.hold, f.hold_left = a, BUFFER_FRAMES, 0, 0
        # 2. timers of committed states
        st = f.state
        if st == ATTACK:
            f.frame += 1
            if f.frame > MOVE_T[f.move][2]:
                st = f.state = IDLE
                f.move = f.frame = 0
        elif st == AIR:
            f.frame += 1
        elif st in (HITSTUN, BLOCKSTUN, KNOCKDOWN, PREJUMP, LANDING):
            if f.left > 0:
                f.left -= 1
            elif st == PREJUMP:
                st = f.state = AIR
                f.vy, f.frame = JUMP_VY, 1
                f.vx = f.facing * LEAP_VX if f.leap else 0.0
            elif f.y <= 0:
                st = f.state = IDLE
                f.vx = 0.0
        # 3. an actionable fighter faces the opponent and does what its input says
        if st in ACTIONABLE:
            if f.y <= 0 and o.x != f.x:
                f.facing = 1 if o.x > f.x else -1
            b = f.buf
            if b:
                f.buf = f.buf_left = 0
                if b == JUMP or b == LEAP:
                    f.state, f.left, f.vx, f.frame, f.leap = PREJUMP, PREJUMP_FRAMES - 1, 0.0, 0, b == LEAP
                elif b != FIREBALL or self._proj[idx] is None:
                    f.state, f.move, f.frame, f.hit_done, f.vx = ATTACK, MOVE_OF_ACTION[b], 1, False, 0.0
                    f.attacks += 1
            elif f.hold_left > 0:
                hs = HOLD_STATE[f.hold]
                f.state = hs
                f.vx = f.facing * WALK_FWD if hs == WALK_FWD_S else -f.facing * WALK_BACK if hs == WALK_BACK_S else 0.0
            else:
                f.state, f.vx = IDLE, 0.0
        if f.hold_left > 0:
            f.hold_left -= 1
        if f.buf_left > 0:
            f.buf_left -= 1
            if f.buf_left == 0:
                f.buf = 0

    def _physics(self):
        for f in self._f:
            if f.vx:
                f.x += f.vx
            if f.y > 0 or f.vy > 0:
                f.y += f.vy
                f.vy -= GRAVITY
                if f.y <= 0:
                    f.y, f.vy = 0.0, 0.0
                    if f.state == AIR:
                        f.state, f.left, f.vx, f.frame = LANDING, LANDING_FRAMES, 0.0, 0
                    elif f.state == KNOCKDOWN:
                        f.vx = 0.0
            if f.x < HALF_W:
                f.x = float(HALF_W)
            elif f.x > STAGE_W - HALF_W:
                f.x = float(STAGE_W - HALF_W)
        f0, f1 = self._f
        overlap = BODY_W - (f1.x - f0.x)     # p0 is always left of p1
        if overlap > 0:
            self._separate(f0, f1, overlap)

    @staticmethod
    def _separate(f0, f1, overlap):
        half = overlap / 2
        f0.x -= half
        f1.x += half
        if f0.x < HALF_W:
            f1.x += HALF_W - f0.x
            f0.x = float(HALF_W)
        elif f1.x > STAGE_W - HALF_W:
            f0.x -= f1.x - (STAGE_W - HALF_W)
            f1.x = float(STAGE_W - HALF_W)

    def _resolve_hits(self):
        f = self._f
        pending = []
        for i in (0, 1):
            a = f[i]
            if a.state != ATTACK or a.hit_done:
                continue
            s, act, _, _ = MOVE_T[a.move]
            if not (s < a.frame <= s + act):
                continue
            if a.move == 4:                           # fireball: spawn the projectile
                a.hit_done = True
                if self._proj[i] is None:
                    front = a.x + a.facing * (HALF_W + FIREBALL_W / 2)
                    self._proj[i] = _Projectile(i, front, a.facing * FIREBALL_SPEED)
                continue
            hurt = f[1 - i].hurtbox()
            if hurt is not None and _overlap(a.hitbox(), hurt):
                a.hit_done = True
                pending.append((i, MOVES[a.move], -a.facing))
        p0, p1 = self._proj
        for p in (p0, p1):
            if p is not None:
                p.x += p.vx
        if p0 is not None and p1 is not None and abs(p0.x - p1.x) < FIREBALL_W:
            self._proj = [None, None]                  # fireballs cancel out
        for i in (0, 1):
            p = self._proj[i]
            if p is None:
                continue
            if p.x < -FIREBALL_W or p.x > STAGE_W + FIREBALL_W:
                self._proj[i] = None
                continue
            hurt = f[1 - i].hurtbox()
            box = (p.x - FIREBALL_W / 2, FIREBALL_Y0, p.x + FIREBALL_W / 2, FIREBALL_Y1)
            if hurt is not None and _overlap(box, hurt):
                self._proj[i] = None
                pending.append((i, MOVES[4], -1 if p.vx > 0 else 1))
        for i, move, from_dir in pending:            # simultaneous: trades hit both
            self._apply_hit(f[i], f[1 - i], move, from_dir)

    def _apply_hit(self, att: _Fighter, dfn: _Fighter, m: Move, from_dir: int):
        """from_dir: the side (+1 right / -1 left) the blow comes from, seen from the defender."""
        g = dfn.guard()
        blocked = (g != NO_GUARD and dfn.y <= 0 and dfn.facing == from_dir
                   and (m.level == "mid" or (m.level == "high") == (g == GUARD_HIGH)))
        if blocked:
            dmg = m.chip
            dfn.state, dfn.left, dfn.bs_guard = BLOCKSTUN, m.blockstun, g
            dfn.blocked += 1
            att.landed_blocked += 1
        else:
            dmg = m.damage
            airborne = dfn.y > 0
            if m.knockdown or airborne:
                dfn.state, dfn.left = KNOCKDOWN, KNOCKDOWN_FRAMES
                dfn.vx = -from_dir * 2.0 if airborne else 0.0
            else:
                dfn.state, dfn.left, dfn.vx = HITSTUN, m.hitstun, 0.0
            dfn.move = dfn.frame = 0
            dfn.buf = dfn.buf_left = 0
            att.hits += 1
        if dfn.state != KNOCKDOWN or dfn.y <= 0:
            dfn.vx = 0.0
        dmg = min(dmg, dfn.health)
        dfn.health -= dmg
        dfn.taken += dmg
        att.dealt += dmg
        if dfn.health <= 0:
            dfn.state, dfn.left = KO, 0
        # pushback: the defender slides away; against a wall the attacker is pushed instead
        target = dfn.x - from_dir * m.push
        clamped = min(max(target, HALF_W), STAGE_W - HALF_W)
        dfn.x = clamped
        if clamped != target and m.name != "fireball":
            att.x = min(max(att.x + from_dir * abs(target - clamped), HALF_W), STAGE_W - HALF_W)

    # -- observations --------------------------------------------------------------------------
    def _fighter_obs(self, f: _Fighter, o: _Fighter, mirror: bool, out: list):
        x, vx = (STAGE_W - f.x, -f.vx) if mirror else (f.x, f.vx)
        st = f.state
        faces = 1.0 if (o.x - f.x) * f.facing > 0 else 0.0
        out += (x / STAGE_W, f.y / 100.0, vx / 10.0, f.vy / 10.0, f.health / MAX_HEALTH, float(st),
                float(f.move if st == ATTACK else 0), float(f.phase()),
                float(min(f.frame if (st == ATTACK or st == AIR) else 0, 255)),
                float(min(f.phase_left(), 255)), float(min(f.busy(), 255)), float(f.guard()),
                1.0 if f.y > 0 else 0.0, 1.0 if f.crouching() else 0.0, faces, f.wins / self.wins_needed)

    def _obs_for(self, i: int):
        f, o = self._f[i], self._f[1 - i]
        mirror = f.facing < 0
        out: list = []
        self._fighter_obs(f, o, mirror, out)
        self._fighter_obs(o, f, mirror, out)
        gap = max(0.0, abs(o.x - f.x) - BODY_W)
        out += (gap / STAGE_W, self.round_left / TIME_SCALE, (self.round_no - 1) / self.rounds)
        for j in (i, 1 - i):
            p = self._proj[j]
            if p is None:
                out += (0.0, 0.0, 0.0)
            else:
                px, pvx = (STAGE_W - p.x, -p.vx) if mirror else (p.x, p.vx)
                out += (1.0, min(max(px / STAGE_W, -0.1), 1.1), pvx / 10.0)
        p = self._proj[1 - i]
        if p is None:
            out.append(0.0)
        else:   # distance from the fireball's front to my body, along its travel direction
            d = (f.x - HALF_W) - (p.x + FIREBALL_W / 2) if p.vx > 0 else (p.x - FIREBALL_W / 2) - (f.x + HALF_W)
            out.append(min(max(d / STAGE_W, -1.2), 1.2))
        return {"observation": np.array(out, dtype=np.float32),
                "action_mask": self._masks[self._proj[i] is None and not (f.state == ATTACK and f.move == 4)]}

    def _observations(self):
        return {a: self._obs_for(i) for i, a in enumerate(self.possible_agents) if a in self.agents}

    # -- rendering -----------------------------------------------------------------------------
    def _render_ansi(self) -> str:
        cols = 64
        line = [" "] * cols
        for p in self._proj:
            if p is not None:
                line[min(cols - 1, max(0, int(p.x / STAGE_W * cols)))] = "*"
        for i, f in enumerate(self._f):
            line[min(cols - 1, max(0, int(f.x / STAGE_W * cols)))] = str(i)
        parts = [f"t={self.tick} round {self.round_no} ({self.round_left / 60:.1f}s left) |{''.join(line)}|"]
        for i, f in enumerate(self._f):
            move = f" {MOVE_NAMES[f.move]}/{PHASES[f.phase()]}" if f.state == ATTACK else ""
            parts.append(f"p{i}: hp {f.health:3d} {STATES[f.state]}{move} x={f.x:.0f} y={f.y:.0f} wins={f.wins}")
        return "\n".join(parts)

    def _render_rgb(self) -> np.ndarray:
        h, w, ground = 240, STAGE_W, 210
        img = np.empty((h, w, 3), np.uint8)
        img[:] = (24, 26, 38)
        img[ground:] = (60, 52, 44)

        def rect(x0, y0, x1, y1, colour):   # game coordinates: y up from the ground
            c0, c1 = max(0, int(x0)), min(w, int(x1))
            r0, r1 = max(0, ground - int(y1)), min(h, ground - int(y0))
            if c1 > c0 and r1 > r0:
                img[r0:r1, c0:c1] = colour

        colours = ((70, 130, 230), (220, 70, 70))
        for i, f in enumerate(self._f):
            box = f.hurtbox() or (f.x - 45, 0, f.x + 45, 18)
            c = colours[i]
            if f.state == HITSTUN or f.state == KNOCKDOWN:
                c = (250, 250, 250)
            elif f.state == BLOCKSTUN or f.guard() != NO_GUARD:
                c = tuple(v // 2 + 60 for v in c)
            rect(*box, c)
            eye = f.x + f.facing * (HALF_W - 6)
            rect(eye - 3, box[3] - 14, eye + 3, box[3] - 8, (255, 255, 255))
            hb = f.hitbox()
            if hb:
                rect(*hb, (250, 220, 60))
            # health bar
            frac = f.health / MAX_HEALTH
            x0 = 20 if i == 0 else w - 20 - 260
            img[10:22, x0:x0 + 260] = (80, 20, 20)
            filled = int(260 * frac)
            if i == 0:
                img[10:22, x0 + 260 - filled:x0 + 260] = (240, 200, 40)
            else:
                img[10:22, x0:x0 + filled] = (240, 200, 40)
            for k in range(f.wins):
                cx = (x0 + 250 - 14 * k) if i == 0 else (x0 + 10 + 14 * k)
                img[26:34, cx - 4:cx + 4] = (250, 250, 250)
        for p in self._proj:
            if p is not None:
                rect(p.x - FIREBALL_W / 2, FIREBALL_Y0, p.x + FIREBALL_W / 2, FIREBALL_Y1, (255, 140, 30))
        half = int(40 * self.round_left / self.round_ticks)     # round timer under the centre
        img[10:22, w // 2 - 40:w // 2 + 40] = (40, 40, 60)
        img[10:22, w // 2 - half:w // 2 + half] = (200, 200, 200)
        return img


def parallel_env(**kwargs) -> FighterEnv:
    return FighterEnv(**kwargs)


raw_env, env = aec_forms(FighterEnv)


__all__ = ["FighterEnv", "parallel_env", "env", "raw_env", "describe", "action_names", "decode",
           "MOVES", "ACTIONS", "STATES", "PHASES", "OBS_FIELDS", "OBS_INDEX", "metadata"]
metadata = FighterEnv.metadata
