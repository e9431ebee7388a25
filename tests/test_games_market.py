"""The market game: PettingZoo API conformance, order-book mechanics (arrival order, limits,
resting orders, the leading signal), CSV replay mode and its errors."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, render_test

from fpx_arena.agents import make as make_agent
from fpx_arena.errors import UserError
from fpx_arena.games import make
from fpx_arena.games import market as M
from fpx_arena.games.market.orderbook import write_synthetic_bars

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
SHIPPED_CSV = Path(M.__file__).parent / "data" / "synthetic_bars.csv"


def quiet(**kw):
    """No noise, no jumps: only the agents move the book."""
    kw = {"noise_rate": 0.0, "jump_every_s": 1e9, **kw}
    env = M.parallel_env(**kw)
    env.reset(seed=0)
    return env


def idle(env):
    return {a: M.HOLD for a in env.agents}


def test_pettingzoo_api_and_seed_tests():
    parallel_api_test(M.parallel_env(n_agents=3, day_ticks=400), num_cycles=500)
    parallel_api_test(M.parallel_env(n_agents=8, day_ticks=100), num_cycles=200)
    parallel_seed_test(lambda: M.parallel_env(day_ticks=300), num_cycles=300)
    api_test(M.env(n_agents=2, day_ticks=300), num_cycles=300)


def test_render_modes():
    render_test(M.env)
    env = M.parallel_env(render_mode="rgb_array")
    env.reset(seed=0)
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    env = M.parallel_env(render_mode="ansi")
    env.reset(seed=0)
    assert "ask" in env.render() and "t0: pos" in env.render()


def test_bad_parameters_are_one_line_errors():
    for kw in ({"n_agents": 1}, {"n_agents": 9}, {"small": 0}, {"large": 50}):
        with pytest.raises(UserError) as e:
            M.parallel_env(**kw)
        assert "\n" not in str(e.value)


def test_orders_fill_in_arrival_order():
    fills = {}
    for first, second in (("t0", "t1"), ("t1", "t0")):
        env = quiet()
        env.set_arrival_order([first, second])
        env.step({"t0": M.LIFT, "t1": M.LIFT})
        cost = {a: env.start_cash - env.cash[i] for i, a in enumerate(env.possible_agents)}
        assert env.pos == [5, 5]
        fills[first] = cost
    # whoever arrives first pays less for the same 5 units
    assert fills["t0"]["t0"] < fills["t0"]["t1"]
    assert fills["t1"]["t1"] < fills["t1"]["t0"]
    assert fills["t0"]["t0"] == pytest.approx(fills["t1"]["t1"])
    # arrival times: the earlier one goes first; exact ties are broken by a seeded draw
    firsts = set()
    for seed in range(12):
        env = M.parallel_env(noise_rate=0.0, jump_every_s=1e9)
        env.reset(seed=seed)
        env.set_arrival_order({"t0": 5.0, "t1": 5.0})
        env.step({"t0": M.LIFT, "t1": M.LIFT})
        firsts.add("t0" if env.cash[0] > env.cash[1] else "t1")
    assert firsts == {"t0", "t1"}
    env = quiet()
    env.set_arrival_order({"t0": 7.0, "t1": 3.0})
    env.step({"t0": M.LIFT, "t1": M.LIFT})
    assert env.cash[1] > env.cash[0]


def test_position_limits_are_masked_and_enforced():
    env = quiet(position_limit=12)
    obs = None
    for _ in range(2):
        obs, *_ = env.step({"t0": M.LIFT, "t1": M.HOLD})
    mask = obs["t0"]["action_mask"]
    assert env.pos[0] == 10 and mask[M.BUY] == 1 and mask[M.LIFT] == 0 and mask[M.SELL] == 1
    obs, *_ = env.step({"t0": M.LIFT, "t1": M.HOLD})   # illegal now: clipped to the limit
    assert env.pos[0] == 12
    mask = obs["t0"]["action_mask"]
    assert mask[M.BUY] == 0 and mask[M.LIFT] == 0 and mask[M.POST_BID] == 0 and mask[M.FLATTEN] == 1
    assert M.decode(obs["t0"]).position == 12
    obs, *_ = env.step({"t0": M.FLATTEN, "t1": M.HOLD})
    assert env.pos[0] == 0 and obs["t0"]["action_mask"][M.FLATTEN] == 0


def test_resting_orders_fill_cancel_and_count_toward_limits():
    env = quiet()
    obs, *_ = env.step({"t0": M.POST_BID, "t1": M.HOLD})
    v = M.decode(obs["t0"])
    assert v.resting_bid == 1 and v.bids[0][1] == 1           # a one-tick-better bid of size 1
    assert obs["t0"]["action_mask"][M.POST_BID] == 0 and obs["t0"]["action_mask"][M.CANCEL] == 1
    best_bid = env.book.best(0)
    env.step({"t0": M.HOLD, "t1": M.SELL})                    # t1 sells into t0's bid
    assert env.pos == [1, -1] and env.resting[0] == [0, 0]
    assert env.cash[1] - env.start_cash == pytest.approx(best_bid * env.tick_size)
    obs, *_ = env.step({"t0": M.POST_OFFER, "t1": M.HOLD})
    assert M.decode(obs["t0"]).resting_offer == 1
    obs, *_ = env.step({"t0": M.CANCEL, "t1": M.HOLD})
    assert M.decode(obs["t0"]).resting_offer == 0 and env.book.orders_of(0) == []
    m = env.match_outcome()["metrics"]["t0"]
    assert m["trades"] == 1 and m["fill_rate"] == pytest.approx(0.5)


def test_signal_leads_the_price_and_stale_quotes_pay_the_first_mover():
    env = M.parallel_env(noise_rate=0.0, jump_every_s=0.05, signal_lead=6)
    obs, _ = env.reset(seed=3)
    while not M.decode(obs["t0"]).signal:
        obs, *_ = env.step(idle(env))
    v = M.decode(obs["t0"])
    ref0, jump, countdown = env.centre, v.signal, v.countdown
    assert countdown == 6 and abs(jump) >= 8
    for k in range(countdown):
        assert env.centre == ref0                             # not priced in yet...
        obs, *_ = env.step(idle(env))
    assert env.centre == ref0 + jump                          # ...now it is
    assert M.decode(obs["t0"]).signal == 0


def test_urgency_is_zero_without_a_signal_and_grows_as_it_nears():
    env = M.parallel_env(noise_rate=0.0, jump_every_s=0.05, signal_lead=6)
    obs, infos = env.reset(seed=3)
    seen = []
    while not M.decode(obs["t0"]).signal:
        assert infos["t0"]["urgency"] == 0.0
        obs, _, _, _, infos = env.step(idle(env))
    while M.decode(obs["t0"]).signal:
        seen.append(infos["t0"]["urgency"])
        assert infos["t1"]["urgency"] == seen[-1] == M.MarketEnv.urgency(obs["t0"])
        obs, _, _, _, infos = env.step(idle(env))
    assert 0.5 < seen[0] < seen[-1] <= 1.0 and seen == sorted(seen)


def test_latency_race_first_trader_gets_the_edge():
    """Two informed traders see the same signal; the one that acts first takes the stale
    quotes and ends richer, whoever it is."""
    for seed in range(3):
        pnl = {}
        for fast in ("t0", "t1"):
            env = M.parallel_env(day_ticks=300)
            obs, _ = env.reset(seed=seed)
            bots = {a: make_agent("market/informed") for a in env.possible_agents}
            for i, (a, b) in enumerate(bots.items()):
                b.reset(a, env.observation_space(a), env.action_space(a), i)
            while env.agents:
                env.set_arrival_order([fast] + [a for a in env.agents if a != fast])
                obs, *_ = env.step({a: bots[a].act(obs[a], {}) for a in env.agents})
            pnl[fast] = {a: m["pnl"] for a, m in env.match_outcome()["metrics"].items()}
        assert pnl["t0"]["t0"] > pnl["t0"]["t1"] and pnl["t1"]["t1"] > pnl["t1"]["t0"]


def test_metrics_snapshot_describe_and_digest():
    env = make("market", n_agents=3, day_ticks=200)
    obs, _ = env.reset(seed=9)
    bots = [make_agent(s) for s in ("market/informed", "market/marketmaker", "market/noise")]
    for i, (a, b) in enumerate(zip(env.possible_agents, bots)):
        b.reset(a, env.observation_space(a), env.action_space(a), i)
    digests = []
    while env.agents:
        obs, *_ = env.step({a: b.act(obs[a], {}) for a, b in zip(env.possible_agents, bots)})
        digests.append(env.state_digest())
    out = env.match_outcome()
    assert len(set(digests)) > 100
    for a, m in out["metrics"].items():
        assert set(m) >= {"pnl", "daily_yield", "sharpe", "fill_rate", "trades"}
        assert m["daily_yield"] == pytest.approx(m["pnl"] / env.start_cash)
        assert math.isfinite(m["sharpe"]) and 0.0 <= m["fill_rate"] <= 1.0
    json.dumps(env.snapshot())
    snap = env.snapshot()
    assert snap["book"]["asks"][0]["price"] > snap["book"]["bids"][0]["price"]
    names = M.action_names("t0")
    assert names[0] == "hold" and len({n.split()[0] for n in names}) == len(names) == env.action_space("t0").n
    text = M.describe(obs["t0"])
    assert "position" in text and "signal" in text


def test_csv_mode_replays_bars_with_decay_toward_day_average():
    env = M.parallel_env(csv_path=str(SHIPPED_CSV), decay_window_s=0.5, noise_rate=0.0)
    obs, _ = env.reset(seed=0)
    lines = SHIPPED_CSV.read_text().splitlines()
    assert env.day_ticks == (len(lines) - 1) * M.TICK_HZ
    avg = round(env.day_avg / env.tick_size)
    centres, signals = [], []
    for _ in range(3 * M.TICK_HZ):
        centres.append(env.centre)
        signals.append(M.decode(obs["t0"]).signal)
        obs, *_ = env.step(idle(env))
    first_close = round(float(lines[1].split(",")[4]) / env.tick_size)
    assert centres[0] == first_close and signals[0] == avg - first_close
    # within the 0.5 s window the reference walks monotonically to the average, then stays
    window = centres[: M.TICK_HZ // 2 + 1]
    steps = np.sign(np.diff(window))
    assert set(steps) <= {0, np.sign(avg - first_close)} and window[-1] == avg
    assert set(centres[M.TICK_HZ // 2:M.TICK_HZ]) == {avg} and set(signals[M.TICK_HZ // 2:M.TICK_HZ]) == {0}
    assert centres[M.TICK_HZ] == round(float(lines[2].split(",")[4]) / env.tick_size)   # next bar


def test_csv_mode_a_late_trader_fills_worse():
    prices = []
    for delay in (0, 4, 8, 16):
        e = M.parallel_env(csv_path=str(SHIPPED_CSV), noise_rate=0.0)
        o, _ = e.reset(seed=0)
        side = M.BUY if M.decode(o["t0"]).signal > 0 else M.SELL
        for k in range(delay):
            e.step(idle(e))
        e.step({"t0": side, "t1": M.HOLD})
        prices.append(-(e.cash[0] - e.start_cash) / e.pos[0])   # price paid (or received) per unit
    worse = np.diff(prices) * (1 if side == M.BUY else -1)
    assert (worse > 0).all(), prices


def test_shipped_csv_regenerates(tmp_path):
    path = tmp_path / "bars.csv"
    write_synthetic_bars(path)
    assert path.read_text() == SHIPPED_CSV.read_text()


@pytest.mark.parametrize("content,needle", [
    ("time,open,high,low,close\n0,1,1,1,1\n1,1,1,1,1\n", "line 1: missing column 'volume'"),
    ("time,open,high,low,close,volume\n0,1,1,1,1,5\n1,1,1,abc,1,5\n", "line 3: bad number 'abc' in column 'low'"),
    ("time,open,high,low,close,volume\n0,1,1,1,1,5\n2,1,1,1,1,5\n2,1,1,1,1,5\n", "line 4: time '2' is not after"),
    ("time,open,high,low,close,volume\n0,1,2,1,1,5\n1,1,0.5,1,1,5\n", "line 3: high/low"),
    ("time,open,high,low,close,volume\n0,1,1,1,1,5\nyesterday,1,1,1,1,5\n", "line 3: bad time 'yesterday'"),
    ("", "empty file"),
])
def test_malformed_csv_gives_one_line_error_naming_the_line(tmp_path, content, needle):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(UserError) as e:
        M.parallel_env(csv_path=str(path))
    message = str(e.value)
    assert needle in message and "\n" not in message and str(path) in message
    with pytest.raises(UserError, match="cannot read"):
        M.parallel_env(csv_path=str(tmp_path / "missing.csv"))


def test_csv_accepts_iso_times(tmp_path):
    path = tmp_path / "iso.csv"
    path.write_text("Time,Open,High,Low,Close,Volume,Extra\n"
                    "2024-01-02T09:30:00,10,10.2,9.9,10.1,100,x\n2024-01-02T09:30:01,10.1,10.3,10,10.2,50,y\n")
    env = M.parallel_env(csv_path=str(path))
    obs, _ = env.reset(seed=0)
    assert env.day_ticks == 2 * M.TICK_HZ and env.observation_space("t0").contains(obs["t0"])


def test_bots_are_deterministic():
    def day(seed):
        env = M.parallel_env(n_agents=4, day_ticks=200)
        obs, _ = env.reset(seed=seed)
        bots = [make_agent(f"market/{n}") for n in ("informed", "marketmaker", "momentum", "noise")]
        for i, (a, b) in enumerate(zip(env.possible_agents, bots)):
            b.reset(a, env.observation_space(a), env.action_space(a), seed + i)
        while env.agents:
            obs, *_ = env.step({a: b.act(obs[a], {}) for a, b in zip(env.possible_agents, bots)})
        return env.state_digest()
    assert day(4) == day(4) != day(5)
