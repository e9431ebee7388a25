"""Scripted traders for the `market` game. They read only the observation (through the
layout fpx_arena.games.market exports) and are deterministic given reset(seed).

- informed: the expert. Trades on the public signal while the stale quotes still pay
  (an ask below the reference it expects, after the spread, by ``margin`` ticks), as many
  units as the visible book pays for; flattens once the move is priced in. Its edge is a
  race: the faster copy lifts the stale offers first.
- marketmaker: rests a bid and an offer one tick inside the makers' quotes to earn the
  spread from noise flow; pulls them (and trades with the signal) when a signal appears,
  and leans against its inventory.
- momentum: follows the signed flow of the last trades.
- noise: random small orders (seeded).
"""
from __future__ import annotations

import random

from . import environment as M

_HALF_SPREAD = 2          # the makers' default half spread, used to price the exit


class _Bot:
    def reset(self, agent_id, observation_space, action_space, seed):
        self.agent_id = agent_id
        self.rng = random.Random(0 if seed is None else int(seed))

    def act(self, observation, info=None):
        return self.decide(observation["observation"].tolist(), observation["action_mask"])


def _paying_units(o: list, base: int, edge: float, margin: float) -> int:
    """Visible units on one side (asks at base=I_ASKS, bids at I_BIDS) whose price beats the
    expected post-move exit by at least `margin` ticks."""
    units = 0
    for k in range(M.BOOK_LEVELS):
        off, size = o[base + 2 * k], o[base + 2 * k + 1]
        if size <= 0:
            break
        gain = edge - _HALF_SPREAD - off if base == M.I_ASKS else off - (edge + _HALF_SPREAD)
        if gain < margin:
            break
        units += size
    return int(units)


class InformedBot(_Bot):
    def __init__(self, margin: float = 2.0):
        self.margin = float(margin)

    def decide(self, o, mask):
        signal, pos = o[M.I_SIGNAL], o[M.I_POSITION]
        if signal and o[M.I_COUNTDOWN] > 0:
            if signal > 0:
                units = _paying_units(o, M.I_ASKS, signal, self.margin)
                if units >= 5 and mask[M.LIFT]:
                    return M.LIFT
                if units >= 1 and mask[M.BUY]:
                    return M.BUY
                return M.HOLD
            units = _paying_units(o, M.I_BIDS, signal, self.margin)
            if units >= 5 and mask[M.HIT]:
                return M.HIT
            if units >= 1 and mask[M.SELL]:
                return M.SELL
            return M.HOLD
        if (pos or o[M.I_REST_BID] or o[M.I_REST_OFFER]) and mask[M.FLATTEN]:
            return M.FLATTEN
        return M.HOLD


class MarketMakerBot(_Bot):
    def __init__(self, max_inventory: int = 6):
        self.max_inventory = int(max_inventory)

    def decide(self, o, mask):
        pos, rb, ro = o[M.I_POSITION], o[M.I_REST_BID], o[M.I_REST_OFFER]
        if o[M.I_SIGNAL] and o[M.I_COUNTDOWN] > 0:
            if rb or ro:
                return M.CANCEL                  # don't get picked off
            if o[M.I_SIGNAL] > 0 and pos < 0 and mask[M.FLATTEN]:
                return M.FLATTEN
            if o[M.I_SIGNAL] < 0 and pos > 0 and mask[M.FLATTEN]:
                return M.FLATTEN
            return M.HOLD
        if abs(pos) > self.max_inventory and mask[M.FLATTEN]:
            return M.FLATTEN
        if not rb and pos < self.max_inventory and mask[M.POST_BID]:
            return M.POST_BID
        if not ro and pos > -self.max_inventory and mask[M.POST_OFFER]:
            return M.POST_OFFER
        return M.HOLD


class MomentumBot(_Bot):
    def __init__(self, threshold: int = 3):
        self.threshold = int(threshold)

    def decide(self, o, mask):
        flow = sum(o[M.I_TRADES + 2 * k + 1] for k in range(M.TRADE_HISTORY))
        pos = o[M.I_POSITION]
        if flow >= self.threshold and mask[M.BUY]:
            return M.BUY
        if flow <= -self.threshold and mask[M.SELL]:
            return M.SELL
        if pos and abs(flow) <= 1 and self.rng.random() < 0.05 and mask[M.FLATTEN]:
            return M.FLATTEN
        return M.HOLD


class NoiseBot(_Bot):
    def __init__(self, rate: float = 0.1):
        self.rate = float(rate)

    def decide(self, o, mask):
        r = self.rng.random()
        if r < self.rate / 2 and mask[M.BUY]:
            return M.BUY
        if r < self.rate and mask[M.SELL]:
            return M.SELL
        if r > 0.995 and mask[M.FLATTEN]:
            return M.FLATTEN
        return M.HOLD


BOTS = {"informed": InformedBot, "marketmaker": MarketMakerBot, "momentum": MomentumBot, "noise": NoiseBot}

__all__ = ["BOTS", "InformedBot", "MarketMakerBot", "MomentumBot", "NoiseBot"]
