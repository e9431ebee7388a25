"""Agents: anything with ``reset(agent_id, observation_space, action_space, seed)`` and
``act(observation, info) -> action``.

``make(spec)`` builds one from a spec string:

- a built-in name: ``random``, ``noop``, ``fighter/<bot>``, ``market/<bot>``, ``human``
- ``llm:<model>@<precision>`` (optionally ``llm:<model>@<precision>?mode=free&max_tokens=8``)
- ``package.module:Class`` (keyword arguments after ``?``: ``pkg.mod:Cls?depth=3``)
- a name registered by a third-party package under the entry-point group ``fpx_arena.agents``
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Callable, Protocol, runtime_checkable

from ..errors import SpecError
from .base import NoopAgent, RandomAgent

ENTRY_POINT_GROUP = "fpx_arena.agents"


@runtime_checkable
class Agent(Protocol):
    def reset(self, agent_id: str, observation_space, action_space, seed: int | None) -> None: ...

    def act(self, observation, info: dict) -> Any: ...


# name -> "module:attribute" of a factory taking keyword arguments; modules import lazily so
# that `fpx-arena agents` and scripted matches never import torch.
_BUILTIN_FAMILIES = {
    "fighter": "fpx_arena.agents.fighter_bots:BOTS",
    "market": "fpx_arena.agents.market_bots:BOTS",
}
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


def _parse_kwargs(query: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for part in filter(None, query.split("&")):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise SpecError(f"bad option {part!r}: expected key=value")
        kwargs[key] = _coerce(value)
    return kwargs


def _coerce(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def builtin_specs() -> list[str]:
    """Every spec `make` accepts without arguments, for `fpx-arena agents`."""
    specs = sorted(_BUILTIN)
    for family, target in _BUILTIN_FAMILIES.items():
        try:
            specs += [f"{family}/{name}" for name in sorted(_load(target))]
        except SpecError:
            pass
    return specs + sorted(_entry_points())


def make(spec: str, **overrides) -> Agent:
    """Build an agent from its spec string (see the module doc). Raises SpecError."""
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError(f"agent spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    base, _, query = spec.partition("?")
    kwargs = {**_parse_kwargs(query), **overrides}
    factory: Callable[..., Any] | None = None
    if base.startswith("llm:"):
        model, at, precision = base[4:].partition("@")
        if not model:
            raise SpecError(f"{spec!r}: expected llm:<model>@<precision>")
        from .llm import LLMAgent

        agent = LLMAgent(model=model, precision=precision if at else "bf16", **kwargs)
        agent.spec = spec
        return agent
    if base in _BUILTIN:
        factory = _BUILTIN[base]
    elif "/" in base and base.split("/", 1)[0] in _BUILTIN_FAMILIES:
        family, name = base.split("/", 1)
        bots = _load(_BUILTIN_FAMILIES[family])
        if name not in bots:
            raise SpecError(f"unknown {family} bot {name!r}; known: {', '.join(sorted(bots))}")
        factory = bots[name]
    elif ":" in base:
        factory = _load(base)
    else:
        eps = _entry_points()
        if base in eps:
            factory = eps[base].load()
    if factory is None:
        raise SpecError(
            f"unknown agent spec {spec!r}; known: {', '.join(builtin_specs())}, "
            "llm:<model>@<precision>, or package.module:Class"
        )
    if isinstance(factory, str):
        factory = _load(factory)
    try:
        agent = factory(**kwargs)
    except TypeError as e:
        raise SpecError(f"{spec!r}: {e}") from None
    for method in ("reset", "act"):
        if not callable(getattr(agent, method, None)):
            raise SpecError(f"{spec!r} built {type(agent).__name__}, which has no {method}() method")
    try:
        agent.spec = spec
    except AttributeError:
        pass
    return agent


__all__ = ["Agent", "make", "builtin_specs", "RandomAgent", "NoopAgent", "ENTRY_POINT_GROUP"]
