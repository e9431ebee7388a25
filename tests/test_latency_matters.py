"""Latency matters by construction, under the reproducible `profile` clock: the same scripted
expert wins when it is faster. Sides alternate so that no seat advantage can pass for speed."""
from __future__ import annotations

from pathlib import Path

from fpx_arena import run_match
from fpx_arena.agents import make as make_agent
from fpx_arena.games import make as make_game
from fpx_arena.games import market

SHIPPED_CSV = Path(market.__file__).parent / "data" / "synthetic_bars.csv"


def _match(game, spec, fast_ms, slow_ms, seed, **env_kw):
    env = make_game(game, **env_kw)
    ids = env.possible_agents
    fast, slow = (ids[0], ids[1]) if seed % 2 == 0 else (ids[1], ids[0])
    result = run_match(env, {a: make_agent(spec) for a in ids[:2]}, clock="profile", seed=seed,
                       latency={fast: fast_ms, slow: slow_ms})
    return result, fast, slow


def test_fighter_reactive_expert_at_0ms_beats_itself_at_150ms():
    wins = {"fast": 0, "slow": 0, "draw": 0}
    for seed in range(50):
        result, fast, slow = _match("fighter", "fighter/reactive", 0.0, 150.0, seed, round_ticks=1200)
        wins["fast" if result.winner == fast else "slow" if result.winner == slow else "draw"] += 1
        assert result.missed_ticks[fast] == 0 and result.missed_ticks[slow] > 0
    assert wins["fast"] >= 40, wins
    assert wins["slow"] <= 3, wins


def test_fighter_advantage_falls_with_the_gap_in_latency():
    """Equal latencies are an even fight; the faster side wins more the larger the gap."""
    score = {}
    for gap_ms in (0.0, 150.0):
        fast_wins = slow_wins = 0
        for seed in range(30):
            result, fast, slow = _match("fighter", "fighter/reactive", 100.0, 100.0 + gap_ms, seed, round_ticks=900)
            fast_wins += result.winner == fast
            slow_wins += result.winner == slow
        score[gap_ms] = fast_wins - slow_wins
    assert abs(score[0.0]) <= 12 and score[150.0] >= 24, score


def test_market_informed_trader_earns_more_when_faster():
    for game_kw in ({"day_ticks": 600}, {"csv_path": str(SHIPPED_CSV)}):
        for seed in range(4):
            result, fast, slow = _match("market", "market/informed", 0.0, 200.0, seed, **game_kw)
            pnl = {a: m["pnl"] for a, m in result.metrics.items()}
            assert pnl[fast] > pnl[slow] + 1.0, (game_kw, seed, pnl)
            assert result.winner == fast
            assert result.metrics[fast]["daily_yield"] > 0
