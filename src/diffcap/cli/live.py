"""``diffcap caption --live SOURCE``: caption a live stream as it plays (docs/live.md).

    diffcap caption --live http://127.0.0.1:8000/live.m3u8 --out live.jsonl --for 10m
    diffcap caption --live rtsp://camera/stream --out cam.jsonl --json

Each caption, skipped keyframe, gap and summary is appended to OUT as one JSON line and
printed (one human line, or the JSON line with ``--json``). Exit codes: 0 the run finished
(the stream ended, ``--for`` passed, Ctrl-C); 1 an error; 2 bad usage; 3 no usable model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from diffcap.cli.options import checked_backend
from diffcap.config import RunConfig
from diffcap.live import LiveOptions, caption_live
from diffcap.prompts.render import clock

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1.5h`` -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*", text or "")
    if m is None:
        raise click.BadParameter(f"{text!r} is not a duration such as 90, 90s, 10m or 1.5h")
    return float(m.group(1)) * _UNITS[m.group(2) or ""]


def human(line: dict[str, Any]) -> str:
    kind = line.get("type")
    if kind == "caption":
        wall = str(line.get("wall", ""))[11:19]
        return f"[{clock(line['time'])} {wall}] {line['kind']}: {' '.join(line['content'].split())}"
    if kind == "gap":
        return f"[gap {clock(line['start'])}-{clock(line['end'])}] {line['reason']}"
    if kind == "skipped":
        return f"[{clock(line['time'])}] keyframe skipped ({line['reason']})"
    if kind == "summary":
        what = "summary" if line.get("final") else "rolling summary"
        span = f"{clock(line['start'])}-{clock(line['end'])}"
        return f"[{what} {span}] {' '.join(line['content'].split())}"
    if kind == "start":
        again = " (resumed)" if line.get("resumed") else ""
        return f"live: {line['source']}{again}"
    if kind == "end":
        counts = f"{line['captions']} captions, {line['skipped']} skipped"
        return f"live: ended ({line['reason']}): {counts}"
    return json.dumps(line)


def run_live(
    cfg: RunConfig,
    source: str,
    out: Path,
    *,
    duration: str | None,
    as_json: bool,
    queue: int,
    summary_every: str | None,
    from_start: bool,
    rtsp_listen: bool,
) -> None:
    opts = LiveOptions(
        interval=cfg.keyframes.interval,
        queue=queue,
        duration=parse_duration(duration) if duration else None,
        from_start=from_start,
        rtsp_listen=rtsp_listen,
        max_side=cfg.keyframes.max_side,
    )
    if summary_every is not None:
        opts.summary_every_s = parse_duration(summary_every)
    backend = checked_backend(cfg)  # ModelUnavailable: one line, exit 3 (cli.main)

    def show(line: dict[str, Any]) -> None:
        click.echo(json.dumps(line, ensure_ascii=False) if as_json else human(line))

    report = caption_live(source, out, cfg, opts, backend=backend, on_line=show)
    if not as_json:
        click.echo(f"records: {report.captions} captions appended to {out} (run {report.run_dir})")
        click.echo(f"look at them: diffcap view {out} --open")
