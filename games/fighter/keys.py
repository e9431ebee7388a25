"""A person playing the fighter: attacks on the key press, movement and guard while held."""
from __future__ import annotations

from ..game import Keymap


def decide(held: set, pressed: set, facing_right: bool) -> str:
    fwd, back = ("right", "left") if facing_right else ("left", "right")
    for button, action in (("b4", "fireball"), ("b3", "sweep"), ("b2", "kick"), ("b1", "jab")):
        if button in pressed:  # attacks on the press, as in any fighting game
            return action
    if "up" in held:
        return "leap" if fwd in held else "jump"
    if "b5" in held:
        return "lowblock" if "down" in held else "block"
    if "down" in held:
        return "lowblock" if back in held else "crouch"
    if fwd in held:
        return "forward"
    if back in held:
        return "back"  # walking away guards high
    return "wait"


KEYMAP = Keymap(decide, "{m} walk (away: guard), {u} jump, {d} crouch, {b1} jab, {b2} kick, {b3} sweep, "
                        "{b4} fireball, {b5} block")
