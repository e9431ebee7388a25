"""market: a real-time limit-order-book market for 2 to 8 trading agents, as a PettingZoo
ParallelEnv (agents "t0".."t{n-1}", 20 ticks per second of game time).

The world
---------
* Prices are integer ticks (``tick_size``, default 0.01). Background market makers (MM) quote
  ``depth`` levels a side around their reference price, ``half_spread`` ticks from it,
  ``level_size`` units a level, and refill one unit per level every ``refill_every`` ticks.
  Their reference is the fair value they know plus a price impact: each unit bought at market
  moves it up by ``impact`` ticks (sold: down), decaying by ``impact_decay`` per tick. So every
  market order makes the next one fill worse. Noise traders send small market orders.
* Synthetic mode (default): the fundamental value jumps now and then (about every
  ``jump_every_s`` seconds, by ``jump_ticks`` ticks either way). Each jump is announced by a
  public signal ``signal_lead`` ticks before the makers price it in (re-centre their quotes,
  picking off any agent quote it crosses, and forget the impact of the informed flow).
  Whoever acts first on the signal lifts the stale quotes; later traders find them gone and
  fill worse or not at all: a latency race.
* CSV mode (``csv_path=``): replays a user's OHLC bars (the FPX paper used one-second bars)
  with the paper's rule. A bar is published at its time (game time = time - first time); its
  close becomes the reference price, which then decays linearly to the day's volume-weighted
  average of (high+low+close)/3 within ``decay_window_s`` seconds (or until the next bar);
  the signal is the decay still to come. A late trader fills nearer the average.

Order of events in one step (deterministic and fair): agents' orders execute one by one in
arrival order — the order given by ``set_arrival_order`` (a list of agents, or a dict of agent ->
arrival time whose ties are broken by a seeded draw; the scheduler calls it before step with
when each decision landed), else a per-step shuffle from the seeded RNG; then noise flow, the
price process and the makers' re-quoting or refills.

Actions (Discrete(9)): 0 hold, 1 buy (market, ``small`` units), 2 sell, 3 lift (buy ``large``),
4 hit (sell ``large``), 5 flatten (close the position at market, cancel resting orders),
6 bid (rest ``small`` at one tick better than the best bid), 7 offer, 8 cancel (resting
orders). The mask forbids what would break ``position_limit`` (counting resting orders),
flatten/cancel with nothing to close, and a second resting order on a side.

Observation (natural units; see ``OBS_FIELDS``/``decode``): time left (s), mid change since
the open, spread, the top 5 levels a side (offset from mid in ticks, size), the last 5 trades
(offset, signed size: + when the buyer was the aggressor), the signal (expected move of the
reference, ticks) and its countdown (ticks left before it is priced in), own position,
resting bid and offer sizes, cash change and PnL (currency). The signal is the move of the
makers' reference still to come: (fair value after the announced jump) - reference now, or in
CSV mode (day average) - reference while the decay window lasts; 0 when there is none.

Rewards: the change of mark-to-market PnL (cash + position x reference price - starting
cash) per tick. ``match_outcome()`` reports pnl, daily_yield (= pnl / start_cash), sharpe
(mean / std of per-tick PnL changes x sqrt(ticks in the day): a per-day ratio, not
annualised), fill_rate (filled / requested units), trades (fills), volume, position.
"""
from __future__ import annotations

import hashlib
import math
import random
from collections import deque

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from ...errors import UserError
from .._base import ArenaEnv, aec_forms
from .orderbook import ASK, BID, MM, OrderBook, load_bars

TICK_HZ = 20
BOOK_LEVELS = 5
TRADE_HISTORY = 5
NOISE = -2                      # owner id of noise traders in fills
ACTIONS = ("hold", "buy", "sell", "lift", "hit", "flatten", "bid", "offer", "cancel")
HOLD, BUY, SELL, LIFT, HIT, FLATTEN, POST_BID, POST_OFFER, CANCEL = range(len(ACTIONS))

OBS_FIELDS = (("time_left", "mid_change", "spread")
              + tuple(f"ask{k}_{f}" for k in range(BOOK_LEVELS) for f in ("offset", "size"))
              + tuple(f"bid{k}_{f}" for k in range(BOOK_LEVELS) for f in ("offset", "size"))
              + tuple(f"trade{k}_{f}" for k in range(TRADE_HISTORY) for f in ("offset", "size"))
              + ("signal", "countdown", "position", "resting_bid", "resting_offer", "cash_change", "pnl"))
OBS_INDEX = {name: i for i, name in enumerate(OBS_FIELDS)}
I_TIME, I_MID, I_SPREAD = 0, 1, 2
I_ASKS, I_BIDS = 3, 3 + 2 * BOOK_LEVELS
I_TRADES = 3 + 4 * BOOK_LEVELS
I_SIGNAL = I_TRADES + 2 * TRADE_HISTORY
I_COUNTDOWN, I_POSITION, I_REST_BID, I_REST_OFFER, I_CASH, I_PNL = range(I_SIGNAL + 1, I_SIGNAL + 7)
OBS_SIZE = len(OBS_FIELDS)
_BIG = 1e7


URGENCY_HORIZON = 40        # ticks of signal countdown beyond which urgency stays at 0.5


class MarketEnv(ArenaEnv):
    metadata = {"name": "market_v0", "render_modes": ["ansi", "rgb_array"], "render_fps": TICK_HZ,
                "is_parallelizable": True, "tick_hz": TICK_HZ}

    def __init__(self, n_agents: int = 2, day_ticks: int = 600, render_mode: str | None = None,
                 csv_path=None, decay_window_s: float = 2.0, start_price: float = 100.0,
                 tick_size: float = 0.01, half_spread: int = 2, depth: int = 10, level_size: int = 3,
                 refill_every: int = 2, impact: float = 0.5, impact_decay: float = 0.95, jump_every_s: float = 1.5,
                 jump_ticks: tuple[int, int] = (8, 25), signal_lead: int = 6, noise_rate: float = 0.3,
                 small: int = 1, large: int = 5, position_limit: int = 20, start_cash: float = 2000.0):
        if not 2 <= int(n_agents) <= 8:
            raise UserError(f"market: n_agents must be 2..8, got {n_agents}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"] + ["human"]:
            raise UserError(f"market: render_mode must be one of {self.metadata['render_modes']}")
        if not (tick_size > 0 and half_spread >= 1 and depth >= 1 and level_size >= 1 and 1 <= small <= large
                <= position_limit and start_cash > 0 and decay_window_s > 0 and signal_lead >= 1):
            raise UserError("market: sizes, spreads, tick_size, start_cash and windows must be positive "
                            "(and small <= large <= position_limit)")
        self.render_mode = render_mode
        self.n = int(n_agents)
        self.possible_agents = [f"t{i}" for i in range(self.n)]
        self.agents = []
        self.tick_size, self.half_spread = float(tick_size), int(half_spread)
        self.depth, self.level_size = int(depth), int(level_size)
        self.refill_every, self.noise_rate = max(1, int(refill_every)), float(noise_rate)
        self.impact_per_unit, self.impact_decay = float(impact), float(impact_decay)
        self.jump_p = 1.0 / max(1e-9, jump_every_s * TICK_HZ)
        self.jump_ticks = (int(jump_ticks[0]), int(jump_ticks[1]))
        self.signal_lead, self.small, self.large = int(signal_lead), int(small), int(large)
        self.limit, self.start_cash = int(position_limit), float(start_cash)
        self.csv_path, self.decay_window_s = csv_path, float(decay_window_s)
        self.start_ticks = int(round(start_price / self.tick_size))
        if csv_path is not None:
            self._load_csv(csv_path)
        else:
            self.day_ticks = int(day_ticks)
            if self.day_ticks < 1:
                raise UserError("market: day_ticks must be >= 1")
            self._path = None
        low = np.full(OBS_SIZE, -_BIG, np.float32)
        high = np.full(OBS_SIZE, _BIG, np.float32)
        low[I_TIME], high[I_TIME] = 0, self.day_ticks / TICK_HZ
        for i in list(range(I_ASKS + 1, I_TRADES, 2)) + [I_SPREAD, I_COUNTDOWN, I_REST_BID, I_REST_OFFER]:
            low[i] = 0
        low[I_POSITION], high[I_POSITION] = -self.limit, self.limit
        self._low, self._high = low, high
        self._obs_space = spaces.Dict({"observation": spaces.Box(low, high, dtype=np.float32),
                                       "action_mask": spaces.Box(0, 1, (len(ACTIONS),), dtype=np.int8)})
        self._act_space = spaces.Discrete(len(ACTIONS))
        self.np_random, _ = seeding.np_random(None)
        self._arrival = None
        self._reset_state()

    def _load_csv(self, path):
        bars = load_bars(path)
        t0 = bars[0][0]
        last_dur = bars[-1][0] - bars[-2][0]
        self.day_ticks = max(1, int(round((bars[-1][0] - t0 + last_dur) * TICK_HZ)))
        vol = sum(b[5] for b in bars)
        typical = [(b[2] + b[3] + b[4]) / 3 for b in bars]
        avg = (sum(p * b[5] for p, b in zip(typical, bars)) / vol) if vol > 0 else sum(typical) / len(typical)
        avg_t = avg / self.tick_size
        window = max(1, int(round(self.decay_window_s * TICK_HZ)))
        starts = [int(round((b[0] - t0) * TICK_HZ)) for b in bars] + [self.day_ticks + 1]
        centre, countdown = [], []
        for i, b in enumerate(bars):
            close_t = b[4] / self.tick_size
            for k in range(max(0, starts[i + 1] - starts[i])):
                frac = max(0.0, 1.0 - k / window)
                centre.append(int(round(avg_t + (close_t - avg_t) * frac)))
                countdown.append(max(0, window - k))
        self._path = (centre, countdown)
        self._avg_ticks = int(round(avg_t))
        self.start_ticks = centre[0]
        self.day_avg = avg

    # -- PettingZoo API ------------------------------------------------------------------------
    # one space object per env, the same for every call and agent (PettingZoo requires the same
    # object; an lru_cache on the method would keep every env alive)
    def observation_space(self, agent):
        return self._obs_space

    def action_space(self, agent):
        return self._act_space

    def set_arrival_order(self, order) -> None:
        """How the next step's orders are sequenced: a list of agents (first executes first), or
        a dict agent -> arrival time (earliest first; equal times in a seeded random order).
        Agents not named follow in a seeded random order. Applies to the next step only."""
        if isinstance(order, dict):
            timed = sorted((float(t), self._order_rng.random(), a) for a, t in order.items() if a in self._index)
            self._arrival = [a for _, _, a in timed]
        else:
            self._arrival = [a for a in order if a in self._index]

    @staticmethod
    def urgency(observation) -> float:
        """info["urgency"]: 0 without a signal; with one, from 0.5 (40 or more ticks before it is
        priced in) to 1 (priced in on the next tick): acting on it late is worth less."""
        vec = observation["observation"] if isinstance(observation, dict) else observation
        if vec[I_SIGNAL] == 0:
            return 0.0
        return 1.0 - min(float(vec[I_COUNTDOWN]), URGENCY_HORIZON) / (2 * URGENCY_HORIZON)

    def reset(self, seed=None, options=None):
        if seed is not None or not hasattr(self, "_seeded"):
            self.np_random, _ = seeding.np_random(seed)
            self._seeded = True
        self._reset_state()
        self.agents = self.possible_agents[:]
        obs = self._observations()
        return obs, self._infos(obs)

    def step(self, actions):
        if not self.agents:
            raise RuntimeError("step() called after the trading day ended; call reset()")
        idx = self._index
        for a, act in actions.items():
            if a in idx and not 0 <= act < len(ACTIONS):
                raise ValueError(f"action for {a} must be in 0..{len(ACTIONS) - 1}, got {act}")
        order = self._arrival_order(actions)
        for a in order:
            act = int(actions[a])
            if act:
                self._execute(idx[a], act)
        self._noise()
        self._makers()
        self.tick += 1
        self._history.append(self.centre)
        prev = self.pnl
        self.pnl = [self.cash[i] + self.pos[i] * self.centre * self.tick_size - self.start_cash for i in range(self.n)]
        rewards = {}
        for i, a in enumerate(self.possible_agents):
            d = self.pnl[i] - prev[i]
            rewards[a] = d
            self._sum_d[i] += d
            self._sum_d2[i] += d * d
        done = self.tick >= self.day_ticks
        return self._step_result(rewards, done)

    # -- hooks ---------------------------------------------------------------------------------
    def match_outcome(self) -> dict:
        metrics = {}
        for i, a in enumerate(self.possible_agents):
            n = max(1, self.tick)
            mean = self._sum_d[i] / n
            var = max(0.0, self._sum_d2[i] / n - mean * mean)
            std = math.sqrt(var)
            metrics[a] = {"pnl": self.pnl[i], "daily_yield": self.pnl[i] / self.start_cash,
                          "sharpe": (mean / std * math.sqrt(self.day_ticks)) if std > 1e-12 else 0.0,
                          "fill_rate": self.filled[i] / self.requested[i] if self.requested[i] else 0.0,
                          "trades": self.fills[i], "volume": self.filled[i], "position": self.pos[i]}
        best = max(self.pnl)
        leaders = [a for a, p in zip(self.possible_agents, self.pnl) if p >= best - 1e-9]
        return {"winner": leaders[0] if len(leaders) == 1 else None, "metrics": metrics, "ticks": self.tick}

    def state_digest(self) -> str:
        state = (self.tick, self.centre, self.fair, self.impact, self.pending, self.book.canonical(), tuple(self.pos),
                 tuple(round(c, 9) for c in self.cash), tuple(map(tuple, self.resting)),
                 tuple(self.trades), self._rng.getstate(), self._order_rng.getstate())
        return hashlib.sha1(repr(state).encode()).hexdigest()

    def snapshot(self) -> dict:
        ts = self.tick_size
        book = {side: [{"price": p * ts, "size": s} for p, s in self.book.levels(k, self.depth + 4)]
                for side, k in (("bids", BID), ("asks", ASK))}
        agents = {}
        for i, a in enumerate(self.possible_agents):
            agents[a] = {"position": self.pos[i], "cash": self.cash[i], "pnl": self.pnl[i],
                         "orders": [{"side": "bid" if s == BID else "offer", "price": p * ts, "size": z}
                                    for s, p, z in self.book.orders_of(i)]}
        sig, cd = self._signal()
        return {"game": "market", "tick": self.tick, "tick_hz": TICK_HZ, "day_ticks": self.day_ticks,
                "mode": "csv" if self._path else "synthetic", "tick_size": ts,
                "reference": self.centre * ts, "mid": self._mid() * ts, "open": self.open_ticks * ts,
                # synthetic mode: the value after any announced jump; CSV mode has no fundamental
                "fundamental": None if self._path else (self.fair + (self.pending[0] if self.pending else 0)) * ts,
                "signal": {"ticks": sig, "countdown": cd}, "book": book,
                "trades": [{"price": p * ts, "size": s} for p, s in self.trades], "agents": agents}

    # -- simulation ----------------------------------------------------------------------------
    def _reset_state(self):
        seed = int(self.np_random.integers(2**62))
        self._rng = random.Random(seed)
        self._order_rng = random.Random(seed ^ 0x5DEECE66D)    # arrival shuffles: own stream
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self.tick = 0
        self.book = OrderBook()
        self.centre = self.open_ticks = self.fair = self.start_ticks
        self.impact = 0.0               # makers' reference = fair + round(impact)
        self.pending = None             # synthetic: (jump_ticks, due_tick)
        self.pos = [0] * self.n
        self.cash = [self.start_cash] * self.n
        self.pnl = [0.0] * self.n
        self.resting = [[0, 0] for _ in range(self.n)]
        self.requested, self.filled, self.fills = [0] * self.n, [0] * self.n, [0] * self.n
        self._sum_d, self._sum_d2 = [0.0] * self.n, [0.0] * self.n
        self.trades: list = []          # newest first: (price_ticks, signed size)
        self._arrival = None
        self._history = deque(maxlen=300)   # the reference per tick, for render()
        self._quote()

    def _arrival_order(self, actions):
        listed = self._arrival or []
        self._arrival = None
        rest = [a for a in self.possible_agents if a in actions and a not in listed]
        if len(rest) > 1:
            self._order_rng.shuffle(rest)
        return [a for a in listed if a in actions] + rest

    def _capacity(self, i: int, side: int) -> int:
        """Units agent i may still buy (side BID) or sell (side ASK) within its position limit."""
        if side == BID:
            return self.limit - self.pos[i] - self.resting[i][BID]
        return self.limit + self.pos[i] - self.resting[i][ASK]

    def _execute(self, i: int, act: int):
        if act in (BUY, LIFT, SELL, HIT):
            buy = act in (BUY, LIFT)
            size = min(self.small if act in (BUY, SELL) else self.large, self._capacity(i, BID if buy else ASK))
            if size > 0:
                self._market(i, +1 if buy else -1, size)
        elif act == FLATTEN:
            self._cancel(i)
            if self.pos[i]:
                self._market(i, -1 if self.pos[i] > 0 else +1, abs(self.pos[i]))
        elif act == POST_BID or act == POST_OFFER:
            side = BID if act == POST_BID else ASK
            if self.resting[i][side] == 0 and self._capacity(i, side) >= self.small:
                self._post(i, side)
        elif act == CANCEL:
            self._cancel(i)

    def _market(self, i: int, sign: int, size: int):
        side = ASK if sign > 0 else BID
        self.requested[i] += size
        fills = self.book.take(side, size, i)
        for price, qty, maker in fills:
            self.impact += self.impact_per_unit * sign * qty
            self._fill(i, sign, price, qty)
            if maker >= 0:
                self._fill(maker, -sign, price, qty)
                self.resting[maker][BID if sign < 0 else ASK] -= qty
            self._record(price, sign * qty)

    def _fill(self, i: int, sign: int, price: int, qty: int):
        self.pos[i] += sign * qty
        self.cash[i] -= sign * qty * price * self.tick_size
        self.filled[i] += qty
        self.fills[i] += 1

    def _record(self, price: int, signed: int):
        self.trades.insert(0, (price, signed))
        del self.trades[TRADE_HISTORY:]

    def _post(self, i: int, side: int):
        bb, ba = self.book.best(BID), self.book.best(ASK)
        if side == BID:
            price = self.centre - self.half_spread if bb is None else bb + 1
            if ba is not None and price >= ba:
                price = ba - 1
        else:
            price = self.centre + self.half_spread if ba is None else ba - 1
            if bb is not None and price <= bb:
                price = bb + 1
        self.book.add(side, price, i, self.small)
        self.resting[i][side] += self.small
        self.requested[i] += self.small

    def _cancel(self, i: int):
        for side in (BID, ASK):
            if self.resting[i][side]:
                self.book.remove(side, i)
                self.resting[i][side] = 0

    def _noise(self):
        r = self._rng
        if r.random() < self.noise_rate:
            sign = 1 if r.random() < 0.5 else -1
            size = 1 + (r.random() < 0.4)
            for price, qty, maker in self.book.take(ASK if sign > 0 else BID, size, NOISE):
                self.impact += self.impact_per_unit * sign * qty
                if maker >= 0:
                    self._fill(maker, -sign, price, qty)
                    self.resting[maker][BID if sign < 0 else ASK] -= qty
                self._record(price, sign * qty)

    def _quote(self):
        """The makers re-centre on self.centre: agent quotes that the new quotes would cross are
        picked off (filled by the makers at the agent's price), then both sides are re-quoted."""
        book, c, h = self.book, self.centre, self.half_spread
        for side, sign, limit in ((ASK, 1, c - h), (BID, -1, c + h)):
            if any(r[side] for r in self.resting):
                for price, qty, maker in book.take(side, 10**9, MM, limit_price=limit):
                    self._fill(maker, -sign, price, qty)
                    self.resting[maker][side] -= qty
                    self._record(price, sign * qty)
        book.requote(BID, range(c - h, c - h - self.depth, -1), self.level_size)
        book.requote(ASK, range(c + h, c + h + self.depth), self.level_size)

    def _makers(self):
        t, r = self.tick, self._rng
        if self._path is not None:
            self.fair = self._path[0][min(t + 1, len(self._path[0]) - 1)]
        elif self.pending is not None and t + 1 >= self.pending[1]:
            self.fair += self.pending[0]            # priced in: the flow was informed, forget it
            self.pending = None
            self.impact = 0.0
        elif self.pending is None and r.random() < self.jump_p:
            size = r.randint(*self.jump_ticks) * (1 if r.random() < 0.5 else -1)
            self.pending = (size, t + 1 + self.signal_lead)
        self.impact *= self.impact_decay
        centre = self.fair + int(round(self.impact))
        if centre != self.centre:
            self.centre = centre
            self._quote()
        elif t % self.refill_every == 0:
            c, h, book = self.centre, self.half_spread, self.book
            for side, sign in ((BID, -1), (ASK, 1)):
                mm = book.mm[side]
                for k in range(self.depth):
                    p = c + sign * (h + k)
                    if mm.get(p, 0) < self.level_size:
                        book.add(side, p, MM, 1)

    def _signal(self):
        """(expected move of the makers' reference in ticks, ticks left before it is priced in)."""
        if self._path is not None:
            countdown = self._path[1][min(self.tick, len(self._path[1]) - 1)]
            return (self._avg_ticks - self.centre, countdown) if countdown else (0, 0)
        if self.pending is None:
            return 0, 0
        return self.fair + self.pending[0] - self.centre, max(0, self.pending[1] - self.tick)

    def _mid(self) -> float:
        bb, ba = self.book.best(BID), self.book.best(ASK)
        if bb is None or ba is None:
            return float(self.centre)
        return (bb + ba) / 2

    # -- observations --------------------------------------------------------------------------
    def _observations(self):
        book = self.book
        mid = self._mid()
        bb, ba = book.best(BID), book.best(ASK)
        common = [(self.day_ticks - self.tick) / TICK_HZ, mid - self.open_ticks,
                  (ba - bb) if (bb is not None and ba is not None) else 0.0]
        for side in (ASK, BID):
            lv = book.levels(side, BOOK_LEVELS)
            for p, s in lv:
                common += (p - mid, s)
            common += (0.0, 0.0) * (BOOK_LEVELS - len(lv))
        for p, s in self.trades:
            common += (p - mid, s)
        common += (0.0, 0.0) * (TRADE_HISTORY - len(self.trades))
        common += self._signal()
        out = {}
        masks = {}
        for a in self.agents:
            i = self._index[a]
            # every other field is bounded by construction (limits, book depth, day length)
            cash = min(max(self.cash[i] - self.start_cash, -_BIG), _BIG)
            pnl = min(max(self.pnl[i], -_BIG), _BIG)
            vec = np.array(common + [self.pos[i], self.resting[i][BID], self.resting[i][ASK], cash, pnl],
                           dtype=np.float32)
            key = self._mask_key(i)
            m = masks.get(key)
            if m is None:
                m = masks[key] = np.array(key, dtype=np.int8)
                m.flags.writeable = False
            out[a] = {"observation": vec, "action_mask": m}
        return out

    def _mask_key(self, i: int) -> tuple:
        buy, sell = self._capacity(i, BID), self._capacity(i, ASK)
        rb, ra = self.resting[i]
        return (1, int(buy >= self.small), int(sell >= self.small), int(buy >= self.large), int(sell >= self.large),
                int(self.pos[i] != 0 or rb > 0 or ra > 0), int(rb == 0 and buy >= self.small),
                int(ra == 0 and sell >= self.small), int(rb > 0 or ra > 0))

    # -- rendering -----------------------------------------------------------------------------
    def _render_ansi(self) -> str:
        ts = self.tick_size
        asks = self.book.levels(ASK, BOOK_LEVELS)[::-1]
        bids = self.book.levels(BID, BOOK_LEVELS)
        sig, cd = self._signal()
        lines = [f"t={self.tick}/{self.day_ticks} ref {self.centre * ts:.2f} signal {sig:+d} ticks in {cd}"]
        lines += [f"   ask {p * ts:8.2f} x{s}" for p, s in asks]
        lines += [f"   bid {p * ts:8.2f} x{s}" for p, s in bids]
        lines += [f"{a}: pos {self.pos[i]:+d} pnl {self.pnl[i]:+.2f}" for i, a in enumerate(self.possible_agents)]
        return "\n".join(lines)

    def _render_rgb(self) -> np.ndarray:
        """Left: the makers' reference over the last 300 ticks (white) and the level the signal
        points to (yellow). Right: the book, bids green, asks red, agents' quotes yellow.
        Bottom: each agent's position (up long, down short) and the day's progress."""
        h, w, chart_h, px = 240, 480, 200, 5            # 5 pixels per price tick
        img = np.empty((h, w, 3), np.uint8)
        img[:] = (20, 22, 30)
        mid = self._mid()

        def row_of(price):
            return int(chart_h / 2 - (price - mid) * px)

        hist = self._history
        prev = None
        for x, ref in enumerate(hist):                     # a step line: join jumps vertically
            r = row_of(ref)
            lo, hi = (r, r + 2) if prev is None else (min(r, prev), max(r, prev) + 2)
            lo, hi = max(0, lo), min(chart_h - 1, hi)
            if lo < hi:
                img[lo:hi, 300 - len(hist) + x] = (230, 230, 230)
            prev = r
        sig, _ = self._signal()
        if sig:
            r = row_of(self.centre + sig)
            if 0 <= r < chart_h:
                img[r, 0:300:6] = (250, 220, 60)
                img[r, 1:300:6] = (250, 220, 60)
        owners = {(s, p) for i in range(self.n) for s, p, _ in self.book.orders_of(i)}
        for side, colour in ((BID, (60, 190, 90)), (ASK, (220, 80, 70))):
            for p, size in self.book.levels(side, self.depth + 6):
                r = row_of(p)
                if 0 <= r < chart_h - px:
                    img[r:r + px - 1, 310:310 + min(160, 10 * size)] = (250, 220, 60) if (side, p) in owners else colour
        img[chart_h:chart_h + 1] = (60, 60, 80)
        slot = (w - 20) // self.n
        for i in range(self.n):
            x0 = 10 + i * slot + slot // 2 - 8
            bar = int(16 * abs(self.pos[i]) / self.limit)
            if self.pos[i] > 0:
                img[220 - bar:220, x0:x0 + 16] = (60, 190, 90)
            elif self.pos[i] < 0:
                img[221:221 + bar, x0:x0 + 16] = (220, 80, 70)
            img[220, x0 - 4:x0 + 20] = (150, 150, 150)
        img[h - 2:, : int(w * self.tick / max(1, self.day_ticks))] = (150, 150, 220)
        return img


# --- helpers for bots, prompts and viewers ------------------------------------------------------
class MarketView:
    """decode(obs): named fields. Prices are offsets from the mid in ticks."""
    __slots__ = ("time_left", "mid_change", "spread", "asks", "bids", "trades", "signal", "countdown",
                 "position", "resting_bid", "resting_offer", "cash_change", "pnl", "mask")

    def __repr__(self):
        return (f"MarketView(pos={self.position}, signal={self.signal}, countdown={self.countdown}, "
                f"best_ask={self.asks[:1]}, best_bid={self.bids[:1]})")


def decode(observation) -> MarketView:
    vec = observation["observation"] if isinstance(observation, dict) else observation
    o = vec.tolist() if hasattr(vec, "tolist") else list(vec)
    v = MarketView()
    v.time_left, v.mid_change, v.spread = o[I_TIME], o[I_MID], o[I_SPREAD]
    v.asks = [(o[I_ASKS + 2 * k], int(o[I_ASKS + 2 * k + 1])) for k in range(BOOK_LEVELS) if o[I_ASKS + 2 * k + 1] > 0]
    v.bids = [(o[I_BIDS + 2 * k], int(o[I_BIDS + 2 * k + 1])) for k in range(BOOK_LEVELS) if o[I_BIDS + 2 * k + 1] > 0]
    v.trades = [(o[I_TRADES + 2 * k], int(o[I_TRADES + 2 * k + 1])) for k in range(TRADE_HISTORY)
                if o[I_TRADES + 2 * k + 1] != 0]
    v.signal, v.countdown = int(o[I_SIGNAL]), int(o[I_COUNTDOWN])
    v.position, v.resting_bid, v.resting_offer = int(o[I_POSITION]), int(o[I_REST_BID]), int(o[I_REST_OFFER])
    v.cash_change, v.pnl = o[I_CASH], o[I_PNL]
    v.mask = observation.get("action_mask") if isinstance(observation, dict) else None
    return v


def describe(observation, agent: str | None = None) -> str:
    """Compact text for an LLM prompt: book, last trades, signal, own position and PnL."""
    v = decode(observation)
    book = " ".join(f"{off:+.1f}x{s}" for off, s in v.asks[:3][::-1])
    book += " | " + " ".join(f"{off:+.1f}x{s}" for off, s in v.bids[:3])
    trades = " ".join(f"{'B' if s > 0 else 'S'}{abs(s)}@{off:+.1f}" for off, s in v.trades[:3]) or "none"
    signal = f"{v.signal:+d} ticks in {v.countdown} ticks" if v.signal else "none"
    rest = "".join(f", resting {n} {k}" for n, k in ((v.resting_bid, "bid"), (v.resting_offer, "offer")) if n)
    return (f"time {v.time_left:.1f}s; mid {v.mid_change:+.1f} ticks today, spread {v.spread:.0f}; "
            f"asks..bids (ticks from mid x size): {book}; last trades {trades}; signal {signal}; "
            f"you: position {v.position:+d}{rest}, pnl {v.pnl:+.2f}")


def action_names(agent: str | None = None) -> list[str]:
    return list(ACTIONS)


def parallel_env(**kwargs) -> MarketEnv:
    return MarketEnv(**kwargs)


raw_env, env = aec_forms(MarketEnv)


metadata = MarketEnv.metadata
__all__ = ["MarketEnv", "parallel_env", "env", "raw_env", "describe", "action_names", "decode", "MarketView",
           "ACTIONS", "OBS_FIELDS", "OBS_INDEX", "OBS_SIZE", "metadata", "TICK_HZ", "BOOK_LEVELS", "TRADE_HISTORY",
           "HOLD", "BUY", "SELL", "LIFT", "HIT", "FLATTEN", "POST_BID", "POST_OFFER", "CANCEL",
           "I_TRADES", "I_SIGNAL", "I_COUNTDOWN", "I_POSITION", "I_REST_BID", "I_REST_OFFER", "I_CASH", "I_PNL",
           "I_BIDS", "I_ASKS"]
