"""Real-time PettingZoo games, one folder each, behind a ``Game`` descriptor (``game.py``).

``make(name, **kw)`` returns a ParallelEnv; ``get(name)`` the ``Game`` (describe, action_names,
rules, bots, drawer, keymap, setups); ``of_env(env)`` the Game behind an env instance. Each
game package also has the PettingZoo-style ``parallel_env(**kw)``, ``env(**kw)`` (AEC) and
``metadata``.

The built-in games are the sub-packages of this folder that define ``GAME``; third-party games
register under the entry-point group ``fpx_arena.games`` (the entry point names a ``Game``, or
a module with ``GAME`` or with ``parallel_env``), and ``register`` adds one at run time.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from importlib.metadata import entry_points

from ..errors import SpecError
from .game import WIN_RATE, Game, Keymap, Setups, from_module

ENTRY_POINT_GROUP = "fpx_arena.games"

# name -> import path of the module holding the game; the built-ins are this folder's packages
GAMES: dict[str, str] = {m.name: f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if m.ispkg}
_LOADED: dict[str, Game] = {}


_EP_CACHE: dict[tuple, dict] = {}


def _entry_points() -> dict:
    """name -> entry point of the installed third-party games. Reading the installed
    distributions costs milliseconds and agents.make asks for every bot spec: read them once per
    sys.path (installing a package into a folder on sys.path at run time is not seen)."""
    key = tuple(sys.path)
    if key not in _EP_CACHE:
        _EP_CACHE.clear()
        _EP_CACHE[key] = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _EP_CACHE[key]


def names() -> list[str]:
    return sorted(set(GAMES) | set(_entry_points()))


def register(game: Game) -> Game:
    """Make `game` known by its name in this process (tests, notebooks, plugins loaded by hand)."""
    _LOADED[game.name] = game
    GAMES.setdefault(game.name, "")
    return game


def unregister(name: str) -> None:
    """Forget a game added by ``register`` (built-in and entry-point games come back on use)."""
    if _LOADED.pop(name, None) is not None and GAMES.get(name) == "":
        del GAMES[name]


def get(name: str) -> Game:
    """The Game registered as `name`. Raises SpecError for an unknown or broken one."""
    if name in _LOADED:
        return _LOADED[name]
    target = GAMES.get(name)
    if target:
        try:
            loaded = importlib.import_module(target)
        except ImportError as e:
            raise SpecError(f"game {name!r}: cannot import {target}: {e}") from None
    else:
        ep = _entry_points().get(name)
        if ep is None:
            raise SpecError(f"unknown game {name!r}; installed: {', '.join(names())}")
        try:
            loaded = ep.load()
        except Exception as e:  # a broken plugin must not take the whole arena down
            raise SpecError(f"game {name!r}: entry point {ep.value!r} failed to load: {e}") from None
    game = loaded if isinstance(loaded, Game) else from_module(name, loaded)
    _LOADED[name] = game
    return game


def make(name: str, **kwargs):
    """A fresh ParallelEnv of game `name`; keyword arguments go to its parallel_env()."""
    return get(name).make(**kwargs)


def of_env(env) -> Game | None:
    """The registered Game whose package holds this env's class, or None (an env of another
    library, e.g. a PettingZoo classic)."""
    module = type(getattr(env, "unwrapped", env)).__module__
    for game in list(_LOADED.values()):
        if _owns(game, module):
            return game
    by_module = {target: name for name, target in GAMES.items() if target}
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        name = by_module.get(".".join(parts[:i]))
        if name is not None:
            return get(name)
    for name, ep in _entry_points().items():
        if module == ep.module or module.startswith(ep.module.rsplit(".", 1)[0] + "."):
            try:
                game = get(name)
            except SpecError:  # a broken plugin of the same package: not this env's game
                continue
            if _owns(game, module):
                return game
    return None


def _owns(game: Game, module: str) -> bool:
    home = getattr(game.parallel_env, "__module__", "") or ""
    package = home.rsplit(".", 1)[0] if "." in home else home
    return module == home or (bool(package) and module.startswith(package + "."))


def name_of(env) -> str:
    """The registered name of the env's game, else its metadata name or class name."""
    game = of_env(env)
    if game is not None:
        return game.name
    return str(getattr(env, "metadata", {}).get("name") or type(getattr(env, "unwrapped", env)).__name__)


__all__ = ["Game", "Keymap", "Setups", "WIN_RATE", "ENTRY_POINT_GROUP", "GAMES", "get", "make", "names",
           "of_env", "name_of", "register", "unregister"]
