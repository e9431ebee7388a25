"""Tournament specs: what a spec schedules, and bad specs failing with the file and line."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fpx_arena.errors import SpecError
from fpx_arena.tournaments.runner import load_default_spec
from fpx_arena.tournaments.schedule import build_schedule, latencies, match_seed
from fpx_arena.tournaments.spec import find_line, load_spec

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
name = "t"
format = "gauntlet"
baselines = ["weak", "reactive"]
games_per_pairing = 4
seed = 5

[[agents]]
name = "a"
spec = "fighter/aggressive"
latency_ms = 40

[[agents]]
name = "z"
spec = "fighter/zoner"

[[agents]]
name = "weak"
spec = "fighter/weak"

[[agents]]
name = "reactive"
spec = "fighter/reactive"

[games.fighter]
clock = "profile"
latency_ms = { z = 80, weak = 0, reactive = 10 }
env = { round_ticks = 300 }

[games.fast]
game = "fighter"
tick_hz = 120
clock = "lockstep"
"""


def test_schedule_pairs_every_seed_both_ways():
    spec = load_spec(text=GOOD)
    tasks = build_schedule(spec)
    # gauntlet: 2 challengers x 2 baselines, 2 seeds x 2 sides, in 2 arenas
    assert len(tasks) == 2 * 2 * 2 * 2 * 2
    assert len({t.key for t in tasks}) == len(tasks)
    assert {t.pairing for t in tasks} == {("a", "weak"), ("a", "reactive"), ("z", "weak"), ("z", "reactive")}
    for t in tasks:
        twin = [u for u in tasks if u.arena == t.arena and u.pairing == t.pairing
                and u.seed_index == t.seed_index and u is not t]
        assert len(twin) == 1 and twin[0].seats == t.seats[::-1] and twin[0].seed == t.seed
    # every pairing of an arena plays the same seeds (a shared "opening book"); arenas differ
    seeds = {(t.arena, t.seed_index): t.seed for t in tasks}
    assert all(t.seed == seeds[(t.arena, t.seed_index)] for t in tasks)
    assert seeds[("fighter", 0)] != seeds[("fast", 0)] and seeds[("fighter", 0)] != seeds[("fighter", 1)]
    assert seeds[("fighter", 1)] == match_seed(5, "fighter", 1)
    assert [t.key for t in build_schedule(load_spec(text=GOOD))] == [t.key for t in tasks]
    lat = latencies(spec)
    assert lat["fighter"] == {"a": 40.0, "z": 80.0, "weak": 0.0, "reactive": 10.0}
    assert lat["fast"] == {"a": None, "z": None, "weak": None, "reactive": None}


def test_round_robin_and_game_scoping():
    text = GOOD.replace('format = "gauntlet"\nbaselines = ["weak", "reactive"]\n', "")
    text = text.replace('spec = "fighter/zoner"', 'spec = "random"\ngames = ["fast"]')
    spec = load_spec(text=text)
    tasks = build_schedule(spec)
    fighter = {t.pairing for t in tasks if t.arena == "fighter"}
    fast = {t.pairing for t in tasks if t.arena == "fast"}
    assert fighter == {("a", "weak"), ("a", "reactive"), ("weak", "reactive")}  # z plays only "fast"
    assert len(fast) == 6


BAD = [
    # (replace this, with that, expected line, words in the message)
    ('clock = "profile"', 'clock = "profile"\nclock = "wall"', 26, "not valid TOML"),
    ('seed = 5', 'seed = 5\nworkers = 3', 6, "unknown key 'workers'"),
    ('games_per_pairing = 4', 'games_per_pairing = 3', 4, "must be even"),
    ('baselines = ["weak", "reactive"]', 'baselines = ["weak", "nobody"]', 3, "baseline 'nobody'"),
    ('clock = "lockstep"', 'clock = "sundial"', 32, "unknown clock 'sundial'"),
    ('spec = "fighter/zoner"', 'spec = "fighter/zoner"\nlatency = 3', 15, "unknown agent key 'latency'"),
    ('name = "z"', 'name = "a"', 13, "two agents are named 'a'"),
    ('latency_ms = 40', 'latency_ms = "fast"', 10, "latency_ms must be"),
    ('env = { round_ticks = 300 }', 'env = { round_tiks = 300 }', 27, "round_tiks"),
    ('latency_ms = { z = 80, weak = 0, reactive = 10 }', 'latency_ms = { z = 80, weak = 0 }', 25,
     "'reactive' (fighter/reactive) has no latency"),
    ('spec = "fighter/zoner"', 'spec = "fighter/zonre"', 14, "unknown fighter bot 'zonre'"),
    ('tick_hz = 120', 'tick_hz = -1', 31, "tick_hz must be a finite number > 0"),
    # issue 17, item 9: non-finite and absurd values fail at validation, naming the line
    ('tick_hz = 120', 'tick_hz = inf', 31, "tick_hz must be a finite number > 0"),
    ('tick_hz = 120', 'tick_hz = nan', 31, "got nan"),
    ('tick_hz = 120', 'tick_hz = 120\nnetwork_delay_ms = inf', 32, "network_delay_ms must be a finite number"),
    ('latency_ms = { z = 80, weak = 0, reactive = 10 }', 'latency_ms = { z = nan, weak = 0, reactive = 10 }', 26,
     "latency_ms.z must be a finite number"),
    ('latency_ms = 40', 'latency_ms = -inf', 10, "latency_ms must be a finite number >= 0"),
    ('games_per_pairing = 4', 'games_per_pairing = 2000000000', 4, "games_per_pairing must be an integer >= 1 and <= 100000"),
    ('seed = 5', 'seed = -1', 5, "seed must be an integer >= 0"),
    ('seed = 5', 'seed = 5\n[ratings]\nbootstrap = 1000000000', 7, "bootstrap must be an integer >= 0 and <= 100000"),
    ('tick_hz = 120', 'tick_hz = 120\ndecision_timeout_s = 0', 32, "decision_timeout_s must be a finite number > 0"),
    ('tick_hz = 120', 'tick_hz = 120\noverage_ms = nan', 32, "overage_ms must be a finite number"),
]


def test_a_schedule_too_large_to_build_is_refused_at_once():
    """games_per_pairing under its own cap, times many pairings: refused from the spec's
    numbers, before a schedule of millions of matches is built (issue 17, item 9)."""
    import time

    agents = "".join(f'[[agents]]\nname = "r{i}"\nspec = "random"\n' for i in range(50))
    text = f'name = "big"\ngames_per_pairing = 1000\n{agents}[games.fighter]\nclock = "lockstep"\n'
    t0 = time.perf_counter()
    with pytest.raises(SpecError, match="schedules up to 1,225,000 matches") as info:
        load_spec(text=text)
    assert time.perf_counter() - t0 < 1 and "\n" not in str(info.value)
    assert len(build_schedule(load_spec(text=text.replace("= 1000", "= 2")))) == 1225 * 2


@pytest.mark.parametrize("old,new,line,words", BAD, ids=[b[3] for b in BAD])
def test_bad_spec_names_the_line(tmp_path, old, new, line, words):
    from fpx_arena.tournaments.runner import _preflight
    from fpx_arena.tournaments.schedule import seat_ids

    assert old in GOOD
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(SpecError) as info:
        spec = load_spec(path)
        _preflight(spec)
        for arena in spec.arenas:
            seat_ids(spec, arena)
        latencies(spec)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}:") or f"line {line}" in message, message
    assert words in message
    assert "\n" not in message


def test_cli_reports_a_bad_spec_in_one_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace('clock = "lockstep"', 'clock = "sundial"'))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "fpx_arena", "tournament", str(path), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"fpx-arena tournament: error: {path}:32: unknown clock 'sundial'; "
                                   "choose one of wall, measured, profile, lockstep")
    assert not (tmp_path / "r").exists()
    missing = subprocess.run([sys.executable, "-m", "fpx_arena", "tournament", str(tmp_path / "nope.toml")],
                             capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert missing.returncode == 2 and "tournament spec not found" in missing.stderr


def test_find_line():
    text = GOOD
    assert find_line(text, ("agents", 1, "spec")) == 14
    assert find_line(text, ("agents", 0, "latency_ms")) == 10
    assert find_line(text, ("agents", 3)) == 20
    assert find_line(text, ("games", "fast", "tick_hz")) == 31
    assert find_line(text, ("games", "fighter", "latency_ms", "z")) == 26  # inside an inline table
    assert find_line(text, ("games", "fast", "late")) == 29  # unset: the table's header
    assert find_line(text, ("baselines",)) == 3


def test_default_spec_loads_and_schedules():
    spec = load_default_spec()
    assert spec.name == "default"
    assert any(a.spec.startswith("llm:") for a in spec.agents)
    assert any(not a.spec.startswith("llm:") for a in spec.agents)
    assert build_schedule(spec)


def test_workers_are_placed_one_per_gpu(monkeypatch):
    from fpx_arena.tournaments.runner import detect_gpus, plan_workers

    llm = GOOD.replace('spec = "fighter/zoner"', 'spec = "llm:smollm2-135m@bf16"')
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert detect_gpus() == ["2", "3"]
    assert plan_workers(load_spec(text=llm), None, pending=100) == ["2", "3"]
    assert plan_workers(load_spec(text=llm), 5, pending=100) == ["2", "3", "2", "3", "2"]
    assert plan_workers(load_spec(text=llm.replace("seed = 5", "seed = 5\nworkers_per_gpu = 2")), None, 100) \
        == ["2", "3", "2", "3"]
    assert plan_workers(load_spec(text=llm.replace("seed = 5", "seed = 5\ngpus = [0]")), None, 100) == ["0"]
    assert plan_workers(load_spec(text=llm.replace("seed = 5", "seed = 5\ngpus = \"none\"\nconcurrency = 3")),
                        None, 100) == [None] * 3
    # scripted-only tournaments need no GPU: one CPU worker per core, never more than matches
    assert plan_workers(load_spec(text=GOOD), None, pending=1) == [None]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect_gpus() == []


def test_latency_sources_and_precedence(tmp_path):
    from fpx_arena.latency import LatencyProfile, save_profiles

    (tmp_path / "profiles").mkdir()
    save_profiles(tmp_path / "profiles" / "h100.json", [
        LatencyProfile(agent="fighter/zoner", samples_ms=(80.0, 90.0)),
        LatencyProfile.constant(5.0, agent="*"),
    ])
    save_profiles(tmp_path / "own.json", [LatencyProfile.constant(33.0, agent="fighter/weak")])
    text = GOOD.replace("latency_ms = { z = 80, weak = 0, reactive = 10 }",
                        'latency_profile = "profiles/h100.json"\nlatency_ms = { reactive = 10 }')
    text = text.replace('spec = "fighter/weak"', 'spec = "fighter/weak"\nlatency_profile = "own.json"')
    (tmp_path / "spec.toml").write_text(text)
    lat = latencies(load_spec(tmp_path / "spec.toml"))["fighter"]
    assert lat["a"] == 40.0  # the agent's own latency_ms
    assert lat["reactive"] == 10.0  # the game's latency_ms table
    assert lat["weak"].distribution == {"kind": "constant", "ms": 33.0}  # the agent's profile file
    assert lat["z"].samples_ms == (80.0, 90.0)  # the game's profile file, by spec
    # a spec the file does not name falls back to its "*" entry
    other = text.replace('spec = "fighter/zoner"', 'spec = "fighter/turtle"')
    (tmp_path / "spec.toml").write_text(other)
    assert latencies(load_spec(tmp_path / "spec.toml"))["fighter"]["z"].distribution["ms"] == 5.0
    (tmp_path / "profiles" / "h100.json").write_text("{not json")
    with pytest.raises(SpecError, match=r"spec.toml:27: .*not valid JSON"):
        latencies(load_spec(tmp_path / "spec.toml"))
