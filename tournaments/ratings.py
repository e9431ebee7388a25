"""Ratings from match results: Bradley-Terry with a weak prior and paired-seed bootstrap
intervals, per-pair Elo statistics (trinomial and pentanomial, as chess engine testers report
them), OpenSkill, and game metrics with bounded intervals.

Conventions: a game between i and j gives i a score s in {0, 0.5, 1} (a draw is half a win to
each side). Ratings are on the Elo scale: P(i beats j) = 1 / (1 + 10 ** ((R_j - R_i) / 400)).

What the numbers may claim, and why:
- The fit adds PRIOR_DRAWS virtual draws between every two agents that met (BayesElo's default
  prior), so a sweep gets a finite rating that grows with the games behind it (4-0: +280 Elo at
  most, 40-0: +645) instead of infinity.
- The interval is a Bayesian bootstrap over seeds: each resample reweights the seeds of every
  pairing (the two games of a paired seed stay together) with Dirichlet weights, beside
  PRIOR_SEEDS virtual seed per pairing spread evenly over every result a seed could have had.
  A pairing whose few seeds all ended alike thus gets an interval as wide as those few seeds
  leave open, never "+-0"; with many seeds the virtual seed weighs nothing.
- Per-pair Elo error and LOS rest on a normal approximation: below MIN_PAIRS seed pairs
  (MIN_GAMES unpaired games) `PairStats.enough()` is False and reports say "too few games".
- Game metrics get bootstrap percentile intervals, which never leave the range of the values
  (a rate stays in [0, 1], a count stays >= 0).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

ELO_PER_NAT = 400.0 / math.log(10.0)  # Elo points per unit of natural log-strength
Z95 = NormalDist().inv_cdf(0.975)
PRIOR_DRAWS = 2.0  # virtual draws between every two agents that met
PRIOR_SEEDS = 1.0  # virtual seeds per pairing in each bootstrap resample, spread over all results
MIN_PAIRS = 10  # seed pairs before a per-pair Elo error or LOS is shown
MIN_GAMES = 20  # the same for unpaired games


@dataclass
class Game:
    """One decided game between two agents: `score` is a's score (1 win, 0.5 draw, 0 loss).
    `unit` groups games resampled together by the bootstrap (the two games of one paired seed);
    `stratum` groups units resampled within (one pairing in one arena)."""
    a: str
    b: str
    score: float
    unit: object = None
    stratum: object = None


# --------------------------------------------------------------------------- Bradley-Terry

def _aggregate(n_agents, ia, ib, score, weight):
    """Score and game-count matrices: S[i, j] = score of i against j, N[i, j] = games i-j."""
    S = np.zeros((n_agents, n_agents))
    N = np.zeros((n_agents, n_agents))
    np.add.at(S, (ia, ib), weight * score)
    np.add.at(S, (ib, ia), weight * (1.0 - score))
    np.add.at(N, (ia, ib), weight)
    np.add.at(N, (ib, ia), weight)
    return S, N


def _fit_matrix(S, N, ridge, iters=100, tol=1e-10):
    """Maximise sum_ij S_ij log sigma(t_i - t_j) - ridge/2 |t|^2 by Newton's method.

    The prior's virtual draws keep every connected group finite; the tiny ridge only fixes the
    free shift between groups that never met (its optimum has sum(t) = 0)."""
    k = S.shape[0]
    theta = np.zeros(k)
    eye = np.eye(k)

    def objective(t):
        d = t[:, None] - t[None, :]
        return float(np.sum(S * -np.logaddexp(0.0, -d)) - 0.5 * ridge * t @ t)

    current = objective(theta)
    for _ in range(iters):
        d = theta[:, None] - theta[None, :]
        p = 1.0 / (1.0 + np.exp(-d))
        grad = (S - N * p).sum(axis=1) - ridge * theta
        w = N * p * (1.0 - p)
        hess = w - np.diag(w.sum(axis=1)) - ridge * eye  # negative definite
        step = np.linalg.solve(hess, -grad)
        scale = 1.0
        while True:  # damped Newton: never accept a step that lowers the objective
            candidate = theta + scale * step
            value = objective(candidate)
            if value >= current - 1e-12 or scale < 1e-4:
                break
            scale *= 0.5
        theta, improvement = candidate, value - current
        current = value
        if np.max(np.abs(scale * step)) < tol or abs(improvement) < tol:
            break
    return theta


@dataclass
class BTResult:
    agents: list
    ratings: np.ndarray  # Elo scale, anchored
    lower: np.ndarray  # bootstrap percentile interval
    upper: np.ndarray
    samples: np.ndarray | None = None  # [n_bootstrap, n_agents], anchored like `ratings`
    anchor: str | None = None
    confidence: float = 0.95
    seeds: int = 0  # most seeds (bootstrap units) of any pairing

    def as_dict(self) -> dict:
        return {a: {"rating": float(r), "lower": float(lo), "upper": float(hi)}
                for a, r, lo, hi in zip(self.agents, self.ratings, self.lower, self.upper)}

    def difference(self, a: str, b: str) -> tuple[float, float, float]:
        """R_a - R_b with its bootstrap percentile interval (from the same resamples, so the
        correlation between the two ratings is kept)."""
        i, j = self.agents.index(a), self.agents.index(b)
        point = float(self.ratings[i] - self.ratings[j])
        if self.samples is None or not len(self.samples):
            return point, float("nan"), float("nan")
        diff = self.samples[:, i] - self.samples[:, j]
        alpha = (1.0 - self.confidence) / 2.0
        lo, hi = float(np.quantile(diff, alpha)), float(np.quantile(diff, 1.0 - alpha))
        return point, min(lo, point), max(hi, point)


def _with_prior(S, N, met, prior_draws):
    return S + 0.5 * prior_draws * met, N + prior_draws * met


def fit_bradley_terry(games: list[Game], *, agents: list[str] | None = None, n_bootstrap: int = 1000,
                      seed: int = 0, anchor: str | None = None, prior_draws: float = PRIOR_DRAWS,
                      prior_seeds: float = PRIOR_SEEDS, confidence: float = 0.95,
                      ridge: float = 1e-6) -> BTResult:
    """Bradley-Terry ratings (Elo scale, maximum a posteriori under `prior_draws` virtual draws
    per pair that met) with paired-seed Bayesian bootstrap intervals (see the module doc).

    Units (a game, or the games of one seed) are reweighted within their stratum (a pairing), so
    every resample keeps the tournament's design. Ratings are centred on mean 0, or on
    `anchor` = 0."""
    names = list(agents) if agents is not None else sorted({g.a for g in games} | {g.b for g in games})
    index = {a: i for i, a in enumerate(names)}
    if anchor is not None and anchor not in index:
        raise ValueError(f"anchor {anchor!r} is not one of the rated agents")
    k = len(names)
    if not games:
        nan = np.full(k, np.nan)
        return BTResult(names, np.zeros(k), nan, nan.copy(), None, anchor, confidence)
    ia = np.array([index[g.a] for g in games])
    ib = np.array([index[g.b] for g in games])
    score = np.array([float(g.score) for g in games])

    def anchored(theta):
        r = theta * ELO_PER_NAT
        return r - (r[index[anchor]] if anchor is not None else r.mean())

    S, N = _aggregate(k, ia, ib, score, np.ones(len(games)))
    met = N > 0
    ratings = anchored(_fit_matrix(*_with_prior(S, N, met, prior_draws), ridge))

    # bootstrap units: the games of one seed of one pairing (or one game where unpaired)
    unit_keys = [(g.stratum, g.unit if g.unit is not None else ("game", n)) for n, g in enumerate(games)]
    unit_index: dict = {}
    game_unit = np.array([unit_index.setdefault(u, len(unit_index)) for u in unit_keys])
    sizes = Counter(game_unit.tolist())
    strata: dict = {}
    for (stratum, _), u in unit_index.items():
        strata.setdefault(stratum, []).append(u)
    seeds = max(len(v) for v in strata.values())
    samples = None
    lower = upper = np.full(k, np.nan)
    if n_bootstrap > 0:
        # virtual seeds: for each stratum, one unit per result a seed of its usual size could
        # have (a scores 0, 1/2, ..., g of g games), sharing `prior_seeds` of Dirichlet weight
        v_ia, v_ib, v_score, v_count, alpha, unit_stratum, observed = [], [], [], [], [], [], []
        for s_i, units in enumerate(strata.values()):
            alpha += [1.0] * len(units)
            unit_stratum += [s_i] * len(units)
        n_obs = len(unit_stratum)
        first_game = {u: n for n, u in reversed(list(enumerate(game_unit.tolist())))}
        for s_i, units in enumerate(strata.values()):
            observed.append(len(units))
            g = Counter(sizes[u] for u in units).most_common(1)[0][0]
            ref = games[first_game[units[0]]]
            levels = 2 * g + 1
            for level in range(levels):
                v_ia.append(index[ref.a])
                v_ib.append(index[ref.b])
                v_score.append(level / (2.0 * g))
                v_count.append(float(g))
                alpha.append(prior_seeds / levels)
                unit_stratum.append(s_i)
        all_ia = np.concatenate([ia, np.array(v_ia, dtype=int)])
        all_ib = np.concatenate([ib, np.array(v_ib, dtype=int)])
        all_score = np.concatenate([score, np.array(v_score)])
        row_unit = np.concatenate([game_unit, n_obs + np.arange(len(v_ia))])
        row_count = np.concatenate([np.ones(len(games)), np.array(v_count)])
        alpha_arr, unit_stratum = np.array(alpha), np.array(unit_stratum)
        observed_arr = np.array(observed, dtype=float)
        rng = np.random.default_rng(seed)
        draws = rng.gamma(alpha_arr, size=(n_bootstrap, len(alpha_arr)))
        samples = np.empty((n_bootstrap, k))
        for b in range(n_bootstrap):
            totals = np.bincount(unit_stratum, weights=draws[b], minlength=len(observed))
            weight = draws[b] / np.maximum(totals[unit_stratum], 1e-300) * observed_arr[unit_stratum]
            Sb, Nb = _aggregate(k, all_ia, all_ib, all_score, weight[row_unit] * row_count)
            samples[b] = anchored(_fit_matrix(*_with_prior(Sb, Nb, met, prior_draws), ridge))
        alpha_q = (1.0 - confidence) / 2.0
        # the prior caps a sweep's point estimate at the edge of what its resamples reach:
        # keep the point inside its interval
        lower = np.minimum(np.quantile(samples, alpha_q, axis=0), ratings)
        upper = np.maximum(np.quantile(samples, 1.0 - alpha_q, axis=0), ratings)
    return BTResult(names, ratings, lower, upper, samples, anchor, confidence, seeds)


def seeds_needed(effect: float, lower: float, upper: float, seeds: int) -> int | None:
    """Seeds per pairing at which an interval as wide as [lower, upper] (from `seeds` seeds)
    would shrink, by the 1/sqrt(n) law, to a half-width of |effect|: a rough planning figure,
    None where it cannot be said (no interval, no effect)."""
    half = (upper - lower) / 2.0
    if not (math.isfinite(half) and half > 0 and seeds > 0 and abs(effect) > 0):
        return None
    return max(seeds + 1, math.ceil(seeds * (half / abs(effect)) ** 2))


# --------------------------------------------------------------------------- per-pair statistics

def elo_from_score(score: float) -> float:
    """The Elo difference whose expected score is `score` (+-inf at 1 and 0)."""
    if score >= 1.0:
        return math.inf
    if score <= 0.0:
        return -math.inf
    return -400.0 * math.log10(1.0 / score - 1.0)


def _elo_interval(mean: float, stderr: float) -> tuple[float, float]:
    lo = min(max(mean - Z95 * stderr, 0.0), 1.0)
    hi = min(max(mean + Z95 * stderr, 0.0), 1.0)
    return elo_from_score(lo), elo_from_score(hi)


@dataclass
class PairStats:
    """a's view of its games against b."""
    a: str
    b: str
    wins: int = 0
    draws: int = 0
    losses: int = 0
    pentanomial: list = field(default_factory=lambda: [0, 0, 0, 0, 0])  # pair scores 0, .5, 1, 1.5, 2
    unpaired: int = 0  # games whose seed partner is missing (counted in W/D/L only)

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    @property
    def score(self) -> float:
        return (self.wins + 0.5 * self.draws) / self.games if self.games else float("nan")

    @property
    def elo(self) -> float:
        """The Elo difference of the score with the fit's prior (PRIOR_DRAWS virtual draws), so
        that a sweep is finite; elo_from_score(self.score) is the raw one."""
        if not self.games:
            return float("nan")
        return elo_from_score((self.wins + 0.5 * self.draws + 0.5 * PRIOR_DRAWS) / (self.games + PRIOR_DRAWS))

    def enough(self, paired: bool = True) -> bool:
        """Whether there are games enough for the normal approximation behind elo_error and los."""
        if paired and sum(self.pentanomial):
            return sum(self.pentanomial) >= MIN_PAIRS
        return self.games >= MIN_GAMES

    def trinomial_stderr(self) -> float:
        """Standard error of the mean game score, games treated as independent."""
        n, s = self.games, self.score
        if not n:
            return float("nan")
        var = (self.wins * (1 - s) ** 2 + self.draws * (0.5 - s) ** 2 + self.losses * s ** 2) / n
        return math.sqrt(var / n)

    def pentanomial_stderr(self) -> float:
        """Standard error of the mean score from paired games: the variance is that of the mean
        score of a pair (x in 0, 1/4, ..., 1), which removes the seed's shared luck."""
        pairs = sum(self.pentanomial)
        if not pairs:
            return float("nan")
        xs = np.arange(5) / 4.0
        counts = np.asarray(self.pentanomial, dtype=float)
        mean = float(counts @ xs) / pairs
        var = float(counts @ (xs - mean) ** 2) / pairs
        return math.sqrt(var / pairs)

    @property
    def pentanomial_score(self) -> float:
        pairs = sum(self.pentanomial)
        return float(np.dot(self.pentanomial, np.arange(5) / 4.0)) / pairs if pairs else float("nan")

    def elo_error(self, paired: bool = True) -> float:
        """Half-width of the 95% interval of the Elo difference, mapped through elo_from_score
        (cutechess-cli's error margin; fastchess's with paired=True). The formula alone: check
        enough() before showing it."""
        if paired and sum(self.pentanomial):
            mean, se = self.pentanomial_score, self.pentanomial_stderr()
        else:
            mean, se = self.score, self.trinomial_stderr()
        if not math.isfinite(se):
            return float("nan")
        lo, hi = _elo_interval(mean, se)
        return (hi - lo) / 2.0

    def spread(self, paired: bool = True) -> bool:
        """False when every pair (game) ended alike: the normal approximation then has no variance."""
        se = self.pentanomial_stderr() if paired and sum(self.pentanomial) else self.trinomial_stderr()
        return math.isfinite(se) and se > 0

    def los(self, paired: bool = True) -> float:
        """Likelihood of superiority, P(a is stronger than b). Unpaired: the classic
        0.5 (1 + erf((W - L) / sqrt(2 (W + L)))), draws carry no information. Paired: the normal
        approximation Phi((mean pair score - 1/2) / stderr) from the pentanomial counts. The
        formula alone: check enough() before showing it."""
        if paired and sum(self.pentanomial):
            mean, se = self.pentanomial_score, self.pentanomial_stderr()
            if se == 0:
                return 1.0 if mean > 0.5 else 0.0 if mean < 0.5 else 0.5
            return NormalDist().cdf((mean - 0.5) / se)
        decisive = self.wins + self.losses
        if not decisive:
            return 0.5
        return 0.5 * (1.0 + math.erf((self.wins - self.losses) / math.sqrt(2.0 * decisive)))

    def as_dict(self) -> dict:
        ok = self.enough() and self.spread()
        return {"a": self.a, "b": self.b, "games": self.games, "wins": self.wins, "draws": self.draws,
                "losses": self.losses, "score": self.score, "elo": self.elo,
                "elo_error": self.elo_error() if ok else None, "los": self.los() if ok else None,
                "pentanomial": list(self.pentanomial)}


def pair_stats(games: list[Game]) -> dict[tuple[str, str], PairStats]:
    """W/D/L and pentanomial counts for every pair (keyed (a, b) with a < b, in a's view). Games
    sharing a `unit` form a pair for the pentanomial (each seed played once from each side)."""
    out: dict[tuple[str, str], PairStats] = {}
    units: dict = {}
    for g in games:
        a, b, s = (g.a, g.b, g.score) if g.a < g.b else (g.b, g.a, 1.0 - g.score)
        st = out.setdefault((a, b), PairStats(a, b))
        if s == 1.0:
            st.wins += 1
        elif s == 0.0:
            st.losses += 1
        else:
            st.draws += 1
        if g.unit is not None:
            units.setdefault((a, b, g.stratum, g.unit), []).append(s)
        else:
            st.unpaired += 1
    for (a, b, _, _), scores in units.items():
        st = out[(a, b)]
        if len(scores) == 2:
            st.pentanomial[int(round(2 * sum(scores)))] += 1
        else:
            st.unpaired += len(scores)
    return out


# --------------------------------------------------------------------------- OpenSkill

def openskill_ratings(games: list[Game]) -> dict[str, dict]:
    """Plackett-Luce (OpenSkill) ratings, updated game by game in the given order (give the
    schedule's order, so that the result does not depend on which match finished first)."""
    try:
        from openskill.models import PlackettLuce
    except ImportError:
        from ..errors import UserError

        raise UserError("OpenSkill ratings need the openskill package: pip install openskill") from None
    model = PlackettLuce()
    ratings: dict = {}
    for g in games:
        ra = ratings.setdefault(g.a, model.rating(name=g.a))
        rb = ratings.setdefault(g.b, model.rating(name=g.b))
        ranks = [1, 2] if g.score == 1.0 else [2, 1] if g.score == 0.0 else [1, 1]
        [[ra], [rb]] = model.rate([[ra], [rb]], ranks=ranks)
        ratings[g.a], ratings[g.b] = ra, rb
    return {a: {"mu": r.mu, "sigma": r.sigma, "ordinal": r.ordinal()} for a, r in ratings.items()}


# --------------------------------------------------------------------------- means with intervals

def t_cdf(x: float, df: int) -> float:
    """Student t distribution function for a whole number of degrees of freedom, from the
    finite series for odd and even df (Abramowitz & Stegun 26.7.3-4): exact to rounding."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    theta = math.atan2(x, math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:  # odd: 2/pi * (theta + sin cos (1 + 2/3 cos^2 + ...))
        term, total = math.cos(theta), 0.0
        if df > 1:
            total = term
            for k in range(3, df - 1, 2):
                term *= c2 * (k - 1) / k
                total += term
        a = (2 / math.pi) * (theta + s * total)
    else:  # even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
        term, total = 1.0, 1.0
        for k in range(2, df - 1, 2):
            term *= c2 * (k - 1) / k
            total += term
        a = s * total
    return 0.5 + 0.5 * a


def t_quantile(p: float, df: int) -> float:
    """Student t quantile: t_cdf inverted by bisection to double precision (no scipy)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability must be in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def mean_interval(values, *, confidence: float = 0.95, method: str = "t", n_bootstrap: int = 2000,
                  seed: int = 0) -> dict:
    """Mean of `values` with a t interval (default) or a bootstrap percentile interval."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": float("nan"), "lower": float("nan"), "upper": float("nan")}
    mean = float(x.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "lower": float("nan"), "upper": float("nan")}
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        means = x[rng.integers(0, n, size=(n_bootstrap, n))].mean(axis=1)
        alpha = (1 - confidence) / 2
        return {"n": n, "mean": mean, "lower": float(np.quantile(means, alpha)),
                "upper": float(np.quantile(means, 1 - alpha))}
    half = t_quantile(1 - (1 - confidence) / 2, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return {"n": n, "mean": mean, "lower": mean - half, "upper": mean + half}


def bootstrap_mean(values, units=None, strata=None, *, confidence: float = 0.95, n_bootstrap: int = 1000,
                   seed: int = 0) -> dict:
    """Mean of `values` with a Bayesian-bootstrap percentile interval: the units (e.g. the
    matches of one seed) are reweighted within their strata (e.g. pairings), each stratum keeping
    its share. A weighted mean of the values, the interval never leaves their range, so a rate
    stays in [0, 1] and a count >= 0. Fewer than two units: no interval."""
    keep = [i for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    x = np.asarray([values[i] for i in keep], dtype=float)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": float("nan"), "lower": float("nan"), "upper": float("nan")}
    mean = float(x.mean())
    unit_keys = [(strata[i] if strata is not None else None, units[i] if units is not None else i) for i in keep]
    unit_index: dict = {}
    row_unit = np.array([unit_index.setdefault(u, len(unit_index)) for u in unit_keys])
    if len(unit_index) < 2 or n_bootstrap < 1:
        return {"n": n, "mean": mean, "lower": float("nan"), "upper": float("nan")}
    stratum_index: dict = {}
    unit_stratum = np.array([stratum_index.setdefault(s, len(stratum_index)) for s, _ in unit_index])
    if np.bincount(unit_stratum).max() < 2:  # one seed per stratum: nothing to resample
        return {"n": n, "mean": mean, "lower": float("nan"), "upper": float("nan")}
    rows_per_stratum = np.bincount(unit_stratum[row_unit], minlength=len(stratum_index)).astype(float)
    rng = np.random.default_rng(seed)
    draws = rng.gamma(1.0, size=(n_bootstrap, len(unit_index)))
    rows_per_unit = np.bincount(row_unit, minlength=len(unit_index)).astype(float)
    means = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        # Dirichlet weights of units within each stratum; a stratum keeps its share of the rows
        mass = draws[b] * rows_per_unit
        totals = np.bincount(unit_stratum, weights=mass, minlength=len(stratum_index))
        unit_w = draws[b] / np.maximum(totals[unit_stratum], 1e-300) * rows_per_stratum[unit_stratum]
        w = unit_w[row_unit]
        means[b] = float(w @ x / w.sum())
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return {"n": n, "mean": mean, "lower": float(max(lo, x.min())), "upper": float(min(hi, x.max()))}


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names whose (rating, latency) no other point beats: higher-or-equal rating at
    lower-or-equal latency, strictly better in one."""
    front = []
    for name, (r, lat) in points.items():
        dominated = any((r2 >= r and l2 <= lat) and (r2 > r or l2 < lat)
                        for other, (r2, l2) in points.items() if other != name)
        if not dominated:
            front.append(name)
    return front
