"""Validators for command-line values, used as argparse ``type=`` functions, and guards that turn
what a user's input makes fail (a game setting, an agent spec) into one clear line. Every value
is checked before anything runs: finite, in range, files that are files."""
from __future__ import annotations

import argparse
import math
import os

from ..errors import UserError

MAX_MS = 3_600_000.0  # an hour: a latency, delay or bank beyond it is a typo
MAX_SEED = (1 << 31) - 1  # what every seeded generator on the way (numpy, random, torch) accepts


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def number(lo: float = 0.0, hi: float = MAX_MS, *, positive: bool = False, unit: str = ""):
    """A finite float in [lo, hi] ((lo, hi] with positive)."""
    def parse(text: str) -> float:
        value = _number(text)
        if value > hi or value < lo or (positive and value <= lo):
            low = f"> {lo:g}" if positive else f">= {lo:g}"
            raise argparse.ArgumentTypeError(f"{text!r} is out of range (must be {low} and <= {hi:g}{unit})")
        return value
    parse.__name__ = "number"  # argparse names the type in its messages
    return parse


def integer(lo: int = 0, hi: int = 1 << 31):
    """An int in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text!r} is out of range (must be between {lo} and {hi})")
        return value
    parse.__name__ = "integer"
    return parse


seed = integer(0, MAX_SEED)
tick_hz = number(0.0, 10_000.0, positive=True, unit=" Hz")
milliseconds = number(0.0, MAX_MS, unit=" ms")
seconds = number(0.0, 3600.0, positive=True, unit=" s")


def existing_file(text: str) -> str:
    """A path that is a readable file (not a folder, not missing)."""
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"{text!r} does not exist")
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a file")
    return text


def ms_value(text: str) -> float:
    """An ID=MS value (for parse_pairs): ValueError with the reason otherwise."""
    try:
        return milliseconds(text)
    except argparse.ArgumentTypeError as e:
        raise ValueError(str(e)) from None


def known_ids(values: dict, players, what: str, game: str) -> None:
    """Per-player options must name players the game has."""
    unknown = sorted(set(values or {}) - set(players))
    if unknown:
        raise UserError(f"{what} names {', '.join(unknown)}, not a player of {game} "
                        f"(players: {', '.join(players)})")


def _why(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def make_env(game: str, kwargs: dict):
    """The game with the user's settings; whatever the game raises about them is one line."""
    from .. import games

    try:
        return games.make(game, **kwargs)
    except UserError:
        raise
    except Exception as e:  # the settings come from the command line: the game's complaint is the user's
        settings = " ".join(f"{k}={v}" for k, v in kwargs.items())
        raise UserError(f"game {game!r} rejects the settings {settings or '(none)'}: {_why(e)[:200]}") from None


def build(what: str, make):
    """Call make() (building agents from user specs, which may import user code); anything it
    raises, a SystemExit included, is one line naming `what`."""
    try:
        return make()
    except UserError:
        raise
    except (Exception, SystemExit) as e:
        raise UserError(f"cannot build {what}: {_why(e)[:200]}") from None


__all__ = ["number", "integer", "seed", "tick_hz", "milliseconds", "seconds", "existing_file", "ms_value",
           "known_ids", "make_env", "build", "MAX_MS", "MAX_SEED"]


def device(text: str) -> str:
    """A torch device this build can name: cpu, cuda or cuda:N (checked for existence when the
    model loads)."""
    import re

    if not re.fullmatch(r"cpu|cuda(:\d{1,2})?|mps", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device (cpu, cuda or cuda:N)")
    return text


match_seconds = number(0.0, 1e7, unit=" s")  # a position in a match
