"""Agents: anything with ``reset(agent_id, observation_space, action_space, seed)`` and
``act(observation, info) -> action``.

``make(spec)`` builds one from a spec string or an ``AgentSpec`` (agents/spec.py parses them):

- a built-in name: ``random``, ``noop``, ``human``, or ``<game>/<bot>``, a game's scripted bot
- ``llm:<model>@<precision>`` (optionally ``llm:<model>@<precision>?mode=free&max_tokens=8``)
- ``package.module:Class`` (keyword arguments after ``?``: ``pkg.mod:Cls?depth=3``)
- ``adaptive:<spec>,<spec>`` (an agent switching between model-backed specs)
- a name registered by a third-party package under the entry-point group ``fpx_arena.agents``
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Callable, Protocol, runtime_checkable

from .. import games
from ..errors import SpecError
from .base import NoopAgent, RandomAgent
from .process import ProcessAgent
from .spec import AgentSpec

ENTRY_POINT_GROUP = "fpx_arena.agents"


@runtime_checkable
class Agent(Protocol):
    def reset(self, agent_id: str, observation_space, action_space, seed: int | None) -> None: ...

    def act(self, observation, info: dict) -> Any: ...


# name -> factory, or "module:attribute" of one (imported on use: the human agent needs pygame);
# scripted bots are `<game>/<bot>`, found through the game's descriptor (games.get(game).bots)
_BUILTIN = {
    "random": RandomAgent,
    "noop": NoopAgent,
    "human": "fpx_arena.agents.human:HumanAgent",
}


def _load(target: str):
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise SpecError(f"cannot import {module_name!r}: {e}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise SpecError(f"module {module_name!r} has no attribute {attr!r}") from None


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def builtin_specs() -> list[str]:
    """Every spec `make` accepts without arguments, for `fpx-arena agents`."""
    specs = sorted(_BUILTIN)
    for game in games.names():
        try:
            specs += games.get(game).bot_specs()
        except SpecError:  # a broken third-party game must not hide every other agent
            pass
    return specs + sorted(_entry_points())


def make(spec: str | AgentSpec, *, isolate: bool = False, **overrides) -> Agent:
    """Build an agent from its spec (a string or an AgentSpec; see the module doc). isolate:
    run a module-path or entry-point agent in a child process (agents.process), so that its
    crash, sys.exit or os._exit cannot end this one. Raises SpecError."""
    spec = AgentSpec.parse(spec)
    text = str(spec)
    if isolate and spec.isolatable:
        return ProcessAgent(spec, make, **overrides)
    kwargs = {**spec.kwargs, **overrides}
    factory: Callable[..., Any] | None = None
    if spec.kind == "llm" and spec.precision == "adaptive":
        factory = _adaptive_factory(text)
        kwargs["model"] = spec.model
    elif spec.kind == "llm":
        from .llm import LLMAgent

        agent = LLMAgent(model=spec.model, precision=spec.precision, **kwargs)
        agent.spec = text
        return agent
    elif spec.kind == "adaptive":
        factory = _adaptive_factory(text)
        kwargs["parts"] = [str(p) for p in spec.parts]
    elif spec.kind == "builtin":
        factory = _BUILTIN[spec.base]
    elif spec.kind == "family" and spec.family in games.names():
        factory = games.get(spec.family).bot(spec.name)
    elif spec.kind == "module":
        factory = _load(spec.base)
    elif spec.kind == "entry":
        eps = _entry_points()
        if spec.base in eps:
            factory = eps[spec.base].load()
    if factory is None:
        raise SpecError(
            f"unknown agent spec {text!r}; known: {', '.join(builtin_specs())}, "
            "llm:<model>@<precision>, or package.module:Class"
        )
    if isinstance(factory, str):
        factory = _load(factory)
    try:
        agent = factory(**kwargs)
    except TypeError as e:
        raise SpecError(f"{text!r}: {e}") from None
    for method in ("reset", "act"):
        if not callable(getattr(agent, method, None)):
            raise SpecError(f"{text!r} built {type(agent).__name__}, which has no {method}() method")
    try:
        agent.spec = text
    except AttributeError:
        pass
    return agent


def _adaptive_factory(text: str):
    """Adaptive agents live in agents/adaptive.py (a factory ``make_adaptive(parts, **options)``)."""
    try:
        return _load("fpx_arena.agents.adaptive:make_adaptive")
    except SpecError:
        raise SpecError(f"{text!r}: adaptive agents are not available in this version") from None


__all__ = ["Agent", "AgentSpec", "make", "builtin_specs", "RandomAgent", "NoopAgent", "ENTRY_POINT_GROUP"]
