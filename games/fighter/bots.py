"""Scripted fighters for the `fighter` game. Each reads only its observation (through the
layout that fpx_arena.games.fighter exports) and is deterministic given reset(seed).

- reactive: the latency-limited expert. It blocks every attack it sees in startup with the
  right guard, blocks fireballs, punishes recovery and hit-stun with the strongest move that
  still connects, and pokes when nothing happens. With 0 ms latency it blocks everything; its
  strength falls as its latency eats into the moves' startup frames.
- aggressive: rushdown. Walks in and strings attacks; never guards.
- zoner: keeps its distance and throws fireballs; sweeps whoever gets close.
- turtle: crouch-guards, stands up to block overheads it sees, jabs when it is safe.
- weak: mostly wanders, sometimes jabs, never guards (the weakest scripted fighter).
"""
from __future__ import annotations

import random

from . import rules as F

# observation indices (own block, opponent block, globals)
_OX, _OSTATE, _OBUSY = F.OWN + 0, F.OWN + 5, F.OWN + 10
_PX, _PSTATE, _PMOVE, _PPHASE, _PPLEFT, _PBUSY, _PGUARD, _PAIR, _PCROUCH = (
    F.OPP + 0, F.OPP + 5, F.OPP + 6, F.OPP + 7, F.OPP + 9, F.OPP + 10, F.OPP + 11, F.OPP + 12, F.OPP + 13)
_GAP, _OWN_PROJ, _OPP_PROJ, _OPP_PROJ_GAP = F.GLB + 0, F.GLB + 3, F.GLB + 6, F.GLB + 9
W = F.STAGE_W
JAB, KICK, SWEEP, FIREBALL = F.MOVES[1], F.MOVES[2], F.MOVES[3], F.MOVES[4]
# strongest first: (action, move) pairs used to punish
_PUNISHERS = ((F.SWEEP, SWEEP), (F.KICK, KICK), (F.JAB, JAB))


class _Bot:
    """reset/act plumbing shared by the scripted fighters."""

    def reset(self, agent_id, observation_space, action_space, seed):
        self.agent_id = agent_id
        self.rng = random.Random(0 if seed is None else int(seed))

    def act(self, observation, info=None):
        return self.decide(observation["observation"].tolist())

    def decide(self, o: list) -> int:  # pragma: no cover - every bot overrides it
        raise NotImplementedError


def _threat(o: list, margin: float = 3.0) -> int:
    """The guard action that stops what the opponent is doing to us now, or 0 if nothing."""
    if o[_PSTATE] == F.ATTACK and o[_PPHASE] in (F.STARTUP, F.ACTIVE):
        move = int(o[_PMOVE])
        if move != 4 and o[_GAP] * W < F.MOVES[move].reach + margin:
            return F.LOWBLOCK_A if move == 3 else F.BLOCK_A
    return 0


def _fireball_close(o: list, px: float) -> bool:
    return o[_OPP_PROJ] > 0 and o[_OPP_PROJ_GAP] * W < px


def _punish(o: list, slack: int = 0) -> int:
    """The strongest attack that lands before the opponent can act again, or 0."""
    busy, gap = o[_PBUSY], o[_GAP] * W
    if busy <= 0 or o[_PSTATE] in (F.KNOCKDOWN, F.BLOCKSTUN, F.KO):
        return 0
    if o[_PSTATE] == F.ATTACK and o[_PPHASE] == F.STARTUP:
        return 0                               # its blow comes first: guard, don't trade
    for action, move in _PUNISHERS:
        if busy >= move.startup + 1 + slack and gap < move.reach - 1:
            if move.level == "low" and o[_PAIR] > 0:
                continue                       # sweeps pass under a jumper
            return action
    return 0


class ReactiveBot(_Bot):
    """Perfect reactions to what the observation shows; see the module doc."""

    def __init__(self, poke: float = 0.5, fireball_range: float = 260.0):
        self.poke, self.fireball_range = float(poke), float(fireball_range)

    def decide(self, o):
        guard = _threat(o)
        if guard:
            return guard
        if _fireball_close(o, 30):
            return F.LOWBLOCK_A                  # mid fireball: low guard also covers a sweep
        punish = _punish(o)
        if punish:
            return punish
        gap = o[_GAP] * W
        if o[_PBUSY] > 0:                       # opponent committed but out of reach: close in
            return F.FORWARD if gap > 30 and o[_PSTATE] != F.BLOCKSTUN else F.BLOCK_A
        if gap > self.fireball_range and o[_OWN_PROJ] == 0 and self.rng.random() < 0.03:
            return F.FIREBALL
        if gap >= KICK.reach - 2:
            return F.FORWARD
        if self.rng.random() >= self.poke:
            return F.BLOCK_A                      # stand guard for a moment: bait
        g = o[_PGUARD]
        if g == F.GUARD_HIGH:
            return F.SWEEP if gap < SWEEP.reach - 1 else F.FORWARD
        if g == F.GUARD_LOW or o[_PCROUCH] > 0:
            return F.KICK
        return F.JAB if gap < JAB.reach - 1 and self.rng.random() < 0.6 else F.KICK


class AggressiveBot(_Bot):
    """Rushdown: close the distance (leaping now and then) and attack without pause."""

    def decide(self, o):
        gap, r = o[_GAP] * W, self.rng.random()
        if gap > 150 and r < 0.02:
            return F.LEAP
        if gap >= JAB.reach - 4:
            if gap < KICK.reach - 2 and r < 0.3:
                return F.KICK
            if gap < SWEEP.reach - 2 and r > 0.85:
                return F.SWEEP
            return F.FORWARD
        return F.JAB if r < 0.5 else F.KICK if r < 0.8 else F.SWEEP


class ZonerBot(_Bot):
    """Keeps away, throws fireballs, sweeps anyone who comes close, blocks what it sees coming."""

    def decide(self, o):
        gap = o[_GAP] * W
        if _fireball_close(o, 40):
            return F.LOWBLOCK_A
        guard = _threat(o, margin=6.0)
        if guard and self.rng.random() < 0.7:
            return guard
        if gap < SWEEP.reach - 4:
            return F.SWEEP if o[_PAIR] == 0 and self.rng.random() < 0.35 else F.BACK
        if o[_OWN_PROJ] == 0:
            return F.FIREBALL
        if gap < 180:
            return F.BACK
        return F.BLOCK_A


class TurtleBot(_Bot):
    """Guards low by default and stands up only for overheads; jabs only when it is safe."""

    def decide(self, o):
        if o[_PSTATE] == F.ATTACK and o[_PMOVE] == 2 and o[_PPHASE] in (F.STARTUP, F.ACTIVE):
            return F.BLOCK_A
        if _punish(o) == F.JAB:
            return F.JAB
        return F.LOWBLOCK_A


class WeakBot(_Bot):
    """Wanders about and jabs now and then; never guards on purpose."""

    def decide(self, o):
        r = self.rng.random()
        if r < 0.04:
            return F.JAB if o[_GAP] * W < JAB.reach else F.FORWARD
        if r < 0.30:
            return F.FORWARD
        if r < 0.40:
            return F.BACK
        return F.WAIT


BOTS = {"reactive": ReactiveBot, "aggressive": AggressiveBot, "zoner": ZonerBot,
        "turtle": TurtleBot, "weak": WeakBot}

__all__ = ["BOTS", "ReactiveBot", "AggressiveBot", "ZonerBot", "TurtleBot", "WeakBot"]
