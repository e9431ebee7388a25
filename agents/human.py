"""A person at the keyboard, through the viewer's window (``fpx-arena play ... --watch``).

The viewer records which keys are held and pressed (``fpx_arena.agents.keyboard``); each act()
turns the keys of this player's layout into one of the game's actions through the game's
``Keymap`` (``Game.keymap``; a game without one is played with the digit keys). act() never waits for
a key: no key is "wait" (action 0), as a real-time game would have it. Under the wall clock
(``--clock wall``) act() runs in the scheduler's worker thread and lands on the next tick; under
the virtual clocks the viewer holds each tick to the game's frame rate, so play feels the same.

Two layouts, so two people can share a keyboard: the first human player gets ``wasd``, the
second ``arrows``; choose with ``human?keys=arrows``.
"""
from __future__ import annotations

from .. import games
from ..errors import UserError
from .keyboard import KEYBOARD

# key name (pygame.key.name) -> control token, per layout
LAYOUTS = {
    "wasd": {"a": "left", "d": "right", "w": "up", "s": "down", "j": "b1", "k": "b2", "l": "b3",
             "i": "b4", "u": "b5", "o": "b6"},
    "arrows": {"left": "left", "right": "right", "up": "up", "down": "down", "[1]": "b1", "n": "b1",
               "[2]": "b2", "m": "b2", "[3]": "b3", "b": "b3", "[4]": "b4", "v": "b4", "[0]": "b5",
               "/": "b5", "[5]": "b6", "c": "b6"},
}
BUTTON_KEYS = {"wasd": ("J", "K", "L", "I", "U", "O"), "arrows": ("n/1", "m/2", "b/3", "v/4", "//0", "c/5")}


class HumanAgent:
    """Keyboard-driven player of any game with a Discrete action space: through the game's
    keymap where it has one, else by the digit keys (hold 3 for action 3)."""

    def __init__(self, keys: str = "auto"):
        if keys not in ("auto", *LAYOUTS):
            raise UserError(f"human: keys must be auto, {' or '.join(LAYOUTS)}; got {keys!r}")
        self.keys = keys
        self._env = None
        self.keymap = None  # the game's, known at reset
        self.layout = "wasd" if keys == "auto" else keys

    def attach_env(self, env) -> None:
        self._env = env

    def reset(self, agent_id, observation_space, action_space, seed) -> None:
        if not KEYBOARD.listening:
            raise UserError("the human agent plays through the viewer's window: add --watch")
        env = self._env
        self.agent_id = agent_id
        self.n = getattr(action_space, "n", None)
        if self.n is None:
            raise UserError("the human agent plays games with a Discrete action space only")
        game = games.of_env(env) if env is not None else None
        self.names = list(game.action_names(agent_id)) if game is not None else []
        self.keymap = game.keymap if game is not None else None
        index = list(env.possible_agents).index(agent_id) if env is not None else 0
        if self.keys == "auto":
            self.layout = "wasd" if index == 0 else "arrows"
        self.facing_right = index == 0  # the first player starts on the left
        self._seen = {k: KEYBOARD.presses(k) for k in LAYOUTS[self.layout]}

    @property
    def key_help(self) -> str:
        if self.layout == "wasd":
            m, u, d = "A/D", "W", "S"
        else:
            m, u, d = "Left/Right", "Up", "Down"
        buttons = dict(zip(("b1", "b2", "b3", "b4", "b5", "b6"), BUTTON_KEYS[self.layout]))
        template = self.keymap.help if self.keymap is not None else "hold 0-9 for action 0-9"
        return template.format(m=m, u=u, d=d, **buttons)

    def _tokens(self):
        layout = LAYOUTS[self.layout]
        held = {layout[k] for k in KEYBOARD.held() if k in layout}
        pressed = set()
        for key, token in layout.items():
            count = KEYBOARD.presses(key)
            if count != self._seen.get(key, 0):  # pressed since the last decision, even if released
                self._seen[key] = count
                pressed.add(token)
        return held, pressed

    def act(self, observation, info):
        held, pressed = self._tokens()
        if self.keymap is not None:
            name = self.keymap.decide(held, pressed, self.facing_right)
        else:
            digits = [int(k) for k in KEYBOARD.held() if len(k) == 1 and k.isdigit()]
            return digits[0] if digits and digits[0] < self.n else 0
        action = self.names.index(name) if name in self.names else 0
        mask = observation.get("action_mask") if isinstance(observation, dict) else None
        if mask is not None and not mask[action]:
            return 0  # e.g. a second fireball while one is out
        return action
