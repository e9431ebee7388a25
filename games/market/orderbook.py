"""A price-time priority limit-order book on integer price ticks, and the OHLC bar loader of
the market game's CSV mode.

Each side keeps its levels best first: asks by rising price, bids by falling price (stored
as negated keys, so both sides are searched the same way). A level is a FIFO queue of
``[owner, size]`` entries; owner ``-1`` is the background market maker (``MM``).
"""
from __future__ import annotations

import csv
import math
import random
from bisect import bisect_left
from datetime import datetime

from ...errors import UserError

MM = -1
BID, ASK = 0, 1


class OrderBook:
    __slots__ = ("keys", "queues", "sizes", "mm")

    def __init__(self):
        self.keys = ([], [])      # per side: sort keys (-price for bids, price for asks)
        self.queues = ([], [])    # per side: list of [[owner, size], ...] per level
        self.sizes = ([], [])     # per side: total size per level
        self.mm = ({}, {})        # per side: price -> market-maker size resting there

    @staticmethod
    def _key(side: int, price: int) -> int:
        return price if side == ASK else -price

    def best(self, side: int):
        keys = self.keys[side]
        if not keys:
            return None
        return keys[0] if side == ASK else -keys[0]

    def add(self, side: int, price: int, owner: int, size: int) -> None:
        keys, queues, sizes = self.keys[side], self.queues[side], self.sizes[side]
        key = self._key(side, price)
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            q = queues[i]
            if owner == MM and q[-1][0] == MM:
                q[-1][1] += size
            else:
                q.append([owner, size])
            sizes[i] += size
        else:
            keys.insert(i, key)
            queues.insert(i, [[owner, size]])
            sizes.insert(i, size)
        if owner == MM:
            mm = self.mm[side]
            mm[price] = mm.get(price, 0) + size

    def take(self, side: int, size: int, taker: int, limit_price: int | None = None) -> list:
        """A marketable order of `size` against `side` (ASK for a buy). Fills FIFO from the best
        level, skipping the taker's own orders; stops at limit_price if given. Returns fills
        as (price, qty, maker)."""
        keys, queues, sizes, mm = self.keys[side], self.queues[side], self.sizes[side], self.mm[side]
        fills = []
        i = 0
        while size > 0 and i < len(keys):
            price = keys[i] if side == ASK else -keys[i]
            if limit_price is not None and (price > limit_price if side == ASK else price < limit_price):
                break
            q = queues[i]
            j = 0
            while size > 0 and j < len(q):
                entry = q[j]
                if entry[0] == taker:
                    j += 1
                    continue
                qty = entry[1] if entry[1] < size else size
                size -= qty
                entry[1] -= qty
                sizes[i] -= qty
                if entry[0] == MM:
                    mm[price] -= qty
                    if not mm[price]:
                        del mm[price]
                fills.append((price, qty, entry[0]))
                if entry[1] == 0:
                    del q[j]
                else:
                    j += 1
            if not q:
                del keys[i], queues[i], sizes[i]
            else:
                i += 1
        return fills

    def remove(self, side: int, owner: int) -> list:
        """Cancel every order of `owner` on `side`; returns [(price, size), ...] cancelled."""
        keys, queues, sizes = self.keys[side], self.queues[side], self.sizes[side]
        out = []
        i = 0
        while i < len(keys):
            q = queues[i]
            kept = [e for e in q if e[0] != owner]
            if len(kept) != len(q):
                gone = sum(e[1] for e in q if e[0] == owner)
                out.append((keys[i] if side == ASK else -keys[i], gone))
                sizes[i] -= gone
            if kept:
                queues[i] = kept
                i += 1
            else:
                del keys[i], queues[i], sizes[i]
        if owner == MM:
            self.mm[side].clear()
        return out

    def requote(self, side: int, prices, size: int) -> None:
        """Replace the maker's orders on `side` by `size` units at each of `prices`. Agents'
        orders keep their places; at a shared price the maker queues behind them."""
        keys, queues, sizes = self.keys[side], self.queues[side], self.sizes[side]
        sign = 1 if side == ASK else -1
        agents = {}
        for k, q in zip(keys, queues):
            for e in q:
                if e[0] != MM:
                    agents.setdefault(k, []).append(e)
                    continue
        ladder = [sign * p for p in prices]
        if not agents:
            ladder.sort()
            keys[:] = ladder
            queues[:] = [[[MM, size]] for _ in ladder]
            sizes[:] = [size] * len(ladder)
        else:
            merged = sorted(set(ladder) | set(agents))
            on_ladder = set(ladder)
            keys[:] = merged
            queues[:] = [agents.get(k, []) + ([[MM, size]] if k in on_ladder else []) for k in merged]
            sizes[:] = [sum(e[1] for e in q) for q in queues]
        mm = self.mm[side]
        mm.clear()
        for p in prices:
            mm[p] = size

    def levels(self, side: int, k: int) -> list:
        """Top k levels as (price, size)."""
        keys, sizes = self.keys[side], self.sizes[side]
        n = min(k, len(keys))
        if side == ASK:
            return [(keys[i], sizes[i]) for i in range(n)]
        return [(-keys[i], sizes[i]) for i in range(n)]

    def orders_of(self, owner: int) -> list:
        """[(side, price, size)] resting for `owner`, for snapshots."""
        out = []
        for side in (BID, ASK):
            for key, q in zip(self.keys[side], self.queues[side]):
                for o, s in q:
                    if o == owner:
                        out.append((side, key if side == ASK else -key, s))
        return out

    def canonical(self) -> tuple:
        return tuple(tuple((k, tuple(map(tuple, q))) for k, q in zip(self.keys[s], self.queues[s])) for s in (BID, ASK))


# --- OHLC bars --------------------------------------------------------------------------------
BAR_COLUMNS = ("time", "open", "high", "low", "close", "volume")


def _parse_time(text: str):
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def load_bars(path) -> list[tuple[float, float, float, float, float, float]]:
    """Bars (time_s, open, high, low, close, volume) from a CSV with a header naming the columns
    time, open, high, low, close, volume (any order, any case; extra columns are ignored).
    time is seconds or an ISO 8601 timestamp and must rise strictly. Raises UserError naming
    the file and line of the first problem."""
    try:
        handle = open(path, newline="")
    except OSError as e:
        raise UserError(f"cannot read bars CSV {path}: {e.strerror or e}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise UserError(f"{path}: empty file; expected a header with {', '.join(BAR_COLUMNS)}") from None
        except (csv.Error, UnicodeDecodeError) as e:
            raise UserError(f"{path} line 1: not a CSV header ({e})") from None
        names = [h.strip().lower() for h in header]
        missing = [c for c in BAR_COLUMNS if c not in names]
        if missing:
            raise UserError(f"{path} line 1: missing column {missing[0]!r} (header has: {', '.join(names)})")
        col = {c: names.index(c) for c in BAR_COLUMNS}
        bars = []
        try:
            for row in reader:
                line = reader.line_num
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) < len(names):
                    raise UserError(f"{path} line {line}: {len(row)} fields, the header has {len(names)}")
                t = _parse_time(row[col["time"]])
                if t is None or not math.isfinite(t):
                    raise UserError(f"{path} line {line}: bad time {row[col['time']]!r} (seconds or ISO 8601)")
                values = []
                for c in BAR_COLUMNS[1:]:
                    text = row[col[c]]
                    try:
                        v = float(text)
                    except ValueError:
                        raise UserError(f"{path} line {line}: bad number {text!r} in column {c!r}") from None
                    if not math.isfinite(v) or v < 0 or (v == 0 and c != "volume"):
                        raise UserError(f"{path} line {line}: {c} must be a positive number, got {text!r}")
                    values.append(v)
                o, h, lo, c_, v = values
                if h < max(o, c_, lo) or lo > min(o, c_):
                    raise UserError(f"{path} line {line}: high/low do not bracket open and close")
                if bars and t <= bars[-1][0]:
                    raise UserError(f"{path} line {line}: time {row[col['time']]!r} is not after the previous bar's")
                bars.append((t, o, h, lo, c_, v))
        except (csv.Error, UnicodeDecodeError) as e:
            raise UserError(f"{path} line {reader.line_num}: unreadable CSV ({e})") from None
    if len(bars) < 2:
        raise UserError(f"{path}: needs at least 2 bars, found {len(bars)}")
    return bars


def synthetic_bars(n_bars: int = 90, seed: int = 7, start: float = 100.0):
    """Deterministic one-second OHLC bars around a mean-reverting price (pure Python RNG, so
    the shipped CSV regenerates identically on any platform)."""
    rng = random.Random(seed)
    rows, price, anchor = [], start, start
    for i in range(n_bars):
        o = price
        path = [o]
        for _ in range(4):
            price += 0.35 * (anchor - price) + rng.gauss(0, 0.12)
            path.append(price)
        c = price
        rows.append((i, round(o, 2), round(max(path) + rng.random() * 0.03, 2),
                     round(min(path) - rng.random() * 0.03, 2), round(c, 2), 100 + rng.randrange(900)))
        if rng.random() < 0.08:
            anchor += rng.choice((-1, 1)) * rng.uniform(0.2, 0.6)
    return rows


def write_synthetic_bars(path, **kwargs) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(BAR_COLUMNS)
        for t, o, h, lo, c, v in synthetic_bars(**kwargs):
            w.writerow((t, f"{o:.2f}", f"{h:.2f}", f"{lo:.2f}", f"{c:.2f}", v))
