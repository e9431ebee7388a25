"""A person trading on the market: one order per key press (holding a key does not repeat it)."""
from __future__ import annotations

from ..game import Keymap

ORDER_KEYS = (("up", "buy"), ("down", "sell"), ("b1", "lift"), ("b2", "hit"), ("left", "bid"),
              ("right", "offer"), ("b3", "cancel"), ("b4", "flatten"))


def decide(held: set, pressed: set, facing_right: bool) -> str:
    for token, action in ORDER_KEYS:
        if token in pressed:
            return action
    return "hold"


KEYMAP = Keymap(decide, "{u}/{d} buy/sell small, {b1}/{b2} lift/hit large, {m} bid/offer, {b3} cancel, {b4} flatten")
