"""Ratings: Bradley-Terry recovers known strengths with honest intervals (a sweep is finite, few
seeds give wide intervals); the per-pair Elo, LOS and pentanomial numbers match hand-computed
cases; OpenSkill, mean intervals and bounded metric intervals behave."""
import math

import numpy as np
import pytest

from fpx_arena.tournaments.ratings import (MIN_PAIRS, Game, PairStats, bootstrap_mean, elo_from_score,
                                           fit_bradley_terry, mean_interval, openskill_ratings, pair_stats,
                                           pareto_front, seeds_needed, t_quantile)


def test_trinomial_elo_error_and_los_by_hand():
    # 6 wins, 2 draws, 2 losses: score 0.7; per-game variance (6*.3^2 + 2*.2^2 + 2*.7^2)/10 = 0.16;
    # stderr sqrt(0.16/10) = 0.12649; Elo(0.7) = -400 log10(1/0.7 - 1) = 147.19;
    # error = (Elo(0.7 + 1.96*0.12649) - Elo(0.7 - 1.96*0.12649)) / 2 = (504.04 + 33.39) / 2 = 268.72;
    # LOS = (1 + erf((6 - 2) / sqrt(2 * 8))) / 2 = (1 + erf(1)) / 2 = 0.92135
    st = PairStats("a", "b", wins=6, draws=2, losses=2)
    assert st.score == pytest.approx(0.7)
    assert elo_from_score(st.score) == pytest.approx(147.19, abs=0.01)
    # the shown Elo carries the fit's prior, two virtual draws: (7 + 1) / (10 + 2) = 2/3 -> 120.41
    assert st.elo == pytest.approx(120.41, abs=0.01)
    assert st.trinomial_stderr() == pytest.approx(0.126491, abs=1e-6)
    assert st.elo_error(paired=False) == pytest.approx(268.72, abs=0.01)
    assert st.los(paired=False) == pytest.approx(0.921350, abs=1e-6)
    assert PairStats("a", "b", draws=5).los(paired=False) == 0.5
    assert elo_from_score(0.5) == 0 and elo_from_score(1.0) == math.inf and elo_from_score(0.0) == -math.inf
    assert elo_from_score(10 / 11) == pytest.approx(400.0)  # 10:1 odds is 400 Elo


def test_pentanomial_counts_and_stats_by_hand():
    # five seeds, each played from both sides; a's pair scores 2, 1.5, 1 (a win and a loss),
    # 1 (two draws) and 0.5 -> pentanomial [LL, LD, DD+WL, WD, WW] = [0, 1, 2, 1, 1]
    results = [(1, 1), (1, 0.5), (1, 0), (0.5, 0.5), (0.5, 0)]
    games = []
    for seed, (first, second) in enumerate(results):
        games.append(Game("a", "b", first, unit=seed, stratum="ab"))
        games.append(Game("b", "a", 1 - second, unit=seed, stratum="ab"))  # stored from b's side
    st = pair_stats(games)[("a", "b")]
    assert (st.wins, st.draws, st.losses) == (4, 4, 2)
    assert st.pentanomial == [0, 1, 2, 1, 1] and st.unpaired == 0
    # pair means x = 1, .75, .5, .5, .25: mean 0.6, variance 0.325/5 = 0.065,
    # stderr sqrt(0.065/5) = 0.114018; LOS = Phi(0.1/0.114018) = Phi(0.87706) = 0.80977;
    # error = (Elo(0.6 + 1.96*0.114018) - Elo(0.6 - 1.96*0.114018)) / 2 = 177.57
    assert st.pentanomial_score == pytest.approx(0.6)
    assert st.pentanomial_stderr() == pytest.approx(0.114018, abs=1e-6)
    assert st.los() == pytest.approx(0.809772, abs=1e-6)
    assert st.elo_error() == pytest.approx(177.57, abs=0.01)
    # the same games seen from b: mirrored counts
    flipped = pair_stats([Game(g.b, g.a, 1 - g.score, g.unit, g.stratum) for g in games])[("a", "b")]
    assert flipped.pentanomial == st.pentanomial
    # a seed whose partner game is missing is counted in W/D/L but not in the pentanomial
    lone = pair_stats(games + [Game("a", "b", 1.0, unit=99, stratum="ab")])[("a", "b")]
    assert lone.wins == 5 and lone.unpaired == 1 and sum(lone.pentanomial) == 5


def test_bradley_terry_two_agents_is_the_odds():
    # 3 wins in 4 games: the maximum-likelihood difference (no prior) is 400 log10(3) = 190.85 Elo
    games = [Game("a", "b", 1.0), Game("a", "b", 1.0), Game("b", "a", 0.0), Game("b", "a", 1.0)]
    fit = fit_bradley_terry(games, n_bootstrap=0, prior_draws=0)
    diff = fit.difference("a", "b")[0]
    assert diff == pytest.approx(190.85, abs=0.5)
    assert fit.ratings.sum() == pytest.approx(0.0, abs=1e-9)
    anchored = fit_bradley_terry(games, n_bootstrap=0, anchor="b", prior_draws=0)
    assert anchored.as_dict()["b"]["rating"] == 0 and anchored.as_dict()["a"]["rating"] == pytest.approx(diff)
    # a draw is half a win to each: 2 wins + 2 draws in 4 = score .75 -> the same difference
    drawn = [Game("a", "b", 1.0), Game("a", "b", 1.0), Game("a", "b", 0.5), Game("a", "b", 0.5)]
    assert fit_bradley_terry(drawn, n_bootstrap=0, prior_draws=0).difference("a", "b")[0] == pytest.approx(diff, abs=0.5)


def _fit_difference(games, a, b, n_bootstrap=1000):
    return fit_bradley_terry(games, n_bootstrap=n_bootstrap, seed=7).difference(a, b)


def test_bradley_terry_prior_by_hand():
    # with the prior's two virtual draws, 3 wins in 4 is (3 + 1) / (4 + 2): 400 log10(2) = 120.41
    games = [Game("a", "b", 1.0), Game("a", "b", 1.0), Game("b", "a", 0.0), Game("b", "a", 1.0)]
    assert fit_bradley_terry(games, n_bootstrap=0).difference("a", "b")[0] == pytest.approx(120.41, abs=0.5)


def test_a_4_0_sweep_gets_a_finite_rating_and_an_honest_interval():
    # two seeds, each won from both sides: 4-0. The prior caps the rating at 5:1 odds (+280 Elo),
    # and two seeds cannot rule out that the agents are equal: the interval reaches below 0
    sweep = [Game("a", "b", 1.0, unit=s, stratum="ab") for s in (0, 0, 1, 1)]
    point, lo, hi = _fit_difference(sweep, "a", "b")
    assert point == pytest.approx(400 * math.log10(5), abs=0.5)
    assert math.isfinite(lo) and math.isfinite(hi) and lo <= point <= hi
    assert lo < 0 and hi - lo > 200
    # forty games won say more, and still a finite amount
    big = [Game("a", "b", 1.0, unit=s, stratum="ab") for s in range(20) for _ in range(2)]
    point40, lo40, hi40 = _fit_difference(big, "a", "b")
    assert point < point40 < 700 and lo40 > 300 and hi40 - lo40 < hi - lo


def test_13_3_against_8_8_gives_a_sane_interval():
    # a gauntlet: A went 13-3 and B 8-8 against the same yardstick over 8 paired seeds. Raw
    # scores say Elo(13/16) - Elo(8/16) = +255; the interval must be finite, hold the point and
    # be as wide as 8 seeds make it (not "+1339 [+1254, +1576]")
    a_results = [1] * 13 + [0] * 3
    b_results = [1, 0] * 8
    games = []
    for seed in range(8):
        for side in range(2):
            games.append(Game("A", "X", float(a_results[2 * seed + side]), unit=seed, stratum=("A", "X")))
            games.append(Game("B", "X", float(b_results[2 * seed + side]), unit=seed, stratum=("B", "X")))
    point, lo, hi = _fit_difference(games, "A", "B")
    assert 150 < point < 255 and lo <= point <= hi
    assert 0 < lo < 120 and 280 < hi < 450


def test_bootstrap_interval_does_not_depend_on_an_unrelated_pair():
    # the interval of a-b stays the same whether or not c-d (never meeting a or b) ended alike
    ab = [Game("a", "b", float(s % 3 != 0), unit=s // 2, stratum="ab") for s in range(12)]
    cd_same = [Game("c", "d", 1.0, unit=s // 2, stratum="cd") for s in range(12)]
    cd_mixed = [Game("c", "d", float(s % 2), unit=s // 2, stratum="cd") for s in range(12)]
    first = _fit_difference(ab + cd_same, "a", "b", 2000)
    second = _fit_difference(ab + cd_mixed, "a", "b", 2000)
    assert first[0] == pytest.approx(second[0], abs=1e-6)
    assert all(math.isfinite(x) for x in first + second)
    assert first[1] == pytest.approx(second[1], abs=30) and first[2] == pytest.approx(second[2], abs=30)


def test_seeds_needed_follows_the_square_root_law():
    # an interval of half-width 100 from 4 seeds shrinks to 50 with 16
    assert seeds_needed(50, -50, 150, 4) == 16
    assert seeds_needed(0, -50, 150, 4) is None and seeds_needed(50, math.nan, math.nan, 4) is None
    assert seeds_needed(500, -50, 150, 4) == 5  # already separated: one more seed, never fewer


def _simulate(true_elo: dict, per_pair: int, rng) -> list[Game]:
    names = list(true_elo)
    games = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            p = 1.0 / (1.0 + 10 ** ((true_elo[b] - true_elo[a]) / 400))
            for seed in range(per_pair):
                games.append(Game(a, b, float(rng.random() < p), unit=seed, stratum=(a, b)))
    return games


def test_bootstrap_intervals_cover_the_true_strengths_at_about_the_nominal_rate():
    true_elo = {"a": -150.0, "b": 0.0, "c": 60.0, "d": 250.0}
    truth = np.array(list(true_elo.values()))
    truth -= truth.mean()  # fitted ratings are centred on mean 0
    rng = np.random.default_rng(20250)
    covered, total, errors = 0, 0, []
    for rep in range(60):
        fit = fit_bradley_terry(_simulate(true_elo, 60, rng), agents=list(true_elo), n_bootstrap=200, seed=rep)
        covered += int(np.sum((fit.lower <= truth) & (truth <= fit.upper)))
        total += len(truth)
        errors.append(fit.ratings - truth)
    rate = covered / total
    assert 0.88 <= rate <= 0.99, f"95% intervals covered the truth {rate:.1%} of the time"
    bias = np.mean(errors, axis=0)
    assert np.all(np.abs(bias) < 15), f"ratings are biased: {bias}"
    # intervals shrink as games grow: sqrt(n) law within a loose factor
    small = fit_bradley_terry(_simulate(true_elo, 20, rng), n_bootstrap=200)
    large = fit_bradley_terry(_simulate(true_elo, 320, rng), n_bootstrap=200)
    ratio = np.mean(small.upper - small.lower) / np.mean(large.upper - large.lower)
    assert 2.5 < ratio < 6.0, ratio


def test_bootstrap_keeps_each_pairings_games_and_pairs():
    # a gauntlet: c and d only ever meet a and b; the resampling stays within pairings, so
    # every resample is still connected and finite
    rng = np.random.default_rng(1)
    games = [g for g in _simulate({"a": 0, "b": 50, "c": 100, "d": -50}, 10, rng)
             if {g.a, g.b} & {"a", "b"} and not {g.a, g.b} == {"a", "b"}]
    fit = fit_bradley_terry(games, n_bootstrap=300, seed=3)
    assert np.all(np.isfinite(fit.samples)) and fit.samples.shape == (300, 4)
    point, lo, hi = fit.difference("c", "d")
    assert lo <= point <= hi


def test_openskill_ranks_the_stronger_agent_first():
    rng = np.random.default_rng(5)
    games = _simulate({"strong": 300, "mid": 0, "weak": -300}, 30, rng)
    ratings = openskill_ratings(games)
    assert ratings["strong"]["mu"] > ratings["mid"]["mu"] > ratings["weak"]["mu"]
    assert all(r["sigma"] < 25 / 3 for r in ratings.values())


def test_mean_interval_and_t_quantile():
    assert t_quantile(0.975, 4) == pytest.approx(2.776445, abs=1e-5)  # tables: t(0.975, 4) = 2.7764
    x = [0.10, 0.30, 0.20, 0.40, 0.25]
    m = mean_interval(x)
    sd = np.std(x, ddof=1)
    assert m["mean"] == pytest.approx(0.25)
    assert m["upper"] - m["mean"] == pytest.approx(2.776445 * sd / math.sqrt(5), abs=1e-6)
    boot = mean_interval(x, method="bootstrap", seed=1)
    assert boot["lower"] < 0.25 < boot["upper"] and boot["upper"] - boot["lower"] < m["upper"] - m["lower"]
    assert mean_interval([1.0])["n"] == 1 and math.isnan(mean_interval([])["mean"])


def test_pair_statistics_need_enough_games():
    few = PairStats("a", "b", wins=4, pentanomial=[0, 0, 0, 0, 2])
    assert not few.enough() and few.as_dict()["los"] is None and few.as_dict()["elo_error"] is None
    assert math.isfinite(few.elo)  # a sweep's Elo is finite (the prior)
    many = PairStats("a", "b", wins=14, draws=2, losses=4, pentanomial=[1, 1, 2, 2, 4])
    assert sum(many.pentanomial) == MIN_PAIRS and many.enough() and 0.5 < many.as_dict()["los"] < 1
    alike = PairStats("a", "b", draws=20, pentanomial=[0, 0, 10, 0, 0])
    assert alike.enough() and not alike.spread() and alike.as_dict()["los"] is None
    assert not PairStats("a", "b", wins=10, losses=9).enough(paired=False)
    assert PairStats("a", "b", wins=11, losses=9).enough(paired=False)


def test_bounded_metrics_get_bounded_intervals():
    # rounds won of 0 or 1, a fill rate in [0, 1], blocked attacks >= 0: a t interval leaves the
    # range at the edges (0.92 [0.80, 1.04]); the bootstrap's never does
    rounds = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    t = mean_interval(rounds)
    assert t["upper"] > 1  # what the old report showed
    for values in (rounds, [0.97, 1.0, 1.0, 0.99, 1.0], [0, 0, 0, 0, 3, 0], [0.0, 0.02, 0.0]):
        m = bootstrap_mean(values, seed=1)
        assert min(values) <= m["lower"] <= m["mean"] <= m["upper"] <= max(values), (values, m)
        assert m["upper"] > m["lower"]
    # seeds resampled together: the matches of one seed count as one unit
    seeded = bootstrap_mean([1.0, 1.0, 0.0, 0.0], units=[0, 0, 1, 1], strata=["p", "p", "p", "p"], seed=1)
    assert seeded["mean"] == 0.5 and 0 <= seeded["lower"] < 0.5 < seeded["upper"] <= 1
    assert math.isnan(bootstrap_mean([0.5])["lower"]) and bootstrap_mean([])["n"] == 0


def test_pareto_front():
    points = {"fast-weak": (0.0, 10.0), "slow-strong": (100.0, 200.0), "dominated": (-10.0, 50.0),
              "middle": (50.0, 60.0), "tie": (50.0, 60.0)}
    assert sorted(pareto_front(points)) == ["fast-weak", "middle", "slow-strong", "tie"]
