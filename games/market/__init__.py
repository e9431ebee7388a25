"""The market game: one asset traded against market makers on a limit order book
(``environment.py``, the book in ``orderbook.py``, shipped bars in ``data/``), its scripted
traders, the viewer's drawer, the keyboard layout and the setups that datasets, calibration and
evaluation play. ``GAME`` is what the rest of fpx-arena sees; the module also re-exports the
env's API and observation layout."""
from __future__ import annotations

from ..game import Game, Setups
from .bots import BOTS
from .environment import *  # noqa: F401,F403  (the env's constants are part of this package's API)
from .environment import MarketEnv, action_names, decode, describe, env, metadata, parallel_env, raw_env
from .keys import KEYMAP

# what an LLM agent's system prompt says about the game (changing it changes every prompt, and
# the shipped policies were trained on these words)
RULES = ("You trade one asset against market makers in a market that ticks 20 times a second and "
         "never waits for you. A signal announces how many price ticks the market will move and in "
         "how many ticks; whoever acts on it first trades at the old quotes, later traders fill "
         "worse or not at all. buy and sell trade a small size at market, lift and hit a large "
         "size; bid and offer rest a small order one tick inside the spread; cancel removes your "
         "resting orders; flatten closes your position; hold does nothing. Buy before a positive "
         "signal is priced in, sell before a negative one, flatten afterwards. End the day with the "
         "highest pnl.")

GAME = Game(
    name="market",
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
        expert="market/informed",
        opponents=("random",) + tuple(f"market/{b}" for b in sorted(BOTS)),
        calibration={"t0": "market/informed", "t1": "market/momentum"},
        score="daily_yield",
        baselines=("random", "market/informed"),
    ),
)

__all__ = ["GAME", "RULES", "BOTS", "MarketEnv", "parallel_env", "env", "raw_env", "metadata", "describe",
           "action_names", "decode"]
