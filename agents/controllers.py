"""Precision controllers: before each decision of an adaptive agent, pick the candidate (a model
at a precision) that decides it.

A controller sees one ``Choice`` per decision (the scheduler's ``DecisionContext``, the game's
urgency where it gives one, a prompt-length bucket) and each candidate's latency as learned
online by a ``LatencyModel`` from what the clock charged: real time under ``measured`` and
``wall``, the profile's draws under ``profile``. It returns the index of a candidate. Nothing
here draws random numbers or reads a clock, so under the ``profile`` clock the same match
makes the same choices on any machine.

Candidates carry an accuracy rank (``rank`` 0 = most accurate). The documented order: the
candidate with more parameters first; within one model, more bits per weight first (bf16 16,
fp8 8, fpx:g 8-4g, mxfp4 4.25, nvfp4 4.5 counts as 4: its block scales buy accuracy, not
rank over fp8); a user's ``agreement`` figures (the share of decisions that match the
reference policy, e.g. from ``fpx-arena eval``) replace that order where given.

Controllers (``?controller=<name>`` on an adaptive spec; settings as further query options):

- ``deadline``: the most accurate candidate whose predicted landing tick is no later than the
  tick the decision may still make; where none makes it, the most accurate of those that land
  first. See ``DeadlineController``.
- ``bandit``: UCB1 over candidates, one bandit per urgency bucket, on the utility the agent
  can observe of each decision: its accuracy prior minus a price for every tick it landed late,
  and with ``reward_weight`` the reward the game paid until the next decision. See
  ``BanditController``.
- ``fixed``: always candidate ``index`` (a control condition, and for tests).
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

from ..errors import SpecError

# How a prompt's length enters the latency model: the observation text's characters, in
# buckets that double (0: < 128 chars, 1: < 256, ...). Characters are known before the
# decision without tokenizing, and a decision's cost grows with the tokens they make.
BUCKET_BASE_CHARS = 128
MAX_BUCKET = 8
URGENCY_BUCKETS = 4


def precision_bits(precision: str) -> float:
    """Average stored bits per block weight of a precision string (scales not counted)."""
    p = precision.lower().split(",", 1)[0]
    table = {"fp32": 32.0, "bf16": 16.0, "fp8": 8.0, "nvfp4": 4.0, "fp4": 4.0, "mxfp4": 4.0}
    if p in table:
        return table[p]
    if p.startswith("fpx:"):
        try:
            gamma = float(p[4:])
        except ValueError:
            raise SpecError(f"bad fpx precision {precision!r}: gamma must be a number") from None
        return 8.0 - 4.0 * gamma
    return 8.0  # a plan file: rank it beside fp8 (its formats are a mix of fp8 and fp4)


@dataclass
class CandidateInfo:
    key: str                 # "<model>@<precision>", what the trace and the profile clock name
    model: str
    precision: str
    params: int = 0          # parameters of the model (0 where unknown)
    bits: float = 16.0
    agreement: float | None = None
    rank: int = 0            # 0 = most accurate


def rank_candidates(cands: list[CandidateInfo]) -> None:
    """Set each candidate's ``rank`` by the documented accuracy order (module doc)."""
    if all(c.agreement is not None for c in cands):
        order = sorted(range(len(cands)), key=lambda i: (-cands[i].agreement, -cands[i].params, -cands[i].bits, i))
    else:
        order = sorted(range(len(cands)), key=lambda i: (-cands[i].params, -cands[i].bits, i))
    for r, i in enumerate(order):
        cands[i].rank = r


def prompt_bucket(chars: int) -> int:
    b, size = 0, BUCKET_BASE_CHARS
    while chars >= size and b < MAX_BUCKET:
        b, size = b + 1, size * 2
    return b


class LatencyModel:
    """Each candidate's charged latency, learned online per prompt-length bucket: an
    exponentially weighted mean and variance (weight ``alpha`` on the newest sample). A bucket
    with no sample yet borrows the candidate's estimate over all buckets."""

    def __init__(self, n: int, alpha: float = 0.2):
        self.n, self.alpha = n, alpha
        # per candidate: [over all buckets, bucket 0, ..., MAX_BUCKET], each None or [count, mean, var];
        # lists, not a dict of tuples: this runs before every decision, where it is the overhead
        self._rows = [[None] * (MAX_BUCKET + 2) for _ in range(n)]

    def observe(self, cand: int, bucket: int, ms: float) -> None:
        row = self._rows[cand]
        for j in (0, bucket + 1):
            s = row[j]
            if s is None:
                row[j] = [1, ms, 0.0]
                continue
            a = max(self.alpha, 1.0 / (s[0] + 1))  # a plain mean until 1/alpha samples
            d = ms - s[1]
            s[1] += a * d
            s[2] = (1 - a) * (s[2] + a * d * d)
            s[0] += 1

    def prior(self, cand: int, ms: float) -> None:
        """Start a candidate from a known latency (one sample's weight; buckets borrow it until
        they have their own), so that the controller need not try it to know it."""
        self._rows[cand][0] = [1, float(ms), 0.0]

    def estimate(self, cand: int, bucket: int):
        """(mean ms, std ms, samples) or None where the candidate was never charged."""
        row = self._rows[cand]
        s = row[bucket + 1] or row[0]
        return None if s is None else (s[1], math.sqrt(max(s[2], 0.0)), s[0])

    def upper(self, cand: int, bucket: int, k: float) -> float | None:
        """mean + k x std, or None where the candidate was never charged."""
        row = self._rows[cand]
        s = row[bucket + 1] or row[0]
        return None if s is None else s[1] + k * math.sqrt(max(s[2], 0.0))

    def count(self, cand: int) -> int:
        s = self._rows[cand][0]
        return 0 if s is None else s[0]


@dataclass(slots=True)
class Choice:
    """What a controller knows when it picks a candidate."""
    dt_ms: float
    time_left_ms: float           # to the deadline of the tick the action can still make
    overage_left_ms: float = 0.0
    urgency: float | None = None  # the game's signal in [0, 1], None where it gives none
    bucket: int = 0               # prompt-length bucket

    @property
    def urgency_bucket(self) -> int:
        """0 .. URGENCY_BUCKETS-1, or URGENCY_BUCKETS where the game gives no signal."""
        if self.urgency is None:
            return URGENCY_BUCKETS
        return min(URGENCY_BUCKETS - 1, int(max(0.0, min(1.0, self.urgency)) * URGENCY_BUCKETS))


def _number(name: str, value, *, low: float = 0.0, high: float = math.inf, integer: bool = False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        bounds = f"in [{low:g}, {high:g}]" if math.isfinite(high) else f">= {low:g}"
        raise SpecError(f"controller setting {name}={value!r}: expected {kind} {bounds}")
    return int(value) if integer else float(value)


class Controller:
    name = "?"
    predicted: float | None = None  # the latency (ms) the last choose() expected of its choice
    learns_outcomes = False          # observe() wants the outcome (the reward paid until the next decision)

    def __init__(self, candidates: list[CandidateInfo], latency: LatencyModel):
        self.candidates, self.latency = candidates, latency
        self.by_rank = sorted(range(len(candidates)), key=lambda i: candidates[i].rank)

    def choose(self, c: Choice) -> int:
        raise NotImplementedError

    def observe(self, cand: int, c: Choice, charged_ms: float, outcome: float | None = None) -> None:
        """The clock charged ``charged_ms`` for the decision made under ``c`` by ``cand``, and
        the game paid ``outcome`` per tick until the next decision (None where unknown)."""

    def predicted_ms(self, cand: int, c: Choice) -> float | None:
        return None

    def allowed_ticks(self, c: Choice, patience_ms: float = 0.0, bank_share: float = 0.0,
                      patience_ticks: float = 0.0) -> int:
        """The latest landing (in ticks after the observation) that still counts as in time: the
        tick the decision may still make, plus a share of the overage bank, plus, where the game
        reports urgency u, (1 - u) x the patience (``patience_ms`` + ``patience_ticks`` ticks)."""
        budget = c.time_left_ms + bank_share * max(0.0, c.overage_left_ms)
        if c.urgency is not None:
            patience = patience_ms + patience_ticks * c.dt_ms
            budget += (1.0 - max(0.0, min(1.0, c.urgency))) * patience
        return max(1, math.ceil(budget / c.dt_ms - 1e-9))


class FixedController(Controller):
    """Always the same candidate (``index``, in spec order)."""
    name = "fixed"

    def __init__(self, candidates, latency, index: int = 0):
        super().__init__(candidates, latency)
        self.index = _number("index", index, low=0, high=len(candidates) - 1, integer=True)

    def choose(self, c: Choice) -> int:
        return self.index


class DeadlineController(Controller):
    """The rule: predict each candidate's latency as mean + ``k`` x std of what the clock
    charged it (for this prompt-length bucket), plus ``margin_ms``; turn it into the tick it
    lands on, ceil(predicted / dt). The decision may land up to the deadline of the next tick,
    extended by ``bank_share`` of the overage bank left and, where the game reports urgency
    u, by (1 - u) x (``patience_ms`` + ``patience_ticks`` ticks): a calm moment buys a slower,
    more accurate candidate. Take the most accurate candidate landing in time; if
    none does, the most accurate of those landing on the earliest tick. When recent
    decisions landed later than predicted, ``k`` grows by the share of them that did, so a
    noisy candidate loses its place before it costs more ticks. A candidate never charged
    is predicted at 0 ms (tried once, most accurate first), then it is known."""
    name = "deadline"

    def __init__(self, candidates, latency, k: float = 1.0, margin_ms: float = 0.0, patience_ms: float = 0.0,
                 bank_share: float = 0.1, patience_ticks: float = 0.0):
        super().__init__(candidates, latency)
        self.k = _number("k", k, high=10)
        self.margin_ms = _number("margin_ms", margin_ms, high=1e6)
        self.patience_ms = _number("patience_ms", patience_ms, high=1e6)
        self.bank_share = _number("bank_share", bank_share, high=1)
        self.patience_ticks = _number("patience_ticks", patience_ticks, high=1e4)
        self._misses: list[bool] = []  # recent decisions: charged later than predicted?

    def _scale(self) -> float:
        """k, grown by the share of recent decisions charged later than predicted."""
        misses = self._misses
        return self.k * (1.0 + sum(misses) / len(misses)) if misses else self.k

    def predicted_ms(self, cand: int, c: Choice) -> float:
        upper = self.latency.upper(cand, c.bucket, self._scale())
        return 0.0 if upper is None else upper + self.margin_ms

    def choose(self, c: Choice) -> int:
        allowed = self.allowed_ticks(c, self.patience_ms, self.bank_share, self.patience_ticks)
        upper, scale, bucket, dt = self.latency.upper, self._scale(), c.bucket, c.dt_ms
        best = best_key = best_ms = None
        for i in self.by_rank:
            ms = upper(i, bucket, scale)
            ms = 0.0 if ms is None else ms + self.margin_ms
            ticks = max(1, math.ceil(ms / dt - 1e-9))
            if ticks <= allowed:
                self.predicted = ms
                return i
            key = (ticks, self.candidates[i].rank)
            if best_key is None or key < best_key:
                best, best_key, best_ms = i, key, ms
        self.predicted = best_ms
        return best

    def observe(self, cand: int, c: Choice, charged_ms: float, outcome: float | None = None) -> None:
        upper = self.latency.upper(cand, c.bucket, self.k)
        if upper is not None:
            self._misses.append(charged_ms > upper + self.margin_ms)
            del self._misses[:-8]


class BanditController(Controller):
    """UCB1 per urgency bucket (the game's urgency in URGENCY_BUCKETS bands, plus one bucket
    where it gives none). The utility of a decision is quality(c) - cost x late x w(u): quality
    falls linearly with the accuracy rank from 1 (most accurate) to 1 - ``spread`` (least);
    ``late`` is how many ticks after the allowed one (see Controller.allowed_ticks, with
    ``patience_ms`` and ``patience_ticks``) the clock made it land; w(u) = 0.5 + u weighs
    lateness up with urgency (1 where there is no signal). The arm is mean utility +
    ``explore`` x sqrt(ln N / n); untried arms first, most accurate first; ties to the more
    accurate. Utilities are averaged with weight ``alpha`` on the newest (0: plain mean), so
    it follows a latency that drifts. With ``reward_weight`` w > 0 the bandit also learns from
    outcomes: w x the reward the game paid per tick until the next decision, standardized by
    the mean and spread of that outcome over the match so far, is added to the utility."""
    name = "bandit"

    def __init__(self, candidates, latency, explore: float = 0.3, cost: float = 0.5, spread: float = 0.5,
                 patience_ms: float = 0.0, alpha: float = 0.05, patience_ticks: float = 0.0,
                 reward_weight: float = 0.0):
        super().__init__(candidates, latency)
        self.explore = _number("explore", explore, high=100)
        self.cost = _number("cost", cost, high=1e3)
        self.spread = _number("spread", spread, high=1)
        self.patience_ms = _number("patience_ms", patience_ms, high=1e6)
        self.alpha = _number("alpha", alpha, high=1)
        self.patience_ticks = _number("patience_ticks", patience_ticks, high=1e4)
        self.reward_weight = _number("reward_weight", reward_weight, high=1e3)
        self._outcomes = [0, 0.0, 0.0]  # count, mean, sum of squared deviations (Welford)
        n = len(candidates)
        self.quality = [1.0 - self.spread * (cd.rank / (n - 1) if n > 1 else 0.0) for cd in candidates]
        self._arms: dict[int, list] = {}  # urgency bucket -> [[count, mean utility] per candidate]

    def _bucket(self, b: int) -> list:
        if b not in self._arms:
            self._arms[b] = [[0, 0.0] for _ in self.candidates]
        return self._arms[b]

    def choose(self, c: Choice) -> int:
        arms = self._bucket(c.urgency_bucket)
        for i in self.by_rank:
            if arms[i][0] == 0:
                return i
        total = sum(a[0] for a in arms)
        best, best_val = None, -math.inf
        for i in self.by_rank:
            n, mean = arms[i]
            val = mean + self.explore * math.sqrt(math.log(total) / n)
            if val > best_val + 1e-12:
                best, best_val = i, val
        return best

    def utility(self, cand: int, c: Choice, charged_ms: float) -> float:
        ticks = max(1, math.ceil(charged_ms / c.dt_ms - 1e-9))
        late = max(0, ticks - self.allowed_ticks(c, self.patience_ms, patience_ticks=self.patience_ticks))
        weight = 1.0 if c.urgency is None else 0.5 + max(0.0, min(1.0, c.urgency))
        return self.quality[cand] - self.cost * late * weight

    @property
    def learns_outcomes(self) -> bool:
        return self.reward_weight > 0

    @property
    def outcomes_seen(self) -> int:
        return self._outcomes[0]

    def outcome_score(self, outcome: float | None) -> float:
        """The outcome standardized against the match's outcomes so far (then counted in)."""
        if outcome is None or not math.isfinite(outcome):
            return 0.0
        n, mean, m2 = self._outcomes
        z = (outcome - mean) / math.sqrt(m2 / (n - 1)) if n >= 2 and m2 > 0 else 0.0
        n += 1
        d = outcome - mean
        mean += d / n
        self._outcomes = [n, mean, m2 + d * (outcome - mean)]
        return max(-3.0, min(3.0, z))

    def observe(self, cand: int, c: Choice, charged_ms: float, outcome: float | None = None) -> None:
        arm = self._bucket(c.urgency_bucket)[cand]
        u = self.utility(cand, c, charged_ms)
        if self.reward_weight:
            u += self.reward_weight * self.outcome_score(outcome)
        arm[0] += 1
        a = max(self.alpha, 1.0 / arm[0]) if self.alpha else 1.0 / arm[0]
        arm[1] += a * (u - arm[1])


CONTROLLERS = {cls.name: cls for cls in (DeadlineController, BanditController, FixedController)}


def make_controller(name: str, candidates: list[CandidateInfo], latency: LatencyModel,
                    settings: dict | None = None) -> Controller:
    """A controller by name with its settings; SpecError (one line) for an unknown name or a
    setting it does not take."""
    cls = CONTROLLERS.get(str(name))
    if cls is None:
        raise SpecError(f"unknown controller {name!r}; choose one of {', '.join(CONTROLLERS)}")
    settings = dict(settings or {})
    try:
        return cls(candidates, latency, **settings)
    except TypeError:
        known = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "candidates", "latency")]
        bad = sorted(set(settings) - set(known))
        raise SpecError(f"controller {name!r} has no setting {', '.join(bad) or '?'}; "
                        f"it takes {', '.join(known) or 'none'}") from None


__all__ = ["CandidateInfo", "Choice", "Controller", "DeadlineController", "BanditController",
           "FixedController", "LatencyModel", "CONTROLLERS", "make_controller", "precision_bits",
           "prompt_bucket", "rank_candidates"]
