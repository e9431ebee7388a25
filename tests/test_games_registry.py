"""The game registry and the Game descriptor: every built-in game is complete and consistent
(env, prompt text, bots, keymap, drawer, setups), lookups fail in one clear line, and an env
module without a descriptor still plays."""
import sys
import types

import numpy as np
import pytest
from pettingzoo.classic import rps_v2

from fpx_arena import agents, games
from fpx_arena.errors import SpecError
from fpx_arena.games import Game, Keymap, Setups

BUILTIN = ["fighter", "market"]


def test_the_builtin_games_are_the_folders():
    assert sorted(g for g in games.GAMES if games.GAMES[g]) == BUILTIN
    assert set(BUILTIN) <= set(games.names())
    for name in BUILTIN:
        game = games.get(name)
        assert isinstance(game, Game) and game.name == name and games.get(name) is game
        assert game is sys.modules[f"fpx_arena.games.{name}"].GAME


@pytest.mark.parametrize("name", BUILTIN)
def test_a_descriptor_is_complete_and_consistent(name):
    game = games.get(name)
    env = game.make()
    assert games.of_env(env) is game and games.name_of(env) == name
    obs, infos = env.reset(seed=3)
    ids = list(env.possible_agents)
    names = game.action_names(ids[0])
    assert names and len(names) == env.action_space(ids[0]).n
    text = game.describe(obs[ids[0]], ids[0])
    assert isinstance(text, str) and 20 < len(text) < 400 and "\n" not in text
    assert len(game.rules) > 100 and game.metadata["name"] == env.metadata["name"]
    # bots: every one builds through its spec and plays a legal action
    assert game.bot_specs() and all(s.startswith(name + "/") for s in game.bot_specs())
    for spec in game.bot_specs():
        bot = agents.make(spec)
        bot.reset(ids[0], env.observation_space(ids[0]), env.action_space(ids[0]), 1)
        action = bot.act(obs[ids[0]], infos[ids[0]])
        assert 0 <= int(action) < len(names), spec
    # the setups name agents that exist, and players that the game has
    s = game.setups
    for spec in (s.expert, *s.opponents, *s.baselines, *s.calibration.values()):
        agents.make(spec)
    assert sorted(s.calibration) == sorted(ids)
    assert s.score == games.WIN_RATE or s.score in env.match_outcome()["metrics"][ids[0]]
    assert s.expert in game.bot_specs() and s.expert in s.opponents
    # keys: no key is the no-op; every key a person presses becomes one of the game's actions
    assert game.keymap.decide(set(), set(), True) == names[0]
    for token in ("up", "down", "left", "right", "b1", "b2", "b3", "b4", "b5"):
        assert game.keymap.decide({token}, {token}, True) in names, token
    game.keymap.help.format(m="A/D", u="W", d="S", b1="J", b2="K", b3="L", b4="I", b5="U", b6="O")
    # the drawer imports (pygame) and has the drawer's entry point
    assert callable(game.load_drawer().draw)


def test_lookups_fail_in_one_line():
    with pytest.raises(SpecError, match=r"^unknown game 'chess'; installed: fighter, market"):
        games.get("chess")
    with pytest.raises(SpecError, match=r"^game 'fighter': .*unexpected keyword argument 'speed'") as e:
        games.make("fighter", speed=3)
    assert "\n" not in str(e.value)
    with pytest.raises(SpecError, match="unknown fighter bot 'ninja'; known: aggressive, reactive"):
        games.get("fighter").bot("ninja")
    broken = Game("broken", games.get("fighter").parallel_env, str, list, "rules", drawer="no.such.module")
    with pytest.raises(SpecError, match="game 'broken': cannot import its drawer 'no.such.module'"):
        broken.load_drawer()


def test_an_env_of_another_library_is_no_registered_game():
    env = rps_v2.parallel_env()
    assert games.of_env(env) is None
    assert games.name_of(env) == env.metadata["name"]


def test_a_plain_env_module_plays_as_a_game():
    """A module with only parallel_env/describe/action_names (the PettingZoo way) is wrapped in a
    Game: the rules text is its docstring's first paragraph."""
    module = types.ModuleType("plain_rps_game")
    module.__doc__ = "Rock, paper, scissors\nagainst the clock.\n\nMore detail nobody prompts with."
    module.parallel_env = rps_v2.parallel_env
    module.action_names = lambda agent=None: ["rock", "paper", "scissors"]
    sys.modules[module.__name__] = module
    games.GAMES["plain"] = module.__name__
    try:
        game = games.get("plain")
        assert game.rules == "Rock, paper, scissors against the clock."
        assert game.action_names("player_0") == ["rock", "paper", "scissors"] and not game.bots
        assert game.describe(np.zeros(2), "player_0") == str(np.zeros(2))
        assert game.keymap is None and game.load_drawer() is None
        assert set(game.make().possible_agents) == {"player_0", "player_1"}
    finally:
        games.unregister("plain")
        games.GAMES.pop("plain", None)
        del sys.modules[module.__name__]
    assert "plain" not in games.names()


def test_register_and_unregister():
    game = Game("duel", games.get("fighter").parallel_env, games.get("fighter").describe,
                games.get("fighter").action_names, "Fight.", keymap=Keymap(lambda h, p, f: "wait", ""),
                setups=Setups(expert="fighter/reactive"))
    assert games.register(game) is game
    try:
        assert "duel" in games.names() and games.get("duel") is game
        assert games.name_of(game.make()) in ("fighter", "duel")  # the same env class: either owner
    finally:
        games.unregister("duel")
    assert "duel" not in games.names()
    with pytest.raises(SpecError):
        games.get("duel")
