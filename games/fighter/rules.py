"""fighter's rules as data: stage constants, states, actions, the frame data of every move,
the observation layout, and the helpers that turn an observation back into named fields
(``decode``) or prompt text (``describe``). Everything here is re-exported by
fpx_arena.games.fighter; bots, prompt builders and viewers use it through that module."""
from __future__ import annotations

from dataclasses import dataclass


# --- stage and bodies (pixels, frames) -------------------------------------------------------
STAGE_W = 640
HALF_W = 20                # half body width
BODY_W = 2 * HALF_W
STAND_H, CROUCH_H, AIR_H = 90, 55, 70
WALK_FWD, WALK_BACK = 3.0, 2.5
JUMP_VY, GRAVITY, LEAP_VX = 9.5, 0.55, 4.0
PREJUMP_FRAMES, LANDING_FRAMES = 3, 4
KNOCKDOWN_FRAMES = 45
HOLD_FRAMES = 12
BUFFER_FRAMES = 4
MAX_HEALTH = 100
TIME_SCALE = 1800          # observation's time_left is ticks left / 1800 (seconds / 30)
FIREBALL_SPEED, FIREBALL_W, FIREBALL_Y0, FIREBALL_Y1 = 5.0, 24, 40, 62


def _air_frames() -> int:
    y, vy, n = 0.0, JUMP_VY, 0
    while True:
        n += 1
        y += vy
        vy -= GRAVITY
        if y <= 0:
            return n


AIR_FRAMES = _air_frames()

# --- states, phases, actions -----------------------------------------------------------------
STATES = ("idle", "forward", "back", "crouch", "block", "lowblock", "prejump", "air", "landing",
          "attack", "hitstun", "blockstun", "knockdown", "ko")
(IDLE, WALK_FWD_S, WALK_BACK_S, CROUCH, BLOCK, LOWBLOCK, PREJUMP, AIR, LANDING, ATTACK, HITSTUN,
 BLOCKSTUN, KNOCKDOWN, KO) = range(len(STATES))
ACTIONABLE = frozenset((IDLE, WALK_FWD_S, WALK_BACK_S, CROUCH, BLOCK, LOWBLOCK))
PHASES = ("none", "startup", "active", "recovery")
NO_PHASE, STARTUP, ACTIVE, RECOVERY = range(4)
GUARDS = ("none", "high", "low")
NO_GUARD, GUARD_HIGH, GUARD_LOW = range(3)

ACTIONS = ("wait", "forward", "back", "jump", "leap", "crouch", "block", "lowblock",
           "jab", "kick", "sweep", "fireball")
(WAIT, FORWARD, BACK, JUMP, LEAP, CROUCH_A, BLOCK_A, LOWBLOCK_A, JAB, KICK, SWEEP, FIREBALL) = range(
    len(ACTIONS))
HOLD_STATE = {FORWARD: WALK_FWD_S, BACK: WALK_BACK_S, CROUCH_A: CROUCH, BLOCK_A: BLOCK, LOWBLOCK_A: LOWBLOCK}
HOLD_GUARD = {BACK: GUARD_HIGH, BLOCK_A: GUARD_HIGH, LOWBLOCK_A: GUARD_LOW}


@dataclass(frozen=True)
class Move:
    """Frame data of one attack. A move hits when gap between bodies < reach."""
    name: str
    startup: int      # frames before the hitbox appears
    active: int       # frames the hitbox is out
    recovery: int     # frames after it, still committed
    damage: int
    chip: int         # damage through a block
    reach: int        # hitbox length in front of the body
    y0: int           # hitbox bottom and top, above the attacker's feet
    y1: int
    level: str        # "mid" (any guard), "high" (overhead: high guard), "low" (low guard)
    hitstun: int
    blockstun: int
    push: int         # pushback on hit or block
    knockdown: bool = False

    @property
    def total(self) -> int:
        return self.startup + self.active + self.recovery


# Frame data: the hit lands on frame startup+1. Advantage on block = blockstun - (active+recovery-1):
# jab 0, kick -6, sweep -11; a punish with startup S needs disadvantage >= S+1.
MOVES = {
    1: Move("jab", 4, 2, 8, 5, 0, 40, 40, 75, "mid", 14, 9, 8),
    2: Move("kick", 8, 3, 16, 9, 0, 60, 45, 95, "high", 20, 12, 12),
    3: Move("sweep", 14, 4, 20, 12, 0, 72, 0, 20, "low", KNOCKDOWN_FRAMES, 12, 10, True),
    4: Move("fireball", 12, 1, 28, 8, 2, 0, FIREBALL_Y0, FIREBALL_Y1, "mid", 20, 16, 6),
}
MOVE_NAMES = ("none",) + tuple(m.name for m in MOVES.values())
MOVE_OF_ACTION = {JAB: 1, KICK: 2, SWEEP: 3, FIREBALL: 4}
LEVEL_ID = {"mid": 0, "high": 1, "low": 2}
MOVE_T = {k: (m.startup, m.active, m.total, LEVEL_ID[m.level]) for k, m in MOVES.items()}

# --- observation layout ----------------------------------------------------------------------
FIGHTER_FIELDS = ("x", "y", "vx", "vy", "health", "state", "move", "phase", "frame", "phase_left",
                  "busy", "guard", "airborne", "crouching", "faces_opponent", "wins")
NF = len(FIGHTER_FIELDS)
GLOBAL_FIELDS = ("gap", "time_left", "round", "own_proj", "own_proj_x", "own_proj_vx",
                 "opp_proj", "opp_proj_x", "opp_proj_vx", "opp_proj_gap")
OBS_FIELDS = tuple("own_" + f for f in FIGHTER_FIELDS) + tuple("opp_" + f for f in FIGHTER_FIELDS) + GLOBAL_FIELDS
OBS_SIZE = len(OBS_FIELDS)
OBS_INDEX = {name: i for i, name in enumerate(OBS_FIELDS)}
OWN, OPP, GLB = 0, NF, 2 * NF   # block offsets
# Scales: x,gap / STAGE_W; y / 100; vx,vy / 10; health / MAX_HEALTH; frame counters raw.
F_LOW = [0, 0, -1.5, -1.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
F_HIGH = [1, 1.5, 1.5, 1.5, 1, len(STATES) - 1, len(MOVES), 3, 255, 255, 255, 2, 1, 1, 1, 1]
G_LOW = [0, 0, 0, 0, -0.1, -1, 0, -0.1, -1, -1.2]
G_HIGH = [1, 1, 1, 1, 1.1, 1, 1, 1.1, 1, 1.2]


# --- helpers for bots, prompts and viewers ------------------------------------------------------
class FighterView:
    """Named fields of one fighter in an observation (own frame: the observer faces +x)."""
    __slots__ = FIGHTER_FIELDS

    def __init__(self, o: list, base: int):
        for k, name in enumerate(FIGHTER_FIELDS):
            setattr(self, name, o[base + k])
        self.x *= STAGE_W
        self.y *= 100.0
        self.vx *= 10.0
        self.vy *= 10.0
        self.health = round(self.health * MAX_HEALTH)
        for name in ("state", "move", "phase", "frame", "phase_left", "busy", "guard"):
            setattr(self, name, int(round(getattr(self, name))))
        self.airborne, self.crouching, self.faces_opponent = (bool(self.airborne), bool(self.crouching),
                                                              bool(self.faces_opponent))

    @property
    def state_name(self) -> str:
        return STATES[self.state]

    @property
    def move_name(self) -> str:
        return MOVE_NAMES[self.move]


class Decoded:
    """decode(obs): .own and .opp FighterViews; gap (px); time_left (s); projectiles."""
    __slots__ = ("own", "opp", "gap", "time_left", "round", "own_proj", "own_proj_x", "opp_proj",
                 "opp_proj_x", "opp_proj_gap", "mask")

    def __repr__(self):
        return f"Decoded(gap={self.gap:.0f}, own={STATES[self.own.state]}, opp={STATES[self.opp.state]})"


def decode(observation) -> Decoded:
    """Named, unscaled fields of an observation (the Dict or its "observation" vector):
    positions in pixels, velocities in pixels per frame, frame counters in frames, time_left in
    seconds."""
    vec = observation["observation"] if isinstance(observation, dict) else observation
    o = vec.tolist() if hasattr(vec, "tolist") else list(vec)
    d = Decoded()
    d.own, d.opp = FighterView(o, OWN), FighterView(o, OPP)
    g = o[GLB:]
    d.gap = g[0] * STAGE_W
    d.time_left = g[1] * TIME_SCALE / 60.0
    d.round = g[2]
    d.own_proj, d.own_proj_x = bool(g[3]), g[4] * STAGE_W
    d.opp_proj, d.opp_proj_x, d.opp_proj_gap = bool(g[6]), g[7] * STAGE_W, g[9] * STAGE_W
    d.mask = observation.get("action_mask") if isinstance(observation, dict) else None
    return d


_GUARD_HINT = {"mid": "block or lowblock", "high": "overhead, block", "low": "low, lowblock"}


def _fighter_text(v: FighterView) -> str:
    s = STATES[v.state]
    if v.state == ATTACK:
        m = MOVES[v.move]
        s = f"{m.name} {PHASES[v.phase]} {v.phase_left}f left"
        if v.phase == STARTUP and m.name != "fireball":
            s += f" ({_GUARD_HINT[m.level]})"
        elif v.phase == RECOVERY:
            s += f" (busy {v.busy}f)"
    elif v.state in (HITSTUN, BLOCKSTUN, KNOCKDOWN, LANDING, PREJUMP):
        s += f" {v.busy}f"
    elif v.state == AIR:
        s += f" {v.busy}f to land"
    return f"hp {v.health} {s}"


def describe(observation, agent: str | None = None) -> str:
    """Compact text of the situation for an LLM prompt (one line, about 150 characters)."""
    d = decode(observation)
    reach = [m.name for m in (MOVES[1], MOVES[2], MOVES[3]) if d.gap < m.reach]
    parts = [f"gap {d.gap:.0f}px ({'reach: ' + ' '.join(reach) if reach else 'out of reach'})",
             f"time {d.time_left:.1f}s", f"you: {_fighter_text(d.own)}", f"opp: {_fighter_text(d.opp)}"]
    if d.opp_proj:
        parts.append(f"opp fireball {max(0.0, d.opp_proj_gap):.0f}px away")
    if d.own_proj:
        parts.append("your fireball out")
    return "; ".join(parts)


def action_names(agent: str | None = None) -> list[str]:
    return list(ACTIONS)


URGENCY_HORIZON = 45        # frames: a threat or an opening further off than this is urgency 0


_U = {k: OBS_INDEX[k] for k in ("opp_state", "opp_move", "opp_phase", "opp_phase_left", "opp_busy", "gap",
                                  "opp_proj", "opp_proj_gap")}


def urgency(observation) -> float:
    """How soon the situation turns, in [0, 1]: 1 - (frames until it can) / URGENCY_HORIZON.

    What can turn it, from the observer's side: the opponent's attack in startup that reaches
    (frames to its hit), the opponent's fireball on its way (frames to arrive), an opponent
    busy in recovery or stun within jab reach (the opening closes when it can act again), and
    otherwise the frames the two need to walk into jab reach. What an adaptive agent's
    controller reads (``info["urgency"]``) to trade accuracy for speed."""
    vec = observation["observation"] if isinstance(observation, dict) else observation
    gap = float(vec[_U["gap"]]) * STAGE_W
    jab = MOVES[1]
    frames = max(0.0, gap - jab.reach) / (2 * WALK_FWD) + jab.startup
    state, move, phase = (int(round(float(vec[_U[k]]))) for k in ("opp_state", "opp_move", "opp_phase"))
    if state == ATTACK and move in (1, 2, 3) and phase in (STARTUP, ACTIVE) and gap < MOVES[move].reach + 12:
        frames = min(frames, float(vec[_U["opp_phase_left"]]) if phase == STARTUP else 0.0)
    if vec[_U["opp_proj"]]:
        frames = min(frames, max(0.0, float(vec[_U["opp_proj_gap"]]) * STAGE_W) / FIREBALL_SPEED)
    busy = float(vec[_U["opp_busy"]])
    if busy > 0 and gap < jab.reach:
        frames = min(frames, max(0.0, busy - jab.startup))
    return max(0.0, min(1.0, 1.0 - frames / URGENCY_HORIZON))
