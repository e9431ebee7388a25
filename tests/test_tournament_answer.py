"""The deployment answer never claims more than the games show: it names a winner only when the
interval of its lead excludes 0, says "no answer yet" with the seeds that would be needed
otherwise, makes no pick of a single candidate, and never rests a pick on latency alone."""
import re

import numpy as np

from fpx_arena.tournaments.analysis import analyze
from fpx_arena.tournaments.spec import load_spec
from fpx_arena.tournaments.store import MatchRecord

SPEC = """
name = "answers"
format = "gauntlet"
baselines = ["X", "Y"]
games_per_pairing = {games}
seed = 1
{agents}
[[agents]]
name = "X"
spec = "fighter/weak"

[[agents]]
name = "Y"
spec = "fighter/reactive"

[games.{game}]
clock = "profile"
latency_ms = {{ X = 1, Y = 1 }}
"""


def _spec(candidates, seeds, game="fighter"):
    agents = "".join(f'\n[[agents]]\nname = "{c}"\nspec = "fighter/aggressive"\nlatency_ms = 10\n' for c in candidates)
    return load_spec(text=SPEC.format(games=2 * seeds, agents=agents, game=game), name="answers")


def _records(results: dict, seeds: int, latency: dict | None = None, arena="fighter"):
    """results: {candidate: [score of each game against each baseline, 2 per seed]} ->
    MatchRecords as the store returns them."""
    out = []
    for cand, scores in results.items():
        for b_i, baseline in enumerate(("X", "Y")):
            for seed in range(seeds):
                for side in range(2):
                    score = scores[(b_i * seeds + seed) * 2 + side]
                    lat = np.full(50, (latency or {}).get(cand, 10.0))
                    agent = lambda reward, lat: {"seat": "p0", "reward": reward, "decisions": 50, "errors": 0,
                                                 "invalid": 0, "timeouts": 0, "abstained": 0, "missed_ticks": 0,
                                                 "latency_n": 50, "metrics": {}, "latencies": lat}
                    out.append(MatchRecord(
                        key=f"{arena}:{cand}:{baseline}:{seed}:{'ba' if side else 'ab'}", order=len(out),
                        arena=arena, game="fighter", seed=seed, seed_index=seed, swapped=bool(side), agent_a=cand,
                        agent_b=baseline, seats=[cand, baseline], score_a=score,
                        winner=cand if score == 1 else baseline if score == 0 else None, ticks=600,
                        clock="profile", tick_hz=60.0, final_digest=None, replay=None, wall_time_s=0.1,
                        worker="w", agents={cand: agent(score, lat), baseline: agent(1 - score, np.full(50, 1.0))}))
    return out


def _answer(results, seeds, latency=None):
    spec = _spec(list(results), seeds)
    (summary,) = analyze(spec, _records(results, seeds, latency), n_bootstrap=1000)
    return summary


def test_a_clear_lead_is_a_recommendation_with_its_interval():
    seeds = 12
    strong = [1.0] * (4 * seeds)
    weak = [0.0, 1.0] * (2 * seeds)
    s = _answer({"strong": strong, "even": weak}, seeds)
    m = re.match(r"Deploy strong \(fighter/aggressive\) for fighter at 60 Hz \(profile clock\): it rates \+(\d+) "
                 r"Elo \[\+(\d+), \+(\d+)\] over the next best, even, over 12 seeds per pairing, at 10 ms", s.answer)
    assert m, s.answer
    diff, lo, hi = s.bt.difference("strong", "even")
    assert (int(m.group(1)), int(m.group(2)), int(m.group(3))) == (round(diff), round(lo), round(hi))
    assert 0 < lo < diff <= hi  # a sweep's point sits at the top of what its resamples reach


def test_a_single_candidate_is_no_recommendation():
    seeds = 2
    s = _answer({"jab": [0.0] * (4 * seeds)}, seeds)
    assert s.answer.startswith("No choice to make for fighter at 60 Hz (profile clock): jab (fighter/aggressive) "
                               "is the only candidate; against the yardsticks it scored 0-0-8 over 2 seeds per "
                               "pairing"), s.answer
    assert "Deploy" not in s.answer and "Elo over" not in s.answer


def test_a_lead_inside_the_noise_is_no_answer_yet_with_the_seeds_needed():
    seeds = 4
    a = [1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0] * 2  # 10-6 against the yardsticks
    b = [1.0, 0.0] * (2 * seeds)  # 8-8
    s = _answer({"a": a, "b": b}, seeds)
    m = re.match(r"No answer yet for fighter at 60 Hz \(profile clock\): a leads b by \+(\d+) Elo \[(-\d+), \+(\d+)\] "
                 r"over 4 seeds per pairing, an interval that includes 0; about (\d+) seeds per pairing "
                 r"\(games_per_pairing = (\d+)\) would separate them if the lead is real\.$", s.answer)
    assert m, s.answer
    needed = int(m.group(4))
    assert needed > seeds and int(m.group(5)) == 2 * needed
    diff, lo, hi = s.bt.difference("a", "b")
    # the 1/sqrt(n) law: that many seeds shrink the interval's half-width to the lead
    assert needed == np.ceil(seeds * ((hi - lo) / 2 / diff) ** 2)


def test_identical_results_cannot_be_separated_and_latency_inside_noise_decides_nothing():
    # the market's old pick: equal results, 13.6 against 14.2 ms; a pick must not rest on that
    seeds = 3
    same = [1.0, 0.0, 0.5] * 4
    s = _answer({"fp4": same, "fp8": same}, seeds, latency={"fp4": 13.6, "fp8": 14.2})
    assert s.answer.startswith("No answer yet for fighter at 60 Hz (profile clock): fp4 and fp8 cannot be "
                               "separated, they scored exactly alike (4-4-4 each over 3 seeds per pairing); telling "
                               "apart a 50 Elo difference would take about "), s.answer
    assert "Deploy" not in s.answer and "faster" not in s.answer
    assert int(re.search(r"about (\d+) seeds", s.answer).group(1)) > seeds


def test_terminal_tables_fit_120_columns_wrap_long_names_and_say_lockstep():
    from fpx_arena.tournaments.report import terminal_report

    seeds = 2
    long_name = "a-candidate-with-a-very-long-name-of-fifty-chars-x"
    spec = load_spec(text=SPEC.format(games=2 * seeds, game="fighter", agents=(
        f'\n[[agents]]\nname = "{long_name}"\nspec = "fighter/aggressive"\nlatency_ms = 10\n'
        '\n[[agents]]\nname = "b"\nspec = "fighter/aggressive"\nlatency_ms = 10\n')).replace(
        'clock = "profile"', 'clock = "lockstep"'), name="answers")
    records = _records({long_name: [1.0, 0.0] * (2 * seeds), "b": [0.0, 1.0] * (2 * seeds)}, seeds)
    (summary,) = analyze(spec, records, n_bootstrap=200)
    text = terminal_report([summary])
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert long_name in text  # never cut at 28 characters
    assert "n/a (lockstep)" in text
    assert summary.row("b").latency_mean_ms is None  # no latency charged under lockstep, none shown
