"""Render a replay without a screen: an animated GIF, an MP4, or a folder of PNG frames.

The output kind follows --out: `*.gif` (Pillow; 25 fps, half size by default), `*.mp4`
(needs imageio-ffmpeg; the game's frame rate), or a folder (one PNG per frame). Works on
servers: SDL's dummy video driver is used, no display is needed.

Examples:
  fpx-arena render match.replay --out docs/match.gif --start 2 --end 8
  fpx-arena render match.replay --out match.mp4 --hitboxes
  fpx-arena render match.replay --out frames/ --fps 10
"""
from __future__ import annotations

from .. import replay
from ..errors import UserError
from ..viewer import render_replay
from . import _validate as valid

HELP = "export a replay as GIF, MP4 or PNG frames (headless)"


def add_arguments(p):
    p.add_argument("replay", help="replay file (from `fpx-arena play --record`)")
    p.add_argument("--out", "-o", required=True, help="match.gif, match.mp4, or a folder for PNG frames")
    p.add_argument("--fps", type=valid.number(0.0, 1000.0, positive=True), default=None,
                   help="frames per second of the output (default: 25 for GIF, the game's rate otherwise)")
    p.add_argument("--scale", type=float, default=None,
                   help="size relative to the 960x600 window (default: 0.5 for GIF, 1 otherwise)")
    p.add_argument("--start", type=valid.match_seconds, default=0.0, metavar="SECONDS", help="first match second to show")
    p.add_argument("--end", type=valid.number(0.0, 1e7, positive=True, unit=" s"), default=None, metavar="SECONDS", help="last match second to show")
    p.add_argument("--hitboxes", action="store_true", help="draw hit and hurt boxes (games whose drawer has them)")
    p.add_argument("--no-overlays", action="store_true", help="leave out the per-agent panels")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    data = replay.load(args.replay)  # a malformed or edited file fails here, in one line
    length = len(data["actions"]) / float(data["tick_hz"])
    if args.start >= length:
        raise UserError(f"--start {args.start:g} s is at or past the end of the match ({length:.2f} s)")
    if args.end is not None and args.end <= args.start:
        raise UserError(f"--end {args.end:g} s must come after --start {args.start:g} s")
    info = render_replay(args.replay, args.out, fps=args.fps, scale=args.scale, start_s=args.start, end_s=args.end,
                         hitboxes=args.hitboxes, overlays=not args.no_overlays, progress=not args.quiet)
    print(f"wrote {info['frames']} frames ({info['size'][0]}x{info['size'][1]}, {info['fps']:g} fps) "
          f"to {info['path']} ({info['bytes'] / 1e6:.2f} MB)")
    return 0
