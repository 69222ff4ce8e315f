"""``diffcap sample OUT.mp4``: write a synthetic demo video with distinct scenes.

    diffcap sample demo.mp4                                  # 24 s, 640x360, 30 fps, 5 scenes
    diffcap sample ntsc.mkv --fps 30000/1001 --codec hevc --size 320x180 --duration 10

Prints the path and the start time of each scene (the ground truth for keyframes).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import click

from diffcap.video.synth import ENCODERS, sample_video

#: container suffix -> codecs it can hold
_CONTAINERS = {
    ".mp4": {"h264", "hevc", "av1", "mpeg4", "vp9"},
    ".mov": {"h264", "hevc", "mpeg4", "mjpeg"},
    ".mkv": set(ENCODERS),
    ".webm": {"vp8", "vp9", "av1"},
    ".avi": {"mpeg4", "mjpeg", "h264"},
    ".ts": {"h264", "hevc"},
}


def _size(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT, e.g. 640x360") from None
    if w < 16 or h < 16:
        raise click.BadParameter("width and height must be at least 16")
    return w, h


def _fps(_ctx: click.Context, _param: click.Parameter, value: str) -> Fraction:
    try:
        fps = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise click.BadParameter(f"{value!r} is not a frame rate, e.g. 30 or 30000/1001") from None
    if not 0 < fps <= 240:
        raise click.BadParameter("frame rate must be in (0, 240]")
    return fps


@click.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--duration",
    type=click.FloatRange(min=1.0),
    default=24.0,
    show_default=True,
    help="Length in seconds.",
)
@click.option(
    "--size",
    default="640x360",
    show_default=True,
    callback=_size,
    help="WIDTHxHEIGHT (even sizes for h264).",
)
@click.option(
    "--fps",
    default="30",
    show_default=True,
    callback=_fps,
    help="Frame rate, a number or a fraction such as 30000/1001.",
)
@click.option("--codec", type=click.Choice(sorted(ENCODERS)), default="h264", show_default=True)
@click.option(
    "--scenes",
    type=click.IntRange(1, 50),
    default=5,
    show_default=True,
    help="Number of visually distinct scenes.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def sample(
    out: Path,
    duration: float,
    size: tuple[int, int],
    fps: Fraction,
    codec: str,
    scenes: int,
    as_json: bool,
) -> None:
    """Write OUT, a demo video of SCENES distinct shots (with fades and a moving square)."""
    allowed = _CONTAINERS.get(out.suffix.lower())
    if allowed is None:
        raise click.BadParameter(f"use one of {', '.join(_CONTAINERS)}", param_hint="OUT suffix")
    if codec not in allowed:
        raise click.BadParameter(
            f"{out.suffix} cannot hold {codec}; use one of {', '.join(sorted(allowed))}",
            param_hint="--codec",
        )
    if codec == "h264" and (size[0] % 2 or size[1] % 2):
        raise click.BadParameter("h264 needs an even width and height", param_hint="--size")
    out.parent.mkdir(parents=True, exist_ok=True)
    truth = sample_video(out, duration=duration, size=size, fps=fps, codec=codec, scenes=scenes)
    starts = [round(s, 3) for s in truth.scene_starts]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "path": str(out),
                    "duration": round(truth.duration, 6),
                    "size": list(size),
                    "fps": f"{fps.numerator}/{fps.denominator}",
                    "codec": codec,
                    "scene_starts": starts,
                }
            )
        )
        return
    click.echo(
        f"wrote {out} ({truth.duration:.2f} s, {size[0]}x{size[1]}, {float(fps):g} fps, "
        f"{codec}, {len(starts)} scenes)"
    )
    click.echo("scenes start at (s): " + ", ".join(f"{s:.3f}" for s in starts))
