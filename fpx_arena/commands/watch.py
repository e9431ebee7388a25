"""Watch a replay in a pygame window: pause, single-step, speed x0.25..x8, seek.

Keys (also shown in the window): space pause, ./, step, -/+ speed, left/right seek 1 s
(shift: 10 s), 0-9 jump to 0%..90%, Home/End, h hitboxes, o overlays, q or Esc quit.

Examples:
  fpx-arena play fighter -a p0=fighter/reactive -a p1=fighter/reactive \\
      --clock profile --latency p0=0 --latency p1=150 --record match.replay
  fpx-arena watch match.replay --speed 0.5 --hitboxes
"""
from __future__ import annotations

from .. import replay
from ..errors import UserError
from ..viewer import watch_replay
from . import _validate as valid

HELP = "watch a replay in a window (pause, step, speed, seek)"


def add_arguments(p):
    p.add_argument("replay", help="replay file (from `fpx-arena play --record`)")
    p.add_argument("--speed", type=float, default=1.0, help="playback speed, x0.25 to x8 (default 1)")
    p.add_argument("--start", type=valid.match_seconds, default=0.0, metavar="SECONDS", help="start at this match time")
    p.add_argument("--paused", action="store_true", help="open paused")
    p.add_argument("--hitboxes", action="store_true", help="show hit and hurt boxes (games whose drawer has them)")


def run(args) -> int:
    if not 0.25 <= args.speed <= 8:
        raise UserError(f"--speed must be between 0.25 and 8, got {args.speed:g}")
    data = replay.load(args.replay)  # a malformed file fails here, in one line
    frame = watch_replay(data, speed=args.speed, start_s=args.start, paused=args.paused,
                         hitboxes=args.hitboxes)
    print(f"closed at tick {frame}/{len(data['actions'])}")
    return 0
