"""The ``Game`` descriptor: everything the rest of fpx-arena knows about one game.

A game is one folder (``games/<name>/``, or a third-party package registered under the
entry-point group ``fpx_arena.games``) whose ``GAME`` is a ``Game``. Agents build prompts from
``describe``/``action_names``/``rules``, the agent registry finds ``bots`` (``<name>/<bot>``
specs), the human agent reads ``keymap``, the viewer loads ``drawer``, and datasets, FPX
calibration and policy evaluation play the matches of ``setups``: nothing outside the folder
names the game.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from ..errors import SpecError

WIN_RATE = "win_rate"


@dataclass(frozen=True)
class Keymap:
    """How a person's keys become one of the game's actions.

    ``decide(held, pressed, facing_right) -> action name`` gets the control tokens held now and
    pressed since the last decision ("left", "right", "up", "down", "b1" .. "b6", whatever the
    keyboard layout) and whether this player starts on the left. ``help`` is a template with
    ``{m}`` (left/right), ``{u}``, ``{d}`` and ``{b1}`` .. ``{b6}`` for the player's key names."""
    decide: Callable[[set, set, bool], str]
    help: str


@dataclass(frozen=True)
class Setups:
    """The scripted matches that datasets, FPX calibration and policy evaluation play.

    expert: the agent spec a dataset imitates and evaluation compares with (None: no datasets).
    opponents: the specs the expert meets in a dataset, in turn, and evaluation's default field.
    env: keyword arguments of the env for those matches.
    calibration: player -> spec of the match whose states make calibration and quality text.
    score: how evaluation scores the player's matches: ``"win_rate"`` (wins, draws, losses with
      Wilson intervals) or the name of a per-player metric of the match result (its mean with a
      bootstrap interval), e.g. a market's ``daily_yield``.
    baselines: specs evaluation also plays against the same opponents, seats and seeds."""
    expert: str | None = None
    opponents: tuple[str, ...] = ("random",)
    env: Mapping[str, Any] = field(default_factory=dict)
    calibration: Mapping[str, str] = field(default_factory=dict)
    score: str = WIN_RATE
    baselines: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Game:
    """One game. ``parallel_env(**kw)`` returns a PettingZoo ParallelEnv; ``describe(obs, agent)``
    is the observation as prompt text and ``action_names(agent)`` the actions by name; ``rules``
    is what an LLM agent's system prompt says about the game. ``bots`` maps a bot's name to a
    factory of an agent (spec ``<game>/<bot>``); ``drawer`` is the import path of the viewer's
    drawer module (see ``fpx_arena.games.drawing``; None: the state as text); ``keymap`` lets
    a person play it (None: digit keys pick actions)."""
    name: str
    parallel_env: Callable[..., Any]
    describe: Callable[[Any, str | None], str]
    action_names: Callable[[str | None], list]
    rules: str
    env: Callable[..., Any] | None = None
    bots: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    drawer: str | None = None
    keymap: Keymap | None = None
    setups: Setups = field(default_factory=Setups)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "bots", MappingProxyType(dict(self.bots)))

    def make(self, **kwargs):
        """A fresh ParallelEnv; a keyword the env does not take is one clear SpecError."""
        try:
            return self.parallel_env(**kwargs)
        except TypeError as e:
            raise SpecError(f"game {self.name!r}: {e}") from None

    def bot(self, name: str) -> Callable[..., Any]:
        if name not in self.bots:
            known = ", ".join(sorted(self.bots)) or "none"
            raise SpecError(f"unknown {self.name} bot {name!r}; known: {known}")
        return self.bots[name]

    def bot_specs(self) -> list[str]:
        return [f"{self.name}/{b}" for b in sorted(self.bots)]

    def load_drawer(self):
        """The drawer module (imported now: drawers import pygame), or None."""
        if self.drawer is None:
            return None
        try:
            return importlib.import_module(self.drawer)
        except ImportError as e:
            raise SpecError(f"game {self.name!r}: cannot import its drawer {self.drawer!r}: {e}") from None

    def __repr__(self):
        return f"Game({self.name!r})"


def from_module(name: str, module) -> Game:
    """The Game of a module: its ``GAME``, or one made of the PettingZoo-style functions
    (``parallel_env`` and, where it has them, ``describe``, ``action_names``, ``LLM_RULES``),
    so that a plain env module still plays, replays and prompts."""
    game = getattr(module, "GAME", None)
    if isinstance(game, Game):
        return game
    if not callable(getattr(module, "parallel_env", None)):
        raise SpecError(f"game {name!r}: {module.__name__} has neither GAME nor parallel_env()")
    doc = (module.__doc__ or f"You play the game {name}.").strip()
    return Game(
        name=name,
        parallel_env=module.parallel_env,
        describe=getattr(module, "describe", None) or _describe_raw,
        action_names=getattr(module, "action_names", None) or _no_names,
        rules=getattr(module, "LLM_RULES", None) or doc.split("\n\n", 1)[0].replace("\n", " "),
        env=getattr(module, "env", None),
        metadata=getattr(module, "metadata", {}),
    )


def _describe_raw(observation, agent=None) -> str:
    return str(observation)


def _no_names(agent=None) -> list:
    return []
