"""Issue 17, item 7: every command-line value is validated before anything runs (finite, in
range, known player ids, files that are files). Each bad invocation below exits 2 with one
line on stderr and no traceback; a replay that cannot be written fails after the match, in one
line, with the result already printed."""
import contextlib
import gzip
import io
import shlex

import pytest

from fpx_arena import agents, games, run_match
from fpx_arena.cli import main

P = "play fighter --max-ticks 20"
BAD = [
    # (invocation, words in the one line)
    (f"{P} --tick-hz inf", "not a finite number"), (f"{P} --tick-hz 0", "out of range"),
    (f"{P} --tick-hz nan", "not a finite number"), (f"{P} --tick-hz -5", "out of range"),
    (f"{P} --tick-hz abc", "not a number"),
    (f"{P} --network-delay p0=nan", "not a finite number"), (f"{P} --network-delay p0=inf", "not a finite number"),
    (f"{P} --network-delay p0=-3", "out of range"), (f"{P} --network-delay zz=5", "zz, not a player of fighter"),
    (f"{P} --network-delay p0", "expected ID=VALUE"),
    (f"{P} --seed -1", "--seed"), (f"{P} --seed 99999999999999999999", "--seed"), (f"{P} --seed 1.5", "not an integer"),
    (f"{P} --env round_ticks=abc", "round_ticks=abc"), (f"{P} --env round_ticks=-5", "round_ticks"),
    (f"{P} --env nosuch=1", "nosuch"), (f"{P} --env =3", "expected ID=VALUE"),
    (f"{P} --latency-profile FOLDER", "is not a file"), (f"{P} --latency-profile missing.json", "does not exist"),
    (f"{P} --latency-profile notjson.json", "not valid JSON"),
    (f"{P} --clock profile --latency-profile badprof.json --latency p0=1", "finite"),
    (f"{P} --overage nan", "--overage"), (f"{P} --overage -1", "--overage"), (f"{P} --overage inf", "--overage"),
    (f"{P} --clock profile --latency zz=5 --latency p0=1 --latency p1=1", "zz, not a player of fighter"),
    (f"{P} --clock profile --latency p0=nan --latency p1=1", "not a finite number"),
    (f"{P} -a p0=llm:m@bf16?bogus=1", "bogus"), (f"{P} -a p0=llm:arena-tiny@bf16?bogus=1", "bogus"),
    (f"{P} -a p0=badmod:Agent", "boom at import"), (f"{P} -a p0=exitmod:Agent", "SystemExit"),
    (f"{P} -a p0=nosuchmod:Agent", "nosuchmod"), (f"{P} -a p0=fighter/nosuchbot", "nosuchbot"),
    (f"{P} -a p9=random", "unknown: p9"), (f"{P} -a p0=llm:arena-tiny@int3", "unknown precision"),
    (f"{P} --max-ticks 0", "--max-ticks"), (f"{P} --decision-timeout nan", "--decision-timeout"),
    (f"{P} --decision-timeout 0", "--decision-timeout"), ("play nosuchgame", "unknown game"),
    (f"{P} --clock sundial", "invalid choice"),
    ("render missing.replay --out x.gif", "not found"), ("render FOLDER --out x.gif", "is a folder"),
    ("render notjson.json --out x.gif", "not a replay file"), ("watch missing.replay", "not found"),
    ("report FOLDER", "no tournament database"), ("report FOLDER --bootstrap 1000000000", "--bootstrap"),
    ("tournament huge.toml --no-progress --no-report --out runs/h", "games_per_pairing"),
    ("tournament FOLDER", "is a folder"), ("tournament --resume FOLDER", "no tournament database"),
    ("tournament --workers 0", "--workers"), ("prompt /nonexistent/model.gguf", "no such file"),
    ("prompt arena-tiny --seed -4", "--seed"), ("prompt arena-tiny --ticks -1", "--ticks"),
    ("calibrate arena-tiny --gamma nan --out p.json", "--gamma"),
    ("dataset fighter --heldout nan --out d", "--heldout"), ("eval arena-tiny --seed -2", "--seed"),
    ("nosuchcommand", "invalid choice"),
    ("render ok.replay --out o.gif --fps nan", "--fps"), ("render ok.replay --out o.gif --fps 0", "--fps"),
    ("render ok.replay --out o.gif --start 1e308", "--start"), ("render ok.replay --out o.gif --end -1", "--end"),
    ("render ok.replay --out o.gif --start 0.5 --end 0.2", "must come after"),
    ("render ok.replay --out o.gif --start 500", "past the end"), ("watch ok.replay --start nan", "--start"),
    ("quality arena-tiny --max-tokens 0", "--max-tokens"), ("prompt arena-tiny --device tpu", "not a device"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "badmod.py").write_text("raise RuntimeError('boom at import')\n")
    (d / "exitmod.py").write_text("import sys\nsys.exit(3)\n")
    (d / "FOLDER").mkdir()
    (d / "badprof.json").write_text('{"format": "fpx-arena-latency-profile", "version": 1, '
                                    '"profiles": [{"agent": "random", "samples_ms": [1e999]}]}')
    (d / "notjson.json").write_text("x")
    env = games.make("fighter", round_ticks=60)
    run_match(env, {a: agents.make("random") for a in env.possible_agents}, record=d / "ok.replay", game="fighter",
              env_kwargs={"round_ticks": 60})
    (d / "huge.toml").write_text('name = "t"\ngames_per_pairing = 2000000000\n[[agents]]\nname = "a"\n'
                                 'spec = "random"\n[[agents]]\nname = "b"\nspec = "random"\n'
                                 '[games.fighter]\nclock = "lockstep"\n')
    return d


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_every_bad_invocation_is_one_line_exit_2(folder, monkeypatch):
    monkeypatch.chdir(folder)
    failures = []
    for case, words in BAD:
        rc, _, err = run(shlex.split(case))
        lines = [line for line in err.splitlines() if line.strip()]
        if rc != 2 or len(lines) != 1 or "Traceback" in err or words not in lines[0]:
            failures.append(f"{case!r}: rc={rc}, stderr={err!r}")
    assert not failures, "\n".join(failures)
    assert len(BAD) >= 40
    assert not (folder / "runs").exists() and not (folder / "o.gif").exists()  # nothing ran


def test_a_replay_that_cannot_be_written_fails_after_the_result_is_printed(folder, monkeypatch, tmp_path):
    monkeypatch.chdir(folder)
    rc, out, err = run(shlex.split(f"{P} -a p0=fighter/reactive --record /proc/x.replay"))
    assert rc == 2 and "winner" in out and "p0" in out  # the result table is out
    assert err.count("\n") == 1 and "cannot write replay /proc/x.replay" in err and "Traceback" not in err
    rc, out, err = run(shlex.split(f"{P} -a p0=fighter/reactive --json --record {tmp_path / 'ok.replay'}"))
    assert rc == 0 and '"winner"' in out and err == ""
    with gzip.open(tmp_path / "ok.replay", "rt") as f:
        assert '"game":"fighter"' in f.read()


def test_good_values_at_the_edges_still_run(folder, monkeypatch):
    monkeypatch.chdir(folder)
    rc, out, err = run(shlex.split(f"{P} --tick-hz 10000 --seed 2147483647 --overage 0 --clock profile "
                                   "--latency p0=0 --latency p1=3600000 --network-delay p1=0"))
    assert rc == 0, err
