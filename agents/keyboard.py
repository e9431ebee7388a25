"""The keyboard as the viewer last saw it, shared with human agents.

The viewer's event loop (main thread) writes here; ``HumanAgent.act`` (the main thread under
virtual clocks, a worker thread under the wall clock) reads. Keys are pygame key names
(``pygame.key.name``: "a", "left", "space", "[1]" ...), so this module needs no pygame.
"""
from __future__ import annotations

import threading


class KeyboardState:
    def __init__(self):
        self._lock = threading.Lock()
        self._held: frozenset = frozenset()
        self._presses: dict = {}  # key -> presses seen since the start (edge count)
        self.listening = False  # True while a viewer window feeds this state

    def press(self, key: str) -> None:
        with self._lock:
            self._held = self._held | {key}
            self._presses[key] = self._presses.get(key, 0) + 1

    def release(self, key: str) -> None:
        with self._lock:
            self._held = self._held - {key}

    def clear(self) -> None:
        """Forget held keys (the window lost focus: key-up events would never come)."""
        with self._lock:
            self._held = frozenset()

    def held(self) -> frozenset:
        return self._held  # replaced, never mutated: safe to read without the lock

    def presses(self, key: str) -> int:
        return self._presses.get(key, 0)


# One keyboard per process, as there is one window.
KEYBOARD = KeyboardState()
