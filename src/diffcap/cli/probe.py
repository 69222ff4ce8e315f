"""``diffcap probe VIDEO...``: one JSON line of facts per video.

    diffcap probe clip.mp4 phone.mov
    diffcap probe --exact-count *.mkv | jq .frame_count

A file that cannot be read gets a JSON line with ``error`` (and a one-line message on stderr);
the others are still probed, and the exit status is 1 when any failed.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import click

from diffcap.errors import DiffcapError, VideoError


@click.command()
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--exact-count",
    is_flag=True,
    help="Decode videos whose container does not store the frame count, to count exactly.",
)
def probe(videos: tuple[Path, ...], exact_count: bool) -> None:
    """Print container, codec, displayed size, rotation, duration, frame rate, frame count
    and audio presence of each VIDEO as one JSON object per line."""
    from diffcap.video import probe as probe_video  # lazy: start-up

    failures: list[tuple[Path, DiffcapError]] = []
    for path in videos:
        try:
            info = probe_video(path, exact_count=exact_count)
        except av.error.FFmpegError as exc:  # anything FFmpeg raises that probing did not map
            err: DiffcapError = VideoError(path, f"cannot be read: {exc}")
        except DiffcapError as exc:
            err = exc
        else:
            click.echo(json.dumps(info.to_json()))
            continue
        failures.append((path, err))
        click.echo(json.dumps({"path": str(path), "error": err.reason, "message": str(err)}))
        click.echo(f"error: {err}", err=True)
    if failures:
        names = ", ".join(f"{p} ({e.reason})" for p, e in failures)
        # An exception, not ctx.exit(1): main() runs click with standalone_mode=False, which
        # turns exit codes into return values; main() prints this line and exits 1.
        raise DiffcapError(f"{len(failures)} of {len(videos)} file(s) failed: {names}")
