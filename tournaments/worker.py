"""What a tournament worker does: build each agent once, then play match after match.

The same MatchPlayer runs inside local worker processes and inside Ray actors. It returns
events, never raises for a match: ("done", key, summary, replay_bytes | None),
("agent_error", key, agent_name, message) or ("error", key, message, traceback).
"""
from __future__ import annotations

import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path

from .. import agents, games
from ..isolation import is_hung
from .schedule import match_spec
from .store import summarize


class AgentUnavailable(Exception):
    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


class MatchPlayer:
    """Plays scheduled matches with agents built once per worker and reused (the scheduler
    calls agent.reset with the match's seed before every match, so a reused agent plays exactly
    as a fresh one would). Module-path and plug-in agents run in child processes (a crash, an
    exit or a hang forfeits the match, the worker plays on); an agent whose timed-out call is
    still running (isolation.is_hung) is never reused: a fresh one is built."""

    def __init__(self, spec, latencies: dict, *, replay_dir: str | None, worker: str):
        self.spec = spec
        self.latencies = latencies
        self.replay_dir = Path(replay_dir) if replay_dir else None
        self.worker = worker
        self.agents: dict = {}
        self.failed: dict = {}

    def agent(self, name: str):
        if name in self.failed:
            raise AgentUnavailable(name, self.failed[name])
        if name in self.agents and is_hung(self.agents[name]):
            del self.agents[name]
        if name not in self.agents:
            entry = self.spec.agent(name)
            try:
                self.agents[name] = agents.make(entry.spec, isolate=True)
            except Exception as e:  # SpecError, CheckpointError, a missing model, an import error
                self.failed[name] = f"agent {name!r} ({entry.spec}) is unavailable: {_one_line(e)}"
                raise AgentUnavailable(name, self.failed[name]) from None
        return self.agents[name]

    def play(self, task):
        try:
            return self._play(task)
        except AgentUnavailable as e:
            return ("agent_error", task.key, e.name, str(e))
        except Exception as e:
            return ("error", task.key, f"{type(e).__name__}: {_one_line(e)}", traceback.format_exc())

    def _play(self, task):
        match = match_spec(self.spec, task, self.latencies)
        players = {seat: self.agent(name) for seat, name in zip(task.seat_ids, task.seats)}
        env = match.make_env()
        if match.game not in games.names():  # replays name registered games only: none for module:function games
            record = None
        elif self.replay_dir is not None:
            record = self.replay_dir / task.replay_name
        else:  # a remote worker: record locally, ship the bytes to the driver
            fd, tmp = tempfile.mkstemp(suffix=".replay.gz")
            os.close(fd)
            record = Path(tmp)
        try:
            result = match.play(env, players, record=record)
            # the scheduler plays on with an agent whose reset() failed (it just never acts);
            # in a tournament that is an agent that cannot play, not a lost match
            for seat, name in zip(task.seat_ids, task.seats):
                error = result.stats[seat].last_error
                if error.startswith("reset:") and result.stats[seat].decisions == 0:
                    entry = self.spec.agent(name)
                    self.failed[name] = f"agent {name!r} ({entry.spec}) is unavailable: {error[7:].strip()}"
                    raise AgentUnavailable(name, self.failed[name])
            replay_bytes = None
            if self.replay_dir is None and record is not None:
                replay_bytes = record.read_bytes()
        finally:
            if hasattr(env, "close"):
                env.close()
            if self.replay_dir is None and record is not None:
                record.unlink(missing_ok=True)
        summary = summarize(task, result, replay=f"replays/{task.replay_name}" if record is not None else None,
                            worker=self.worker)
        return ("done", task.key, summary, replay_bytes)

    def close(self):
        for agent in self.agents.values():
            if hasattr(agent, "close"):
                agent.close()


# --------------------------------------------------------------------------- local processes

def _die_with_parent():
    """Ask Linux to SIGKILL this worker when the tournament process dies, even by SIGKILL:
    an orphaned worker would otherwise finish its match and race a resumed run."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def worker_main(index: int, gpu: str | None, threads: int, spec, latencies, replay_dir: str, tasks, results):
    """Entry point of a local worker process (spawned: nothing is inherited but arguments)."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    # placement before anything imports torch: one GPU per worker, a share of the CPU threads
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import multiprocessing
    import queue

    parent = multiprocessing.parent_process()
    name = f"local-{index}" + (f"@gpu{gpu}" if gpu is not None else "")
    player = MatchPlayer(spec, latencies, replay_dir=replay_dir, worker=name)
    results.put(("ready", index, None))
    while True:
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                return
            continue
        if task is None:
            player.close()
            return
        results.put(player.play(task))
