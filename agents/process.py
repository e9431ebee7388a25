"""Agents in a child process: third-party code whose crash, ``sys.exit``, ``os._exit`` or hang
must cost one match, not the process that plays it.

``ProcessAgent(spec)`` starts a spawned child that builds ``make(spec)`` and answers ``reset``
and ``act`` over a pipe (pickled arguments: observations, spaces, a DecisionContext). When the
child dies, the call in progress raises ``AgentDied`` with the reason; the next ``reset`` (the
next match) starts a fresh child. ``interrupt()`` kills a child that hangs.
"""
from __future__ import annotations

import ctypes
import multiprocessing as mp
import queue
import signal
import sys
import threading
import traceback

from ..errors import SpecError
from .context import accepts_context

READY_TIMEOUT_S = 120.0  # importing a heavy agent module (torch) in a fresh interpreter


class AgentDied(Exception):
    """The agent's process is gone (or the agent asked to end it): it forfeits the match."""


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _die_with_parent():
    """Ask Linux to kill this child when the process that plays its matches dies (even by
    SIGKILL): an agent stuck in a call never reads the pipe that would tell it."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


_spawner: tuple | None = None  # (thread, job queue) that starts every child
_spawner_lock = threading.Lock()


def _spawn_loop(jobs: queue.SimpleQueue):
    while True:
        proc, done, failed = jobs.get()
        try:
            proc.start()
        except BaseException as e:  # noqa: BLE001 - re-raised in the thread that asked
            failed.append(e)
        done.set()


def _start_process(proc) -> None:
    """Start ``proc`` from one thread that lives as long as this process. Linux sends the
    parent-death signal when the *thread* that started a child ends: a child started from a
    match's agent thread would be killed when that thread winds down, which can be in the
    middle of the next match that reuses the child."""
    global _spawner
    with _spawner_lock:
        if _spawner is None or not _spawner[0].is_alive():
            jobs: queue.SimpleQueue = queue.SimpleQueue()
            thread = threading.Thread(target=_spawn_loop, args=(jobs,), daemon=True, name="fpx-agent-spawner")
            thread.start()
            _spawner = (thread, jobs)
        done, failed = threading.Event(), []
        _spawner[1].put((proc, done, failed))
        done.wait()
    if failed:
        raise failed[0]


def _child(conn, build, spec: str, overrides: dict):
    _die_with_parent()
    try:
        agent = build(spec, **overrides)
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises SpecError
        conn.send(("error", str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__))
        return
    with_context = accepts_context(agent)
    conn.send(("ready", type(agent).__name__))
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if method == "act":
                observation, info, context = args
                value = agent.act(observation, info, context=context) if with_context else agent.act(observation, info)
                conn.send(("ok", (value, getattr(agent, "last_timing", None))))
            elif method == "reset":
                conn.send(("ok", agent.reset(*args)))
            else:
                return
        except SystemExit as e:
            conn.send(("exit", f"the agent called sys.exit({e.code!r})"))
            return
        except Exception as e:
            conn.send(("raise", (_one_line(e), traceback.format_exc(limit=-3))))


class ProcessAgent:
    """A proxy that forwards reset/act to the agent built from `spec` in a child process."""

    def __init__(self, spec, build, **overrides):
        """build: the factory the child calls, build(spec, **overrides) (agents.make: passed in,
        so that this module needs nothing from the registry that imports it)."""
        self.spec = str(spec)
        self._build = build
        self._overrides = overrides
        self._ctx = mp.get_context("spawn")
        self._proc = None
        self._conn = None
        self._reset_args = None
        self._interrupted = False
        self.last_timing = None
        self._start()

    def _start(self):
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_child, args=(child, self._build, self.spec, self._overrides),
                                       daemon=True, name=f"fpx-agent {self.spec[:40]}")
        _start_process(self._proc)
        child.close()
        self._conn = parent
        if not parent.poll(READY_TIMEOUT_S):
            self.close()
            raise SpecError(f"{self.spec!r}: its process did not start within {READY_TIMEOUT_S:.0f} s")
        try:
            kind, value = parent.recv()
        except (EOFError, OSError):
            code = self._reap()
            raise SpecError(f"{self.spec!r}: its process exited while building the agent (exit code {code})") from None
        if kind == "error":
            self._reap()
            raise SpecError(value)

    def _reap(self):
        self._proc.join(5.0)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5.0)
        return self._proc.exitcode

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def _call(self, method: str, args):
        try:
            self._conn.send((method, args))
            kind, value = self._conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            code = self._reap()
            if code is not None and code < 0:
                raise AgentDied(f"the agent's process was killed by signal {-code}") from None
            raise AgentDied(f"the agent's process exited with code {code}") from None
        if kind == "ok":
            return value
        if kind == "exit":
            self._reap()
            raise AgentDied(value)
        raise RuntimeError(value[0])

    def reset(self, agent_id, observation_space, action_space, seed):
        if not self.alive:
            self._start()
        self._interrupted = False
        self._reset_args = (agent_id, observation_space, action_space, seed)
        self._call("reset", self._reset_args)

    def act(self, observation, info, context=None):
        if self._interrupted:  # the last call hung and was killed: a fresh child, reset as before
            self._interrupted = False
            self._start()
            self._call("reset", self._reset_args)
        action, self.last_timing = self._call("act", (observation, info, context))
        return action

    def interrupt(self):
        """Stop a call that hangs: kill the child; the next act() starts a fresh one (reset with
        the match's arguments again), so a hang costs that decision."""
        if self._proc is not None and self._proc.is_alive():
            self._interrupted = True
            self._proc.kill()

    def close(self):
        if self._proc is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(5.0)

    def __del__(self):
        try:
            if self._proc is not None and self._proc.is_alive():
                self._proc.kill()
        except Exception:  # interpreter shutdown: the child dies with us anyway (PR_SET_PDEATHSIG)
            pass
