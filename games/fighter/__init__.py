"""The fighter game: a real-time 2-player fighting game (``environment.py``, rules as data in
``rules.py``), its scripted bots, the viewer's drawer, the keyboard layout and the setups that
datasets, calibration and evaluation play. ``GAME`` is what the rest of fpx-arena sees; the
module also re-exports the env's API (``parallel_env``, ``env``, ``metadata``, ``describe``,
``action_names``, ``decode``) and the rules' constants."""
from __future__ import annotations

from ..game import Game, Setups
from .bots import BOTS
from .environment import FighterEnv, env, metadata, parallel_env, raw_env
from .keys import KEYMAP
from .rules import *  # noqa: F401,F403  (the rules' constants are part of this package's API)
from .rules import action_names, decode, describe

# what an LLM agent's system prompt says about the game (changing it changes every prompt, and
# the shipped policies were trained on these words)
RULES = ("You control a fighter in a 2D fighting game that runs at 60 frames per second and never "
         "waits for you. Reduce the opponent's health (hp) to 0 before time runs out. "
         "Attacks: jab (fast, mid, short reach 40px), kick (overhead, reach 60px, blocked only by "
         "block), sweep (low, reach 72px, knocks down, blocked only by lowblock), fireball "
         "(projectile, one at a time). Defence: block guards high and mid, lowblock guards low and "
         "mid; back walks away and guards high. Movement: forward, back, jump, leap (jump forward), "
         "crouch; wait sends nothing new. An attack in its startup can still be blocked; attack "
         "when the gap is inside your reach and the opponent is busy or recovering.")

GAME = Game(
    name="fighter",
    parallel_env=parallel_env,
    env=env,
    describe=describe,
    action_names=action_names,
    rules=RULES,
    bots=BOTS,
    drawer=__name__ + ".draw",
    keymap=KEYMAP,
    metadata=metadata,
    setups=Setups(
        expert="fighter/reactive",
        opponents=("random", "fighter/weak", "fighter/aggressive", "fighter/zoner", "fighter/turtle",
                   "fighter/reactive"),
        calibration={"p0": "fighter/reactive", "p1": "fighter/aggressive"},
        baselines=("fighter/reactive",),
    ),
)

__all__ = ["GAME", "RULES", "BOTS", "FighterEnv", "parallel_env", "env", "raw_env", "metadata", "describe",
           "action_names", "decode"]
