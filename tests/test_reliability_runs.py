"""Issue 17, items 3 and 10: a run stores its inputs by content and a resume compares them
(changed or missing inputs refused in one line naming which); relative paths resolve against
the spec's folder, so a run resumes the same from any folder; one runner per run folder (a
stale lock of a dead process is taken over); database and disk errors are one line and lose
nothing."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fpx_arena.cli import main
from fpx_arena.errors import UserError
from fpx_arena.latency import LatencyProfile, save_profiles
from fpx_arena.tournaments.inputs import check_inputs, resolved_inputs
from fpx_arena.tournaments.runner import run_tournament
from fpx_arena.tournaments.spec import load_spec
from fpx_arena.tournaments.store import RunLock, Store, StoreError

SPEC = """
name = "inputs"
games_per_pairing = 2
seed = 3
concurrency = 1

[[agents]]
name = "reactive"
spec = "fighter/reactive"

[[agents]]
name = "weak"
spec = "fighter/weak"

[games.fighter]
clock = "profile"
latency_profile = "prof.json"
max_ticks = 240
"""


def profile(path: Path, reactive_ms: float):
    save_profiles(path, [LatencyProfile(agent="fighter/reactive", samples_ms=[reactive_ms, reactive_ms + 20]),
                         LatencyProfile(agent="fighter/weak", samples_ms=[40.0])])


def outcomes(run_dir: Path):
    with Store.open(run_dir / "tournament.db") as store:
        return sorted(m.outcome() for m in store.matches())


def forget(run_dir: Path, n: int):
    """What a kill leaves: the last n matches not stored."""
    conn = sqlite3.connect(run_dir / "tournament.db")
    keys = [r[0] for r in conn.execute("SELECT key FROM matches ORDER BY ord DESC LIMIT ?", (n,))]
    for k in keys:
        conn.execute("DELETE FROM match_agents WHERE match_key = ?", (k,))
        conn.execute("DELETE FROM matches WHERE key = ?", (k,))
    conn.commit()
    conn.close()


@pytest.fixture
def run(tmp_path, monkeypatch):
    specs = tmp_path / "specs"
    specs.mkdir()
    profile(specs / "prof.json", 10.0)
    (specs / "t.toml").write_text(SPEC)
    monkeypatch.chdir(specs)
    run_dir = tmp_path / "run"
    run_tournament(load_spec("t.toml"), run_dir, progress=False, log=lambda m: None)  # a relative spec path
    return specs, run_dir


def test_resume_from_another_folder_uses_the_specs_own_files(run, tmp_path, monkeypatch):
    specs, run_dir = run
    full = outcomes(run_dir)
    forget(run_dir, 2)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    profile(elsewhere / "prof.json", 300.0)  # same name, other content: the trap of issue 17
    monkeypatch.chdir(elsewhere)
    out = run_tournament(None, run_dir, resume=True, progress=False, log=lambda m: None)
    assert out.played == 2 and outcomes(run_dir) == full


@pytest.mark.parametrize("change", ["edit", "delete"])
def test_a_changed_or_missing_input_is_refused_naming_it(run, change):
    specs, run_dir = run
    forget(run_dir, 1)
    if change == "edit":
        profile(specs / "prof.json", 11.0)
        needle = "changed since the run started"
    else:
        (specs / "prof.json").unlink()
        needle = "is missing"
    with pytest.raises(UserError) as e:
        run_tournament(None, run_dir, resume=True, progress=False, log=lambda m: None)
    assert "games.fighter.latency_profile" in str(e.value) and needle in str(e.value) and "\n" not in str(e.value)
    assert main(["tournament", "--resume", str(run_dir), "--no-progress", "--no-report"]) == 2


def test_models_and_plan_files_are_inputs_by_content(tmp_path):
    from synthetic_checkpoints import build_hf_checkpoint

    build_hf_checkpoint(str(tmp_path / "tiny"), arch="llama", seed=1)
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "p.json").write_text('{"formats": {}}')
    text = SPEC.replace('spec = "fighter/weak"', 'spec = "llm:./tiny@plans/p.json"')
    spec = load_spec(text=text, base=tmp_path)
    assert spec.agent("weak").spec == f"llm:{tmp_path / 'tiny'}@{tmp_path / 'plans' / 'p.json'}"
    before = resolved_inputs(spec)
    assert before["agents.weak.model"]["sha256"] and before["agents.weak.plan"]["sha256"]
    check_inputs(before, resolved_inputs(spec), "run")  # nothing changed: no complaint
    cfg = json.loads((tmp_path / "tiny" / "config.json").read_text())
    cfg["rms_norm_eps"] = 1e-5
    (tmp_path / "tiny" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=r"input agents.weak.model .* changed since the run started"):
        check_inputs(before, resolved_inputs(spec), "run")
    (tmp_path / "plans" / "p.json").unlink()
    with pytest.raises(UserError, match="agents.weak.plan .* is missing"):
        check_inputs({**before, "agents.weak.model": resolved_inputs(spec)["agents.weak.model"]},
                     resolved_inputs(spec), "run")


# --- one runner per run ---------------------------------------------------------------------------
HOLD = """
import sys, time
from fpx_arena.tournaments.store import RunLock
RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_runner_is_refused_and_a_dead_ones_lock_is_taken_over(run):
    specs, run_dir = run
    forget(run_dir, 1)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError) as e:
            run_tournament(None, run_dir, resume=True, progress=False, log=lambda m: None)
        assert f"process {holder.pid}" in str(e.value) and "one runner per run" in str(e.value)
        assert "\n" not in str(e.value)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock = json.loads((run_dir / "run.lock").read_text())
    assert lock["pid"] == holder.pid  # the dead runner's lock file is still there...
    out = run_tournament(None, run_dir, resume=True, progress=False, log=lambda m: None)
    assert out.played == 1  # ...and taken over
    with RunLock(run_dir):  # released when the run ended
        pass


# --- the database ---------------------------------------------------------------------------------
def test_a_damaged_page_is_one_line(run):
    _, run_dir = run
    db = run_dir / "tournament.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        n_pages = conn.execute("PRAGMA page_count").fetchone()[0]
    assert n_pages >= 4
    with open(db, "r+b") as f:
        f.seek(page * (n_pages - 2))
        f.write(os.urandom(page))
    with pytest.raises(StoreError, match="damaged") as e:
        Store.open(db)
    assert "\n" not in str(e.value)
    assert main(["report", str(run_dir)]) == 2


def test_meta_that_is_not_json_is_one_line(run):
    _, run_dir = run
    with sqlite3.connect(run_dir / "tournament.db") as conn:
        conn.execute("UPDATE meta SET value = '{not json' WHERE key = 'spec_identity'")
    with Store.open(run_dir) as store, pytest.raises(StoreError, match="'spec_identity' .* not valid JSON"):
        store.meta()
    with pytest.raises(StoreError, match="not valid JSON"):
        run_tournament(None, run_dir, resume=True, progress=False, log=lambda m: None)


def test_a_full_disk_is_one_line_and_loses_nothing(run):
    _, run_dir = run
    before = outcomes(run_dir)
    store = Store.open(run_dir)
    match = store.matches()[0]
    summary = {k: getattr(match, k) for k in ("key", "order", "arena", "game", "seed", "seed_index", "swapped",
                                              "agent_a", "agent_b", "seats", "winner", "score_a", "ticks", "clock",
                                              "tick_hz", "final_digest", "replay", "wall_time_s", "worker")}
    summary["key"] = "fighter:new:match:0:0"
    summary["agents"] = {name: {**a, "latencies": bytes(40000), "metrics": a["metrics"]}
                         for name, a in match.agents.items()}
    for a in summary["agents"].values():
        a.pop("match_key", None)
    # SQLite reports a size limit exactly as a full disk (SQLITE_FULL): the same path, no root needed
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreError) as e:
        store.add_match(summary)
    assert "disk is full" in str(e.value) and "intact" in str(e.value) and "\n" not in str(e.value)
    store.close()
    assert outcomes(run_dir) == before
    with Store.open(run_dir) as again:
        assert again.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
