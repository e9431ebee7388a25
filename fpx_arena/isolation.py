"""Containing agents: decision timeouts under every clock, and hung threads that never come back.

Agents whose code this project ships (the scripted bots of games, random, noop) are called
inline, on the scheduler's own thread: they cannot hang, and a thread hop per decision would
cost more than the bots themselves. Every other agent is called through a ``Guard``: one
thread per agent per match, so that the scheduler can stop waiting after the decision
timeout. A timed-out call is abandoned: a Python-level loop gets an ``AgentTimeout`` raised
inside it (so a spinning agent stops stealing the interpreter), a child-process agent is
killed, and until the call returns the agent is never called again: not by another thread,
not in another match (``is_hung``). A caller that reuses agents (tournament workers) builds a
fresh one instead.
"""
from __future__ import annotations

import ctypes
import queue
import threading
import time

from .agents.process import AgentDied

TRUSTED_MODULES = ("fpx_arena.agents.base", "fpx_arena.games.")  # games/<name>/bots.py: the scripted bots
_hung: dict = {}  # id(agent) -> (agent, thread): agents whose abandoned call has not returned
_hung_lock = threading.Lock()


class AgentTimeout(Exception):
    """Raised inside an abandoned agent call to stop it."""


def trusted(agent) -> bool:
    """Agents shipped with the project, called inline (they never hang)."""
    module = type(agent).__module__
    return any(module == m or (m.endswith(".") and module.startswith(m)) for m in TRUSTED_MODULES)


def is_hung(agent) -> bool:
    """Whether an abandoned call of `agent` is still running somewhere (it must not be used)."""
    with _hung_lock:
        entry = _hung.get(id(agent))
        if entry is None:
            return False
        if entry[0] is agent and entry[1].is_alive():
            return True
        del _hung[id(agent)]
        return False


def hung_count() -> int:
    with _hung_lock:
        return sum(1 for agent, thread in _hung.values() if thread.is_alive())


def _raise_in(thread: threading.Thread, exc=AgentTimeout) -> None:
    """Ask the interpreter to raise `exc` in `thread` at its next bytecode (a blocking C call
    finishes first)."""
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc))


class Guard:
    """Calls one agent's act() on its own thread. ``submit`` starts a call, ``wait`` collects it
    (or gives up at a deadline); at most one call runs at a time."""

    def __init__(self, agent, name: str):
        self.agent = agent
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.results: queue.SimpleQueue = queue.SimpleQueue()
        self.busy = False        # a call was submitted and its result not yet collected
        self.abandoned = False   # the call in progress timed out: its result is discarded
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"fpx-agent-{name}")
        self.thread.start()

    def _run(self):
        while True:
            try:
                job = self.jobs.get()
            except AgentTimeout:  # aimed at a call that had just returned
                continue
            if job is None:
                return
            fn, args, kwargs = job
            if kwargs is None:  # a notice: nobody collects its result
                try:
                    fn(*args)
                except BaseException:  # noqa: BLE001 - see notify
                    pass
                continue
            started = time.perf_counter()
            try:
                result = (True, fn(*args, **kwargs))
            except AgentTimeout:
                result = (False, AgentTimeout("stopped after the decision timeout"))
            except SystemExit as e:  # an agent must not end the program that plays it
                result = (False, AgentDied(f"the agent called sys.exit({e.code!r})"))
            except BaseException as e:  # noqa: BLE001 - reported to the scheduler as this agent's error
                result = (False, e)
            finished = time.perf_counter()
            try:
                self.results.put((result, started, finished))
            except AgentTimeout:
                self.results.put((result, started, finished))

    def notify(self, fn, *args) -> None:
        """Run fn(*args) on the thread before the next call, collecting nothing (a notice to
        the agent, e.g. what its decision was charged). What it raises is dropped; while it
        runs the next call waits, and its time counts against that call's timeout."""
        self.jobs.put((fn, args, None))

    def submit(self, fn, *args, **kwargs) -> None:
        self.busy = True
        self.jobs.put((fn, args, kwargs))

    def poll(self):
        """The finished call's ((ok, value), started, finished), or None while it runs."""
        try:
            out = self.results.get_nowait()
        except queue.Empty:
            return None
        return self._collected(out)

    def wait(self, deadline: float):
        """Like poll, but waits until the perf_counter() `deadline`."""
        try:
            out = self.results.get(timeout=max(0.0, deadline - time.perf_counter()))
        except queue.Empty:
            return None
        return self._collected(out)

    def _collected(self, out):
        self.busy = False
        if self.abandoned:  # the late answer of a call given up on: discard it
            self.abandoned = False
            return None
        return out

    def abandon(self) -> None:
        """Give up on the call in progress and try to stop it."""
        self.abandoned = True
        interrupt = getattr(self.agent, "interrupt", None)
        if callable(interrupt):
            interrupt()
        else:
            _raise_in(self.thread)

    def call(self, timeout_s: float, fn, *args, **kwargs):
        """Run fn on the thread; (ok, value, seconds it ran) or None after `timeout_s` (the call
        is abandoned). A still-running abandoned call counts against this call's time."""
        deadline = time.perf_counter() + timeout_s
        while self.busy:  # an abandoned call still running: it has to end first
            if time.perf_counter() >= deadline:
                return None
            self.wait(deadline)
        self.submit(fn, *args, **kwargs)
        out = self.wait(deadline)
        if out is None:
            self.abandon()
            return None
        (ok, value), started, finished = out
        return ok, value, finished - started

    def close(self) -> None:
        """End the thread; a thread stuck in a call or a notice is remembered (is_hung)."""
        self.jobs.put(None)
        self.thread.join(0.05)  # an idle thread ends at once
        if self.thread.is_alive():
            with _hung_lock:
                _hung[id(self.agent)] = (self.agent, self.thread)


__all__ = ["Guard", "AgentTimeout", "AgentDied", "trusted", "is_hung", "hung_count", "TRUSTED_MODULES"]
