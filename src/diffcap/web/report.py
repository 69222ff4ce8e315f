"""The static report: one self-contained HTML file (images inlined, CSS/JS inline).

    write_report(load_runs(["out/run1"]), Path("report.html"))

It works offline and from ``file://``: keyframes are downscaled JPEG data URLs, clicking one
opens the video file (a ``file://`` link with a ``#t=`` media fragment).
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from diffcap.web.data import KeyframeView, Run
from diffcap.web.pages import page
from diffcap.web.safety import PathRefused, contained_file
from diffcap.web.viewer import entry_detail, facets

logger = logging.getLogger(__name__)


def thumbnail_data_url(path: Path, max_side: int = 320, quality: int = 80) -> str | None:
    """A JPEG data URL of ``path`` scaled to ``max_side``; None when it is not an image."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((max_side, max_side))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=quality)
    except (OSError, ValueError) as exc:
        logger.warning("%s: cannot inline this keyframe (%s)", path, exc)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def build_report_data(
    runs: Sequence[Run], thumb_side: int = 320, quiet: bool = False
) -> dict[str, Any]:
    entries = [(run, e) for run in runs for e in run.entries]
    videos = []
    for key, (run, e) in enumerate(tqdm(entries, desc="report", unit="video", disable=quiet)):

        def kf_src(k: KeyframeView, run: Run = run) -> str | None:
            if not k.file:
                return None
            try:
                return thumbnail_data_url(contained_file(run.root, k.file), thumb_side)
            except PathRefused as exc:
                logger.warning("run %s: keyframe %s not inlined (%s)", run.name, k.file, exc)
                return None

        media = e.media.as_uri() if e.media else None
        videos.append(entry_detail(key, e, kf_src, media))
    return {"mode": "static", "meta": facets([e for _, e in entries]), "videos": videos}


def write_report(
    runs: Sequence[Run], out: str | Path, thumb_side: int = 320, quiet: bool = False
) -> Path:
    """Write the report to ``out`` and return its path."""
    out = Path(out)
    data = build_report_data(runs, thumb_side, quiet)
    title = "diffcap report: " + ", ".join(r.name for r in runs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page("viewer", title, data, inline=True), encoding="utf-8")
    logger.info("wrote %s (%d videos, %.1f MB)", out, len(data["videos"]), out.stat().st_size / 1e6)
    return out
