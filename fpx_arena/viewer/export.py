"""Headless export of a replay: an animated GIF (Pillow), an MP4 (imageio-ffmpeg) or a folder
of PNG frames, drawn off-screen with the same pictures and overlays as the window."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pygame
from tqdm import tqdm

from .. import replay
from ..errors import UserError
from .app import Screen, action_names_of, ensure_video_driver, replay_status, snapshot_of
from .cursor import ReplayCursor
from .timeline import ReplayTimeline

GIF_FPS, GIF_SCALE = 25, 0.5  # GIF players clamp delays under 20 ms; half size keeps files small


def output_kind(out) -> str:
    """gif, mp4 or frames (a folder) from the output path."""
    text = str(out)
    suffix = Path(text).suffix.lower()
    if suffix == ".gif":
        return "gif"
    if suffix == ".mp4":
        return "mp4"
    if text.endswith(("/", "\\")) or suffix == "" or Path(text).is_dir():
        return "frames"
    raise UserError(f"--out {text}: expected a .gif or .mp4 file, or a folder for PNG frames")


def _check_writer(kind: str):
    if kind == "gif" and importlib.util.find_spec("PIL") is None:
        raise UserError("writing a GIF needs Pillow: pip install pillow")
    if kind == "mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise UserError("writing an MP4 needs imageio-ffmpeg: pip install imageio-ffmpeg "
                        "(or export a .gif or a frames/ folder)")


def frame_ticks(total: int, tick_hz: float, fps: float, start_s: float = 0.0, end_s: float | None = None):
    """The replay frames to show for output at `fps`: evenly spaced in match time."""
    first = max(0, min(total, int(round(start_s * tick_hz))))
    last = total if end_s is None else max(first, min(total, int(round(end_s * tick_hz))))
    if fps <= 0:
        raise UserError(f"--fps must be positive, got {fps:g}")
    step = tick_hz / fps
    out, k = [], 0
    while True:
        t = first + int(round(k * step))
        if t > last:
            return out
        if not out or t != out[-1]:
            out.append(t)
        k += 1


def render_replay(source, out, *, fps: float | None = None, scale: float | None = None,
                  start_s: float = 0.0, end_s: float | None = None, hitboxes: bool = False,
                  overlays: bool = True, progress: bool = True) -> dict:
    """Draw a replay (path or loaded data) to `out`; returns {"path", "kind", "frames", "bytes"}."""
    ensure_video_driver(window=False)
    kind = output_kind(out)
    _check_writer(kind)
    data = source if isinstance(source, dict) else replay.load(source)
    tick_hz = float(data["tick_hz"])
    fps = float(fps or (GIF_FPS if kind == "gif" else tick_hz))
    scale = float(scale or (GIF_SCALE if kind == "gif" else 1.0))
    if not 0.05 <= scale <= 4:
        raise UserError(f"--scale must be between 0.05 and 4, got {scale:g}")
    cursor = ReplayCursor(data)
    timeline = ReplayTimeline(data)
    ticks = frame_ticks(cursor.total, tick_hz, fps, start_s, end_s)
    screen = Screen(data["game"], data["agents"], window=False,
                    action_names=action_names_of(cursor.env, data["agents"]))
    screen.controls.hitboxes, screen.controls.overlays = hitboxes, overlays
    cursor.on_step = screen.observe
    screen.observe(0, cursor.env)
    size = (int(screen.surface.get_width() * scale), int(screen.surface.get_height() * scale))
    if kind == "mp4":  # H.264 in yuv420p wants sizes divisible by 8 here
        size = (max(8, size[0] // 8 * 8), max(8, size[1] // 8 * 8))
    name = Path(str(source)).name if not isinstance(source, dict) else "replay"
    legend = f"fpx-arena render {name}   (watch it with seeking: fpx-arena watch {name})"

    def frames():
        bar = tqdm(total=len(ticks), desc=f"render {kind}", unit="frame", disable=not progress)
        try:
            for t in ticks:
                env = cursor.seek(t)
                surf = screen.render(snapshot_of(env), timeline.views(t),
                                     replay_status(data, t, cursor.total, screen.controls), legend,
                                     timeline.scale_ms, timeline.dt_ms, cursor.last_actions(), t)
                if surf.get_size() != size:
                    surf = pygame.transform.smoothscale(surf, size)
                yield surf
                bar.update(1)
        finally:
            bar.close()

    out = Path(out)
    if kind == "frames":
        out.mkdir(parents=True, exist_ok=True)
        n = 0
        for n, surf in enumerate(frames(), 1):
            pygame.image.save(surf, str(out / f"frame_{ticks[n - 1]:06d}.png"))
        written = sum(p.stat().st_size for p in out.glob("frame_*.png"))
    elif kind == "gif":
        n = _write_gif(out, frames(), size, fps)
        written = out.stat().st_size
    else:
        n = _write_mp4(out, frames(), size, fps)
        written = out.stat().st_size
    return {"path": str(out), "kind": kind, "frames": n, "bytes": written, "fps": fps, "size": size}


def _write_gif(path: Path, surfaces, size, fps) -> int:
    from PIL import Image

    count = 0

    def images():
        nonlocal count
        for surf in surfaces:
            img = Image.frombytes("RGB", size, pygame.image.tobytes(surf, "RGB"))
            # flat colours: a small adaptive palette without dithering compresses well
            count += 1
            yield img.quantize(colors=64, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)

    frames = images()
    try:
        first = next(frames)
    except StopIteration:
        raise UserError("nothing to render: the chosen time range has no frames") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.gif")
    first.save(tmp, save_all=True, append_images=frames, duration=int(round(1000 / fps)), loop=0,
               optimize=False, disposal=1)
    tmp.replace(path)
    return count


def _write_mp4(path: Path, surfaces, size, fps) -> int:
    import imageio_ffmpeg

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = imageio_ffmpeg.write_frames(str(path), size, fps=fps, codec="libx264", pix_fmt_in="rgb24",
                                         pix_fmt_out="yuv420p", macro_block_size=8, quality=7)
    writer.send(None)
    count = 0
    try:
        for surf in surfaces:
            writer.send(pygame.image.tobytes(surf, "RGB"))
            count += 1
    finally:
        writer.close()
    if count == 0:
        raise UserError("nothing to render: the chosen time range has no frames")
    return count
