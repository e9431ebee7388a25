"""Crash safety: a tournament killed with SIGKILL at a random point and resumed gives exactly the
results of an uninterrupted run; the store refuses what it cannot read and never counts a match
twice."""
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fpx_arena.tournaments.runner import run_tournament
from fpx_arena.tournaments.spec import load_spec
from fpx_arena.tournaments.store import SCHEMA_VERSION, Store, StoreError

ROOT = Path(__file__).resolve().parents[1]

SPEC = """
name = "killme"
format = "round-robin"
games_per_pairing = 4
paired = true
seed = 11
concurrency = 2

[[agents]]
name = "reactive"
spec = "fighter/reactive"
latency_ms = 120

[[agents]]
name = "aggressive"
spec = "fighter/aggressive"
latency_ms = 60

[[agents]]
name = "zoner"
spec = "fighter/zoner"
latency_ms = 90

[[agents]]
name = "turtle"
spec = "fighter/turtle"

[[agents]]
name = "weak"
spec = "fighter/weak"
latency_ms = 30

[games.fighter]
clock = "profile"
tick_hz = 60
late = "repeat"
env = { round_ticks = 2400 }

[games.fighter.latency_ms]
turtle = 150
"""


def _cli(*args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "fpx_arena", "tournament", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)
        try:
            return conn.execute("SELECT COUNT(*) FROM matches").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # the schema is being created
        return 0


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _outcomes(run_dir: Path):
    with Store.open(run_dir) as store:
        return [m.outcome() for m in store.matches()], store.matches()


def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(SPEC)
    # the reference: uninterrupted, in-process, one worker (so worker count cannot matter either)
    reference = run_tournament(load_spec(spec_file), tmp_path / "reference", workers=1, progress=False)
    assert reference.stored == reference.total == 40
    expected, _ = _outcomes(tmp_path / "reference")

    seed = int.from_bytes(os.urandom(4), "little")
    kill_after = random.Random(seed).randint(2, 30)  # matches committed before the kill
    run_dir = tmp_path / "killed"
    proc = _cli(str(spec_file), "--out", str(run_dir), "--no-progress", "--no-report", "--workers", "2")
    deadline = time.monotonic() + 90
    try:
        while _stored(run_dir / "tournament.db") < kill_after:
            assert proc.poll() is None, f"finished before the kill (seed {seed}): {proc.communicate()}"
            assert time.monotonic() < deadline, f"no progress (seed {seed})"
            time.sleep(0.005)
        workers = _children(proc.pid)
        assert workers, "no worker processes found"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    partial = _stored(run_dir / "tournament.db")
    assert kill_after <= partial < 40, f"kill seed {seed}: {partial} stored"
    # the workers die with their parent (PR_SET_PDEATHSIG): none plays on to race the resumed run
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]

    resumed = _cli("--resume", str(run_dir), "--no-progress", "--no-report")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert f"{40 - partial} matches played" in err
    got, records = _outcomes(run_dir)
    assert got == expected, f"kill seed {seed}: resumed results differ from the uninterrupted run"
    assert len({r.key for r in records}) == 40
    for r in records:  # every stored match has its replay, complete
        from fpx_arena import replay

        assert replay.load(run_dir / r.replay)["final_digest"] == r.final_digest

    again = _cli("--resume", str(run_dir), "--no-progress", "--no-report")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0 and "0 matches played" in err


def test_resume_refuses_another_tournament(tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(SPEC.replace("games_per_pairing = 4", "games_per_pairing = 2"))
    run_tournament(load_spec(spec_file), tmp_path / "run", workers=1, progress=False)
    other = tmp_path / "other.toml"
    other.write_text(SPEC.replace("games_per_pairing = 4", "games_per_pairing = 2").replace("seed = 11", "seed = 12"))
    proc = _cli(str(other), "--resume", str(tmp_path / "run"), "--no-progress")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "is not the tournament stored in" in err and len(err.strip().splitlines()) == 1
    proc = _cli(str(spec_file), "--out", str(tmp_path / "run"), "--no-progress")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--resume" in err


def test_store_versions_and_duplicates(tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(SPEC.replace("games_per_pairing = 4", "games_per_pairing = 2"))
    run_tournament(load_spec(spec_file), tmp_path / "run", workers=1, progress=False)
    db = tmp_path / "run" / "tournament.db"
    with Store.open(db) as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        record = store.matches()[0]
        # a match already stored must never be counted twice
        summary = {**record.__dict__, "agents": {
            n: {**a, "latencies": a["latencies"].astype("float32").tobytes()} for n, a in record.agents.items()}}
        with pytest.raises(StoreError, match="already stored"):
            store.add_match(summary)
        assert store.count() == 20
        store.conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer fpx-arena"):
        Store.open(db)
    junk = tmp_path / "junk.db"
    sqlite3.connect(junk).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreError, match="not an fpx-arena tournament database"):
        Store.open(junk)
    text = tmp_path / "text.db"
    text.write_text("hello, not sqlite at all " * 100)
    with pytest.raises(StoreError, match="not an fpx-arena tournament database"):
        Store.open(text)
