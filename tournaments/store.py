"""The tournament database: SQLite in WAL mode, one row per finished match, committed at once.

Crash safety: each match is one transaction (synchronous=FULL), so a run killed at any moment
keeps every match it reported and none half-written; `--resume` plays exactly the scheduled keys
that have no row. The schema is versioned: a database written by a newer fpx-arena is refused
with a clear message instead of being misread.

Every database or disk problem is one StoreError line: a damaged file (checked with SQLite's
quick_check when opened), meta that is not JSON, a full disk (the match being stored is rolled
back; every match stored before stays). One runner per run folder: ``RunLock``.
"""
from __future__ import annotations

import fcntl
import functools
import json
import os
import socket
import sqlite3
import time
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE matches (
    key TEXT PRIMARY KEY,           -- the schedule key: arena:a:b:seed_index:side
    ord INTEGER NOT NULL,           -- position in the schedule
    arena TEXT NOT NULL,
    game TEXT NOT NULL,
    seed INTEGER NOT NULL,
    seed_index INTEGER NOT NULL,
    swapped INTEGER NOT NULL,
    agent_a TEXT NOT NULL,          -- the pairing, in spec order
    agent_b TEXT NOT NULL,
    seats TEXT NOT NULL,            -- JSON: agent names in seat order
    winner TEXT,                    -- agent name, NULL for a draw
    score_a REAL NOT NULL,          -- 1, 0.5 or 0 for agent_a
    ticks INTEGER NOT NULL,
    clock TEXT NOT NULL,
    tick_hz REAL NOT NULL,
    final_digest TEXT,
    replay TEXT,                    -- path relative to the database's folder
    wall_time_s REAL,
    worker TEXT,
    finished_at REAL NOT NULL
);
CREATE TABLE match_agents (
    match_key TEXT NOT NULL REFERENCES matches(key),
    agent TEXT NOT NULL,
    seat TEXT NOT NULL,
    spec TEXT NOT NULL,
    reward REAL NOT NULL,
    decisions INTEGER NOT NULL,
    invalid INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    timeouts INTEGER NOT NULL,
    abstained INTEGER NOT NULL,
    missed_ticks INTEGER NOT NULL,
    latency_n INTEGER NOT NULL,
    latency_mean_ms REAL,
    latency_p50_ms REAL,
    latency_p95_ms REAL,
    latency_p99_ms REAL,
    latency_max_ms REAL,
    latencies BLOB,                 -- float32 samples (ms) of its decisions
    metrics TEXT NOT NULL,          -- JSON from the game's match_outcome()
    last_error TEXT,
    PRIMARY KEY (match_key, agent)
);
CREATE TABLE skipped_agents (agent TEXT PRIMARY KEY, reason TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX matches_arena ON matches (arena, ord);
"""


class StoreError(UserError):
    """A tournament database that cannot be used as it is."""


def _db_message(path, e: Exception, doing: str) -> str:
    code = getattr(e, "sqlite_errorcode", None)
    text = " ".join(str(e).split()) or type(e).__name__
    if code == 13 or "full" in text:  # SQLITE_FULL
        return (f"{path}: the disk is full ({text}) while {doing}: nothing of it was written and everything "
                "stored before is intact; free some space and continue with --resume")
    if code in (11, 26) or "malformed" in text or "not a database" in text:  # SQLITE_CORRUPT, SQLITE_NOTADB
        return f"{path}: the tournament database is damaged ({text}); it cannot be used as it is"
    if isinstance(e, ValueError):
        return f"{path}: the tournament database holds unreadable data while {doing} ({text[:120]})"
    return f"{path}: database error while {doing} ({text})"


def _guarded(doing: str):
    """Database and decoding errors of a Store method as one StoreError line."""
    def wrap(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except (sqlite3.DatabaseError, ValueError) as e:
                raise StoreError(_db_message(self.path, e, doing)) from None
        return run
    return wrap


class RunLock:
    """One runner per run folder: an exclusive flock on ``<run>/run.lock``, held while this
    process lives. The kernel drops a flock when its process dies, so the lock of a killed
    runner is simply taken over; the file names the holder for the refusal message."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / "run.lock"
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(f"cannot lock the run folder {self.path.parent}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:
                holder = {}
            os.close(fd)
            who = (f"process {holder.get('pid')} on {holder.get('host')} since "
                   f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder.get('since', 0)))}"
                   if isinstance(holder, dict) and holder.get("pid") else "another process")
            raise StoreError(f"{self.path.parent} is being run by {who}: one runner per run; wait for it "
                             "to finish or stop it, then --resume") from None
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


@dataclass
class MatchRecord:
    """One finished match as stored (what ratings and reports read)."""
    key: str
    order: int
    arena: str
    game: str
    seed: int
    seed_index: int
    swapped: bool
    agent_a: str
    agent_b: str
    seats: list
    winner: str | None
    score_a: float
    ticks: int
    clock: str
    tick_hz: float
    final_digest: str | None
    replay: str | None
    wall_time_s: float
    worker: str
    agents: dict  # name -> dict of the match_agents columns (latencies as a numpy array)

    def outcome(self) -> tuple:
        """Everything that must not depend on worker or order (for resume/backends checks)."""
        per_agent = tuple(sorted(
            (name, a["seat"], a["reward"], a["decisions"], a["invalid"], a["errors"], a["timeouts"],
             a["abstained"], a["missed_ticks"], a["latency_n"],
             json.dumps(a["metrics"], sort_keys=True)) for name, a in self.agents.items()))
        return (self.key, self.seed, tuple(self.seats), self.winner, self.score_a, self.ticks,
                self.final_digest, per_agent)


def _latency_summary(samples) -> dict:
    lat = np.asarray(samples, dtype=float)
    if not len(lat):
        return {"latency_n": 0, "latency_mean_ms": None, "latency_p50_ms": None,
                "latency_p95_ms": None, "latency_p99_ms": None, "latency_max_ms": None}
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    return {"latency_n": int(len(lat)), "latency_mean_ms": float(lat.mean()), "latency_p50_ms": float(p50),
            "latency_p95_ms": float(p95), "latency_p99_ms": float(p99), "latency_max_ms": float(lat.max())}


def summarize(task, result, *, replay: str | None, worker: str) -> dict:
    """The storable summary of a MatchResult for a scheduled task (small, picklable: what a
    worker sends back instead of the whole trace)."""
    names = dict(zip(task.seat_ids, task.seats))
    winner = names.get(result.winner) if result.winner is not None else None
    a, b = task.pairing
    score_a = 1.0 if winner == a else 0.0 if winner == b else 0.5
    agents = {}
    for seat, stats in result.stats.items():
        agents[names[seat]] = {
            "seat": seat, "spec": stats.spec, "reward": float(stats.reward), "decisions": stats.decisions,
            "invalid": stats.invalid, "errors": stats.errors, "timeouts": stats.timeouts,
            "abstained": stats.abstained, "missed_ticks": stats.missed_ticks,
            **_latency_summary(stats.latencies_ms),
            "latencies": array("f", stats.latencies_ms).tobytes(),
            "metrics": json.loads(json.dumps({**stats.metrics, **_candidates(result, seat, stats.spec)},
                                             default=_plain)),
            "last_error": (f"forfeit: {stats.forfeit}" if getattr(stats, "forfeit", "") else stats.last_error) or None,
        }
    return {
        "key": task.key, "order": task.order, "arena": task.arena, "game": result.game, "seed": task.seed,
        "seed_index": task.seed_index, "swapped": task.swapped, "agent_a": a, "agent_b": b,
        "seats": list(task.seats), "winner": winner, "score_a": score_a, "ticks": result.ticks,
        "clock": result.clock, "tick_hz": result.tick_hz, "final_digest": result.final_digest,
        "replay": replay, "wall_time_s": result.wall_time_s, "worker": worker, "agents": agents,
    }


def _candidates(result, seat, spec: str) -> dict:
    """An adaptive agent's decisions per candidate: {"candidates": {key: {"decisions": n,
    "latency_ms": charged ms summed}}} from each decision's timing (empty for other agents)."""
    if not (spec.startswith("adaptive:") or "@adaptive" in spec):
        return {}
    i, out = result.trace.agents.index(seat), {}
    for d in result.trace.decisions:
        if d[0] == i and d[3] is not None and isinstance(d[5], dict) and "candidate" in d[5]:
            c = out.setdefault(d[5]["candidate"], {"decisions": 0, "latency_ms": 0.0})
            c["decisions"] += 1
            c["latency_ms"] += float(d[3])
    return {"candidates": out} if out else {}


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


class Store:
    """A tournament database. `Store.create(path, meta)` for a new run, `Store.open(path)` to
    read or resume one."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path, self.conn = path, conn

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a committed match survives a crash or kill
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @classmethod
    def create(cls, path, meta: dict) -> "Store":
        path = Path(path)
        if path.exists():
            raise StoreError(f"{path} already exists: pass --resume to continue that run")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = cls._connect(path)
            conn.execute("BEGIN")  # schema, version and meta in one transaction: all or nothing
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            conn.executemany("INSERT INTO meta VALUES (?, ?)",
                             [(k, json.dumps(v)) for k, v in {**meta, "created_at": time.time()}.items()])
            conn.execute("COMMIT")
        except (sqlite3.DatabaseError, OSError) as e:
            raise StoreError(_db_message(path, e, "creating the database")) from None
        return cls(path, conn)

    @classmethod
    def open(cls, path) -> "Store":
        path = Path(path)
        if path.is_dir():
            path = path / "tournament.db"
        if not path.is_file():
            raise StoreError(f"no tournament database at {path}")
        try:
            conn = cls._connect(path)
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            # a damaged page is found now, in one line, not at some later read mid-report
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(3)")]
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{path}: not an fpx-arena tournament database, or a damaged one ({e})") from None
        if problems != ["ok"]:
            conn.close()
            first = " ".join(problems[0].split())  # quick_check's report spans lines
            raise StoreError(f"{path}: the tournament database is damaged ({first[:160]}); "
                             "it cannot be used as it is")
        if "schema_version" not in tables:
            conn.close()
            raise StoreError(f"{path}: not an fpx-arena tournament database (no schema_version table)")
        try:
            row = conn.execute("SELECT version FROM schema_version").fetchone()
        except sqlite3.DatabaseError as e:
            conn.close()
            raise StoreError(_db_message(path, e, "reading its schema version")) from None
        version = row[0] if row else None
        if not isinstance(version, int) or version < 1:
            conn.close()
            raise StoreError(f"{path}: unknown tournament schema version {version!r}")
        if version > SCHEMA_VERSION:
            conn.close()
            raise StoreError(f"{path} was written by a newer fpx-arena (schema version {version}; this "
                             f"version reads up to {SCHEMA_VERSION}): upgrade fpx-arena to read it")
        return cls(path, conn)

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ----------------------------------------------------------------- meta
    @_guarded("reading the run's settings (meta)")
    def meta(self) -> dict:
        out = {}
        for k, v in self.conn.execute("SELECT key, value FROM meta"):
            try:
                out[k] = json.loads(v)
            except (ValueError, TypeError):
                raise StoreError(f"{self.path}: the run setting {k!r} (meta) is not valid JSON: the database was "
                                 "edited or damaged") from None
        return out

    @_guarded("storing a run setting (meta)")
    def set_meta(self, key: str, value) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # ----------------------------------------------------------------- writing
    def add_match(self, summary: dict) -> None:
        """Commit one finished match (and its per-agent rows) in one transaction. A key that is
        already stored is an error: a match must never be counted twice."""
        try:
            self._add_match(summary)
        except sqlite3.DatabaseError as e:
            raise StoreError(_db_message(self.path, e, f"storing match {summary['key']}")) from None

    def _add_match(self, summary: dict) -> None:
        agents = summary["agents"]
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(
                "INSERT INTO matches VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (summary["key"], summary["order"], summary["arena"], summary["game"], summary["seed"],
                 summary["seed_index"], int(summary["swapped"]), summary["agent_a"], summary["agent_b"],
                 json.dumps(summary["seats"]), summary["winner"], summary["score_a"], summary["ticks"],
                 summary["clock"], summary["tick_hz"], summary["final_digest"], summary["replay"],
                 summary["wall_time_s"], summary["worker"], time.time()))
            for name, a in agents.items():
                self.conn.execute(
                    "INSERT INTO match_agents VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (summary["key"], name, a["seat"], a["spec"], a["reward"], a["decisions"], a["invalid"],
                     a["errors"], a["timeouts"], a["abstained"], a["missed_ticks"], a["latency_n"],
                     a["latency_mean_ms"], a["latency_p50_ms"], a["latency_p95_ms"], a["latency_p99_ms"],
                     a["latency_max_ms"], a["latencies"], json.dumps(a["metrics"], sort_keys=True),
                     a["last_error"]))
        except sqlite3.IntegrityError as e:
            self.conn.execute("ROLLBACK")
            raise StoreError(f"match {summary['key']} is already stored ({e}): it would be counted twice") from None
        except BaseException:
            if self.conn.in_transaction:  # SQLite rolls back by itself on some errors (a full disk)
                self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.DatabaseError:  # e.g. a full disk at commit: the transaction is still open
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    @_guarded("storing a skipped agent")
    def skip_agent(self, agent: str, reason: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO skipped_agents VALUES (?, ?, ?)", (agent, reason, time.time()))

    # ----------------------------------------------------------------- reading
    @_guarded("reading the stored matches")
    def done_keys(self) -> set:
        return {r[0] for r in self.conn.execute("SELECT key FROM matches")}

    @_guarded("counting the stored matches")
    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM matches").fetchone()[0]

    @_guarded("reading the skipped agents")
    def skipped_agents(self) -> dict:
        return dict(self.conn.execute("SELECT agent, reason FROM skipped_agents"))

    @_guarded("reading the stored matches")
    def matches(self, arena: str | None = None, *, with_latencies: bool = True) -> list[MatchRecord]:
        """Stored matches in schedule order (not finishing order)."""
        where, args = ("WHERE arena = ?", (arena,)) if arena else ("", ())
        rows = self.conn.execute(f"SELECT * FROM matches {where} ORDER BY ord", args).fetchall()
        cols = [d[0] for d in self.conn.execute("SELECT * FROM matches LIMIT 0").description]
        acols = [d[0] for d in self.conn.execute("SELECT * FROM match_agents LIMIT 0").description]
        per_match: dict = {}
        for r in self.conn.execute("SELECT * FROM match_agents"):
            d = dict(zip(acols, r))
            d["metrics"] = json.loads(d["metrics"])
            blob = d.pop("latencies")
            if with_latencies:
                d["latencies"] = np.frombuffer(blob or b"", dtype=np.float32).astype(float)
            per_match.setdefault(d.pop("match_key"), {})[d.pop("agent")] = d
        out = []
        for r in rows:
            d = dict(zip(cols, r))
            out.append(MatchRecord(
                key=d["key"], order=d["ord"], arena=d["arena"], game=d["game"], seed=d["seed"],
                seed_index=d["seed_index"], swapped=bool(d["swapped"]), agent_a=d["agent_a"],
                agent_b=d["agent_b"], seats=json.loads(d["seats"]), winner=d["winner"],
                score_a=d["score_a"], ticks=d["ticks"], clock=d["clock"], tick_hz=d["tick_hz"],
                final_digest=d["final_digest"], replay=d["replay"], wall_time_s=d["wall_time_s"],
                worker=d["worker"], agents=per_match.get(d["key"], {})))
        return out


__all__ = ["Store", "StoreError", "RunLock", "MatchRecord", "SCHEMA_VERSION", "summarize"]
