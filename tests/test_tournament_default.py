"""The default tournament is reproducible bit for bit: it plays under the profile clock from
latency profiles shipped in the package (each naming its device and command), and a shortened
copy of it, run twice with the same seed, writes identical result tables and the same answer."""
import json
import re
import tomllib
from pathlib import Path

import pytest

from fpx_arena.commands.tournament import with_overrides
from fpx_arena.tournaments.report import write_reports
from fpx_arena.tournaments.runner import load_default_spec, run_tournament
from fpx_arena.tournaments.schedule import latencies
from fpx_arena.tournaments.spec import load_spec
from fpx_arena.tournaments.store import Store

ROOT = Path(__file__).resolve().parents[1]


def test_the_default_plays_the_profile_clock_from_shipped_profiles():
    spec = load_default_spec()
    assert spec.arenas and all(a.clock == "profile" for a in spec.arenas)
    lat = latencies(spec)  # every participant has a latency, or this raises naming it
    assert all(v is not None for per in lat.values() for v in per.values())
    for arena in spec.arenas:
        path = Path(arena.latency_profile)
        assert path.is_file() and path.parent.name == "data" and path.parent.parent.name == "fpx_arena"
        doc = json.loads(path.read_text())
        assert doc["game"] == arena.game and doc["torch_threads"] == 1
        assert doc["command"].startswith("python bench/latency_profiles.py") and doc["commit"]
        assert "cores" in doc["device"] and all(p["device"] == doc["device"] for p in doc["profiles"])
        assert doc["loadavg_before"] and doc["loadavg_after"]
    # the files ship with the package
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "data/*" in data["fpx_arena"]
    # --clock measured is one flag away, and the stored spec says so
    measured = with_overrides(spec, clock="measured", seed=11)
    assert all(a.clock == "measured" for a in measured.arenas) and measured.seed == 11
    assert [a.name for a in measured.agents] == [a.name for a in spec.agents]
    assert load_spec(text=measured.source, name="x", base=measured.base_dir).arenas[0].clock == "measured"


def _shortened(tmp_path) -> Path:
    """The default spec with two candidates, two seeds and short games."""
    text = load_default_spec().source
    blocks = re.split(r"(?m)^(?=\[\[agents\]\]|\[games\.)", text)
    keep = []
    for block in blocks:
        name = re.search(r'(?m)^name = "([^"]+)"', block)
        if block.startswith("[[agents]]") and name and name.group(1) not in ("tiny-bf16", "tiny-fp4", "reactive"):
            continue
        keep.append(block)
    text = "".join(keep)
    text = re.sub(r"(?m)^games_per_pairing = \d+", "games_per_pairing = 4", text)
    text = re.sub(r"round_ticks = \d+", "round_ticks = 300", text)
    path = tmp_path / "short.toml"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_a_shortened_default_run_twice_gives_identical_results(tmp_path):
    spec = load_spec(_shortened(tmp_path))
    assert {a.name for a in spec.agents} == {"tiny-bf16", "tiny-fp4", "reactive"}
    first = run_tournament(spec, tmp_path / "one", workers=2, progress=False)
    second = run_tournament(spec, tmp_path / "two", workers=1, progress=False)
    assert first.stored == second.stored == first.total == 8
    one = write_reports(tmp_path / "one", n_bootstrap=300, plots_enabled=False)
    two = write_reports(tmp_path / "two", n_bootstrap=300, plots_enabled=False)
    assert one["results"].read_bytes() == two["results"].read_bytes()
    answers = [s.answer for s in one["summaries"]]
    assert answers == [s.answer for s in two["summaries"]]
    assert all(a.startswith(("Deploy ", "No answer yet", "No choice")) for a in answers), answers
    with Store.open(tmp_path / "one") as a, Store.open(tmp_path / "two") as b:
        assert [m.outcome() for m in a.matches()] == [m.outcome() for m in b.matches()]


BOTS = """
name = "bots"
format = "gauntlet"
baselines = ["turtle"]
games_per_pairing = 2
seed = 4

[[agents]]
name = "reactive"
spec = "fighter/reactive"
latency_ms = 50

[[agents]]
name = "turtle"
spec = "fighter/turtle"
latency_ms = 50

[games.fighter]
clock = "profile"
env = { round_ticks = 200 }
"""


def test_clock_measured_is_one_flag_away_and_the_report_names_the_machine(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "bots.toml").write_text(BOTS)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "fpx_arena", "tournament", str(tmp_path / "bots.toml"), "--clock",
                           "measured", "--out", str(tmp_path / "run"), "--no-progress", "--workers", "1"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "(measured clock)" in proc.stdout and "Played on " in proc.stdout
    md = (tmp_path / "run" / "report.md").read_text()
    line = re.search(r"Played on (.*?); (\d+) worker\(s\), (\d+) torch/OpenMP thread\(s\) each .*?load average "
                     r"\(1/5/15 min\) ([\d./]+) at the start, ([\d./]+) at the end; 2 matches\.", md)
    assert line, md
    assert line.group(2) == "1" and int(line.group(3)) == os.cpu_count()
    # the stored spec says what was played: a report or a resume sees the measured clock
    with Store.open(tmp_path / "run") as store:
        assert {m.clock for m in store.matches()} == {"measured"}
