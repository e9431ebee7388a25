"""Reports: the terminal table, report.md and a self-contained report.html with plots, led by
the deployment answer; agents that cannot play are skipped (optional) or stop the run (required)."""
import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fpx_arena.tournaments.analysis import analyze
from fpx_arena.tournaments.report import write_reports
from fpx_arena.tournaments.runner import run_tournament
from fpx_arena.tournaments.spec import load_spec
from fpx_arena.tournaments.store import Store

ROOT = Path(__file__).resolve().parents[1]

SPEC = """
name = "report"
format = "gauntlet"
baselines = ["weak", "turtle"]
games_per_pairing = 6
seed = 3

[[agents]]
name = "fast"
spec = "fighter/reactive"
latency_ms = 30

[[agents]]
name = "slow"
spec = "fighter/reactive"
latency_ms = 400

[[agents]]
name = "rush"
spec = "fighter/aggressive"
latency_ms = 120

[[agents]]
name = "weak"
spec = "fighter/weak"
latency_ms = 100

[[agents]]
name = "turtle"
spec = "fighter/turtle"
latency_ms = 100

[games.fighter]
clock = "profile"
tick_hz = 60
env = { round_ticks = 900 }
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "spec.toml"
    path.write_text(SPEC)
    outcome = run_tournament(load_spec(path), path.parent / "run", workers=2, progress=False)
    assert outcome.stored == outcome.total == 36
    return path.parent / "run"


def test_report_files_and_answer(run):
    report = write_reports(run, n_bootstrap=300)
    md = report["md"].read_text()
    page = report["html"].read_text()
    fighter = report["summaries"][0]
    # the answer leads both files: the best candidate, its lead over the next with the interval;
    # three seeds per pairing rarely separate two reaction times, and then it says so
    m = re.match(r"(?:Deploy (\S+) \((\S+)\) for fighter at 60 Hz \(profile clock\): it rates ([+-]\d+) Elo "
                 r"\[([+-]\d+), ([+-]\d+)\] over the next best, (\S+), over 3 seeds per pairing, at (\d+) ms mean "
                 r"decision latency)|(?:No answer yet for fighter at 60 Hz \(profile clock\): (\S+) leads (\S+) by "
                 r"([+-]\d+) Elo \[([+-]\d+), ([+-]\d+)\] over 3 seeds per pairing, an interval that includes 0)",
                 fighter.answer)
    assert m, fighter.answer
    if m.group(1):
        best, second, numbers = m.group(1), m.group(6), m.group(3, 4, 5)
        assert int(m.group(7)) == round(fighter.row(best).latency_mean_ms)
    else:
        best, second, numbers = m.group(8), m.group(9), m.group(10, 11, 12)
    candidates = [r for r in fighter.rows if r.candidate]
    assert [best, second] == [r.name for r in candidates[:2]]
    diff, lo, hi = fighter.bt.difference(best, second)
    assert tuple(map(int, numbers)) == (round(diff), round(lo), round(hi))
    assert (lo > 0) == bool(m.group(1))
    assert md.index(fighter.answer) < md.index("## fighter")
    assert page.index("class=\"answer\"") < page.index("<h2>")
    # the baselines are yardsticks, not candidates
    assert {r.name for r in fighter.rows if not r.candidate} == {"weak", "turtle"}
    # self-contained html: every plot embedded as a PNG, no external reference
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert not re.search(r'(src|href)="(?!data:)', page)
    for stem in ("rating-latency", "winrate", "missed", "latency"):
        assert f"(plots/fighter-{stem}.png)" in md and (run / "plots" / f"fighter-{stem}.png").is_file()
    # the profile clock charged exactly the given latencies
    assert fighter.row("fast").latency_mean_ms == pytest.approx(30.0)
    assert fighter.row("slow").latency_mean_ms == pytest.approx(400.0)
    assert fighter.row("slow").missed_rate > fighter.row("fast").missed_rate
    # pentanomial counts cover every seed pair of every pairing
    assert all(sum(p.pentanomial) == 3 for p in fighter.pairs)


def test_pareto_front_and_matrix(run):
    with Store.open(run) as store:
        records = store.matches()
    spec = load_spec(run / ".." / "spec.toml")
    (s,) = analyze(spec, records, n_bootstrap=0)
    names, matrix = s.winrate
    for i in range(len(names)):
        for j in range(len(names)):
            if i != j and matrix[i, j] == matrix[i, j]:
                assert matrix[i, j] + matrix[j, i] == pytest.approx(1.0)
    timed = [r for r in s.rows if r.latency_mean_ms is not None]
    for r in timed:
        dominated = any(o.rating >= r.rating and o.latency_mean_ms <= r.latency_mean_ms
                        and (o.rating > r.rating or o.latency_mean_ms < r.latency_mean_ms) for o in timed)
        assert r.pareto == (not dominated)


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "fpx_arena", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def test_report_cli(run, tmp_path):
    proc = _cli("report", str(run / "tournament.db"), "--pairs", "--openskill", "--bootstrap", "100")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.lstrip().startswith("fighter: 60 Hz, profile clock")
    assert "OpenSkill" in proc.stdout and ("Deploy " in proc.stdout or "No answer yet" in proc.stdout)
    assert "fast vs weak" in proc.stdout and "too few games" in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 120
    bad = _cli("report", str(tmp_path / "nothing"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_unavailable_agents_are_skipped_or_stop_the_run(tmp_path):
    extra = '\n[[agents]]\nname = "ghost"\nspec = "llm:no-such-model@bf16"\noptional = true\n'
    spec = SPEC.replace("games_per_pairing = 6", "games_per_pairing = 2").replace("[games.fighter]", extra + "\n[games.fighter]")
    path = tmp_path / "spec.toml"
    path.write_text(spec.replace("[games.fighter]", "[games.fighter]\nlatency_ms = { ghost = 50 }"))
    proc = _cli("tournament", str(path), "--out", str(tmp_path / "run"), "--no-progress", "--bootstrap", "50")
    assert proc.returncode == 0, proc.stderr
    assert "skipping agent 'ghost' (llm:no-such-model@bf16) is unavailable" in proc.stderr
    assert ("Deploy " in proc.stdout or "No answer yet" in proc.stdout)
    assert str(tmp_path / "run" / "report.html") in proc.stdout
    with Store.open(tmp_path / "run") as store:
        assert set(store.skipped_agents()) == {"ghost"} and store.count() == 12
    required = path.read_text().replace("optional = true\n", "")
    path.write_text(required)
    proc = _cli("tournament", str(path), "--out", str(tmp_path / "run2"), "--no-progress")
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and f"{path}:" in line and "agent 'ghost' (llm:no-such-model@bf16) is unavailable" in line


def test_docs_example_runs_as_documented(tmp_path, monkeypatch):
    from fpx_arena.errors import SpecError

    doc = (ROOT / "docs" / "tournaments.md").read_text()
    block = re.search(r"```toml\n(.*?)```", doc, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    Path("fighters.toml").write_text(block)
    outcome = run_tournament(load_spec("fighters.toml"), tmp_path / "run", progress=False)
    assert outcome.stored == outcome.total == 72
    (fighter,) = write_reports(tmp_path / "run", n_bootstrap=100)["summaries"]
    assert fighter.answer.startswith("Deploy reactive-")
    # the error the docs show is the one a user gets
    Path("fighters.toml").write_text(block.replace('clock = "profile"', 'clock = "sundial"'))
    with pytest.raises(SpecError) as info:
        load_spec("fighters.toml")
    shown = re.search(r"fpx-arena tournament: error: (fighters\.toml:\d+: unknown clock .*)", doc).group(1)
    assert str(info.value) == shown
