"""fpx-arena: real-time game-playing LLM bots on FP8/FP4 kernels.

Public entry points: ``run_match`` (the deadline scheduler), ``fpx_arena.games.make``,
``fpx_arena.agents.make`` and ``fpx_arena.llm.load_model``.
"""
from __future__ import annotations

import os as _os

__version__ = "0.1.0"

# The sub-packages kernels/, games/, agents/ and tournaments/ sit beside this folder in the
# source tree and are mapped into this namespace by pyproject.toml when installed. Running
# straight from a checkout (PYTHONPATH=.) has no such mapping, so extend the search path.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if not _os.path.isdir(_os.path.join(_os.path.dirname(__file__), "games")) and _os.path.isfile(
    _os.path.join(_root, "pyproject.toml")
) and _os.path.isdir(_os.path.join(_root, "games")):
    __path__.append(_root)  # type: ignore[name-defined]


def __getattr__(name):  # lazy: importing fpx_arena must stay cheap (no torch)
    if name in ("run_match", "MatchResult", "MatchSpec"):
        from . import match

        return getattr(match, name)
    raise AttributeError(name)


__all__ = ["run_match", "MatchResult", "MatchSpec", "__version__"]
