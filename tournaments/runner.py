"""Running a tournament: schedule, dispatch to workers (local processes or Ray actors), commit
each result the moment it arrives, show progress, and resume a killed run.

Only this process writes the database, so SQLite never sees two writers; workers write their
replay files themselves (local) or ship them back (Ray).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..agents.spec import AgentSpec
from ..errors import UserError
from .machine import loadavg, session_record
from .ratings import Game, fit_bradley_terry
from .schedule import build_schedule, latencies, seat_ids, uses_models
from .inputs import check_inputs, resolved_inputs
from .spec import TournamentSpec, load_spec
from .store import RunLock, Store, StoreError
from .worker import worker_main

DB_NAME = "tournament.db"
CRASHES_GIVEN_UP = 2  # a match that killed this many workers is never played again


@dataclass
class RunOutcome:
    run_dir: Path
    db_path: Path
    total: int  # scheduled matches
    stored: int  # stored now (earlier runs included)
    played: int  # played by this call
    skipped_agents: dict = field(default_factory=dict)
    elapsed_s: float = 0.0


# --------------------------------------------------------------------------- placement

def detect_gpus(setting="auto") -> list[str]:
    """GPU ids to place workers on: the spec's list, CUDA_VISIBLE_DEVICES, or nvidia-smi's
    count (not torch: the tournament process itself never needs CUDA)."""
    if setting == "none":
        return []
    if isinstance(setting, list):
        return [str(g) for g in setting]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]


def plan_workers(spec: TournamentSpec, requested: int | None, pending: int) -> list[str | None]:
    """One entry per worker: the GPU it is placed on, or None for a CPU worker."""
    gpus = detect_gpus(spec.gpus) if uses_models(spec) else []
    concurrency = requested or spec.concurrency
    if concurrency == "auto":  # a CPU worker holds its own copy of every model it plays: at most 8
        cpus = os.cpu_count() or 1
        concurrency = len(gpus) * spec.workers_per_gpu if gpus else min(cpus, 8) if uses_models(spec) else cpus
    n = max(1, min(int(concurrency), max(pending, 1)))
    return [gpus[i % len(gpus)] if gpus else None for i in range(n)]


# --------------------------------------------------------------------------- backends

class LocalBackend:
    """Worker processes on this machine (spawned, so CUDA and threads start clean), each with
    its own task queue so that the runner chooses which worker plays what (model affinity)."""

    SLOTS = 2  # matches queued per worker: one playing, one ready to start

    def __init__(self, spec, lat, run_dir: Path, placement: list):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.results = ctx.Queue()
        self.queues = [ctx.Queue() for _ in placement]
        threads = max(1, (os.cpu_count() or 1) // len(placement))
        self.ctx, self.placement, self.threads, self.spec, self.lat = ctx, placement, threads, spec, lat
        self.run_dir = run_dir
        # not daemonic: a worker starts child processes for isolated agents; it still dies with
        # this process (PR_SET_PDEATHSIG) and close() stops it
        self.procs = [self._start(i) for i in range(len(placement))]
        self.busy = [0] * len(placement)
        self.owner: dict = {}  # match key -> worker index
        gpus = sorted({g for g in placement if g is not None})
        self.description = f"{len(placement)} worker{'s' * (len(placement) > 1)}" + (
            f" on GPU {','.join(gpus)}" if gpus else "")

    def _start(self, i: int):
        p = self.ctx.Process(target=worker_main, daemon=False, name=f"fpx-tournament-{i}",
                             args=(i, self.placement[i], self.threads, self.spec, self.lat,
                                   str(self.run_dir / "replays"), self.queues[i], self.results))
        p.start()
        return p

    def describe(self) -> str:
        return self.description

    def free_slots(self) -> list[int]:
        """Worker indices with room for another match, least busy first."""
        return sorted((w for w in range(len(self.procs)) if self.busy[w] < self.SLOTS), key=lambda w: self.busy[w])

    def submit(self, worker: int, task):
        self.busy[worker] += 1
        self.owner[task.key] = worker
        self.queues[worker].put(task)

    def poll(self, timeout: float) -> list:
        import queue

        events = []
        try:
            events.append(self.results.get(timeout=timeout))
            while True:
                events.append(self.results.get_nowait())
        except queue.Empty:
            pass
        events = [e for e in events if e[0] != "ready"]
        for e in events:
            self.busy[self.owner.pop(e[1])] -= 1
        if not events:
            for w, p in enumerate(self.procs):
                if p.exitcode is None:
                    continue
                keys = [k for k, owner in self.owner.items() if owner == w]
                if not keys:
                    raise UserError(f"worker {p.name} died (exit code {p.exitcode}); continue with "
                                    f"--resume {self.run_dir}")
                # the matches it held are reported; a fresh worker takes its place
                for k in keys:
                    del self.owner[k]
                    events.append(("crashed", k, f"worker {p.name} died (exit code {p.exitcode})"))
                self.busy[w] = 0
                self.queues[w] = self.ctx.Queue()
                self.procs[w] = self._start(w)
        return events

    def close(self):
        for q in self.queues:
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 5.0
        for p in self.procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join(2.0)


def pick_task(queue: list, loaded: set, heavy: set, lookahead: int = 64):
    """The next task for a worker that holds the agents `loaded`: the first of the next
    `lookahead` tasks whose model-backed (`heavy`) agents it already holds, else the first.
    Results do not depend on this order; model loading (and GPU memory) do."""
    for i, task in enumerate(queue[:lookahead]):
        if set(task.seats) & heavy <= loaded:
            return queue.pop(i)
    return queue.pop(0) if queue else None


# --------------------------------------------------------------------------- progress

class Leaderboard:
    """The current leader per arena for the progress bar: the best-rated deployment candidate
    (a quick BT fit, no bootstrap), with its lead over the next agent."""

    def __init__(self, spec: TournamentSpec):
        self.spec = spec
        self.games: dict = {a.label: [] for a in spec.arenas}
        self._text, self._at = "", 0.0

    def add(self, arena, a, b, score):
        self.games[arena].append(Game(a, b, score))

    def text(self, force=False) -> str:
        from .analysis import candidates

        if force or time.monotonic() - self._at > 0.5:
            parts = []
            for arena, games in self.games.items():
                if games:
                    fit = fit_bradley_terry(games, n_bootstrap=0)
                    pool = set(candidates(self.spec, fit.agents))
                    ranked = sorted((r, a) for a, r in zip(fit.agents, fit.ratings) if a in pool)
                    if ranked:
                        parts.append(f"{arena}: {ranked[-1][1]} ({ranked[-1][0]:+.0f})")
            self._text, self._at = ("leader " + ", ".join(parts)) if parts else "", time.monotonic()
        return self._text


# --------------------------------------------------------------------------- running

def new_run_dir(spec: TournamentSpec, root: str | Path = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{spec.name}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{spec.name}-{stamp}-{n}"
    return path


def spec_from_run(run_dir: Path) -> TournamentSpec:
    """The spec a run was started with (stored in its database), for --resume and reports."""
    with Store.open(run_dir / DB_NAME) as store:
        meta = store.meta()
    if "spec_source" not in meta:
        raise StoreError(f"{run_dir / DB_NAME} holds no tournament spec")
    # relative paths resolve against the folder the spec was in when the run started, not the
    # folder the resume runs from (older runs stored none: their spec file's own folder)
    return load_spec(meta.get("spec_path"), text=meta["spec_source"], name=meta.get("name"),
                     base=meta.get("spec_dir"))


def run_tournament(spec: TournamentSpec | None, run_dir, *, resume: bool = False, backend: str = "local",
                   workers: int | None = None, ray_address: str | None = None, progress: bool = True,
                   log=None) -> RunOutcome:
    """Play every scheduled match of `spec` that `run_dir` has no result for.

    New run: run_dir must not hold a database yet. resume=True: continue the run in run_dir
    (spec None takes the stored spec; a given spec must be the same tournament)."""
    log = log or (lambda message: print(message, file=sys.stderr))
    run_dir = Path(run_dir)
    db_path = run_dir / DB_NAME
    if resume:
        stored = spec_from_run(run_dir)
        if spec is not None and spec.identity() != stored.identity():
            raise UserError(f"{spec.path} is not the tournament stored in {db_path} (other agents, games or "
                            "seeds); resume without a spec, or start a new run")
        spec = spec if spec is not None else stored
    elif spec is None:
        raise UserError("no tournament spec given")
    elif db_path.exists():
        raise UserError(f"{db_path} already exists: pass --resume to continue that run, or choose another --out")

    lock = RunLock(run_dir).acquire()  # one runner per run: a second one is refused in one line
    try:
        inputs = resolved_inputs(spec)
        if resume:
            stored_inputs = spec_inputs(run_dir)
            if stored_inputs is not None:
                check_inputs(stored_inputs, inputs, str(run_dir))
        elif db_path.exists():  # another runner created it since the check above
            raise UserError(f"{db_path} already exists: pass --resume to continue that run, or choose another --out")
        unavailable = _preflight(spec)
        seats = {arena.label: seat_ids(spec, arena) for arena in spec.arenas}
        tasks = build_schedule(spec, seats=seats)
        lat = latencies(spec)
        if resume:
            store = Store.open(db_path)
        else:
            store = Store.create(db_path, {
                "name": spec.name, "spec_source": spec.source, "spec_path": spec.path,
                "spec_dir": spec.base_dir, "inputs": inputs,
                "spec_identity": spec.identity(), "fpx_arena_version": __version__,
                "scheduled": len(tasks), "python": sys.version.split()[0],
            })
    except BaseException:
        lock.release()
        raise
    try:
        stored_skips = store.skipped_agents()
        for name, message in unavailable.items():
            if name not in stored_skips:
                store.skip_agent(name, message)
                log(f"skipping {message}")
        return _run(spec, store, tasks, lat, run_dir, backend=backend, workers=workers,
                    ray_address=ray_address, progress=progress, log=log)
    finally:
        store.close()
        lock.release()


def spec_inputs(run_dir: Path) -> dict | None:
    """The inputs (files and models by content) a run started with; None for runs older than
    this record."""
    with Store.open(run_dir / DB_NAME) as store:
        return store.meta().get("inputs")


def _preflight(spec: TournamentSpec) -> dict:
    """Build every built-in and LLM agent once here, so that a misspelt bot, an unknown model or
    an unavailable precision is found before any worker starts: an error naming the spec's line
    for a required agent, {name: reason} for optional ones (skipped). These constructors load no
    weights (an LLM agent loads its model at its first reset, in the worker); other agents
    (package.module:Class, plug-ins) may be heavy and are checked by the workers instead."""
    from .. import agents

    unavailable = {}
    for i, entry in enumerate(spec.agents):
        if AgentSpec.parse(entry.spec).isolatable:
            continue
        try:
            agents.make(entry.spec)
        except Exception as e:  # UserError, or an import error of an optional dependency
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            message = f"agent {entry.name!r} ({entry.spec}) is unavailable: {reason}"
            if not entry.optional:
                raise spec.error(("agents", i, "spec"), message + " (mark it optional = true to play on "
                                 "without it)") from None
            unavailable[entry.name] = message
    return unavailable


def _run(spec, store: Store, tasks, lat, run_dir: Path, *, backend, workers, ray_address, progress, log) -> RunOutcome:
    started = time.monotonic()
    done = store.done_keys()
    skipped = store.skipped_agents()
    scheduled = {t.key for t in tasks}
    stray = done - scheduled
    if stray:
        raise StoreError(f"{store.path} holds {len(stray)} matches this spec does not schedule "
                         f"(e.g. {sorted(stray)[0]}): it belongs to another tournament")
    crashes = store.meta().get("worker_crashes", {})  # match key -> workers it killed
    given_up = {k for k, n in crashes.items() if n >= CRASHES_GIVEN_UP}
    pending = [t for t in tasks if t.key not in done and t.key not in given_up and not (set(t.seats) & set(skipped))]
    board = Leaderboard(spec)
    for m in store.matches(with_latencies=False):
        board.add(m.arena, m.agent_a, m.agent_b, m.score_a)
    played = 0
    if pending:
        placement = plan_workers(spec, workers, len(pending))
        session = session_record(placement, max(1, (os.cpu_count() or 1) // len(placement))
                                 if backend == "local" else None)
        if backend == "ray":
            from .ray_backend import RayBackend

            engine = RayBackend(spec, lat, pending=len(pending), local_workers=len(placement),
                                address=ray_address, workers=workers)
        elif backend == "local":
            engine = LocalBackend(spec, lat, run_dir, placement)
        else:
            raise UserError(f"unknown backend {backend!r}; choose local or ray")
        bar = _progress_bar(len(done) + len(pending), len(done), progress, engine)
        queue = list(pending)
        # model affinity spares GPU memory; CPU workers load every model anyway, and playing
        # the schedule in order keeps each seed's mix of cheap and costly matches (a steady ETA)
        heavy = {a.name for a in spec.agents if AgentSpec.parse(a.spec).model_backed} \
            if any(g is not None for g in placement) else set()
        loaded: dict = {}  # worker -> model-backed agents it has built
        in_flight: dict = {}
        try:
            while queue or in_flight:
                for worker in engine.free_slots():
                    if skipped:
                        queue[:] = [t for t in queue if not set(t.seats) & set(skipped)]
                    task = pick_task(queue, loaded.setdefault(worker, set()), heavy)
                    if task is None:
                        break
                    loaded[worker] |= set(task.seats) & heavy
                    in_flight[task.key] = task
                    engine.submit(worker, task)
                for event in engine.poll(0.5):
                    kind, key = event[0], event[1]
                    task = in_flight.pop(key, None)
                    if kind == "done":
                        summary, replay_bytes = event[2], event[3]
                        if replay_bytes is not None:
                            _write_replay(run_dir / summary["replay"], replay_bytes)
                        store.add_match(summary)
                        played += 1
                        board.add(summary["arena"], summary["agent_a"], summary["agent_b"], summary["score_a"])
                        if bar is not None:
                            bar.update(1)
                            bar.set_postfix_str(board.text(), refresh=False)
                    elif kind == "agent_error":
                        name, message = event[2], event[3]
                        entry = spec.agent(name)
                        if not entry.optional:
                            raise UserError(message + " (mark it optional = true to play on without it)")
                        dropped = 1
                        if name not in skipped:
                            skipped[name] = message
                            store.skip_agent(name, message)
                            _say(bar, log, f"skipping {message}")
                            dropped += sum(1 for t in queue if name in t.seats)
                        if bar is not None:
                            bar.total -= dropped
                            bar.refresh()
                    elif kind == "crashed":
                        crashes[key] = crashes.get(key, 0) + 1
                        store.set_meta("worker_crashes", crashes)
                        if crashes[key] >= CRASHES_GIVEN_UP:
                            _say(bar, log, f"match {key} killed its worker {crashes[key]} times ({event[2]}): "
                                 "given up, never played again")
                            if bar is not None:
                                bar.total -= 1
                                bar.refresh()
                        elif task is not None:
                            queue.insert(0, task)
                    elif kind == "error":
                        with (run_dir / "errors.log").open("a") as f:
                            f.write(f"match {key}:\n{event[3]}\n")
                        raise UserError(f"match {key} failed: {event[2]} (traceback in "
                                        f"{run_dir / 'errors.log'}; fix it and continue with --resume {run_dir})")
        except KeyboardInterrupt:
            _say(bar, log, f"interrupted: {store.count()} of {len(tasks)} matches are stored; continue with "
                 f"fpx-arena tournament --resume {run_dir}")
            raise
        finally:
            engine.close()
            if bar is not None:
                bar.close()
            session.update(loadavg_end=loadavg(), played=played)  # the report names the machine
            store.set_meta("sessions", store.meta().get("sessions", []) + [session])
    return RunOutcome(run_dir=run_dir, db_path=store.path, total=len(tasks), stored=store.count(),
                      played=played, skipped_agents=dict(skipped), elapsed_s=time.monotonic() - started)


def _write_replay(path: Path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _say(bar, log, message):
    if bar is not None:
        bar.write(message, file=sys.stderr)
    else:
        log(message)


def _progress_bar(total, initial, enabled, engine):
    if not enabled:
        return None
    from tqdm import tqdm

    # smoothing=0: the ETA from the mean rate since the start; matches of bots and of models
    # differ tenfold in length, and a moving average made the ETA jump with each kind
    return tqdm(total=total, initial=initial, unit="match", dynamic_ncols=True, file=sys.stderr, smoothing=0,
                desc=f"tournament ({getattr(engine, 'describe', lambda: '')()})".replace(" ()", ""))


def load_default_spec() -> TournamentSpec:
    """The tournament `fpx-arena tournament` runs without a spec (tournaments/default.toml)."""
    from importlib.resources import as_file, files

    resource = files(__package__) / "default.toml"
    with as_file(resource) as path:
        return load_spec(path)


__all__ = ["run_tournament", "RunOutcome", "new_run_dir", "spec_from_run", "load_default_spec",
           "detect_gpus", "plan_workers", "LocalBackend", "DB_NAME"]
