"""The static report: one HTML page plus a folder beside it, made for runs of any size.

    write_report(load_runs(["out/run1"]), Path("report.html"))
    # report.html              the page (CSS and script inline, pinned by hash in its CSP)
    # report_files/data-*.js   the videos, CHUNK per file, loaded by the page one after another
    # report_files/thumbs/     only with thumb_side: downscaled keyframes

The page lists and pages through the videos as soon as the first chunk has arrived, and
searches over every chunk once they are in. Keyframes are ``<img loading="lazy">`` pointing at
the run's own files (relative paths, so the report works from ``file://`` next to its runs),
or at thumbnails written beside the HTML with ``thumb_side``. Clicking a keyframe opens the
video file through a ``file://`` link with a ``#t=`` media fragment.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image
from tqdm import tqdm

from diffcap.web.data import KeyframeView, Run, VideoEntry
from diffcap.web.listing import PAGE_SIZE, entry_detail, facets
from diffcap.web.pages import page
from diffcap.web.safety import ContainedFiles, PathRefused, json_for_script

logger = logging.getLogger(__name__)

CHUNK = 1000  # videos per data file: the first page shows after one small file is parsed


def files_dir(out: Path) -> Path:
    """``report.html`` -> ``report_files`` (beside it)."""
    return out.with_name(out.stem + "_files")


def write_thumbnail(src: Path, dest: Path, max_side: int = 320, quality: int = 80) -> bool:
    """A JPEG of ``src`` scaled to ``max_side`` (JPEG sources are decoded at reduced size)."""
    try:
        with Image.open(src) as opened:
            opened.draft("RGB", (max_side, max_side))  # a no-op for formats other than JPEG
            im = opened.convert("RGB")
            im.thumbnail((max_side, max_side))
            dest.parent.mkdir(parents=True, exist_ok=True)
            im.save(dest, "JPEG", quality=quality)
    except (OSError, ValueError) as exc:
        logger.warning("%s: cannot make a thumbnail of this keyframe (%s)", src, exc)
        return False
    return True


class _Sources:
    """Maps a keyframe to the URL the report's ``<img>`` uses, relative to the HTML."""

    def __init__(self, out: Path, thumb_side: int | None) -> None:
        self.base = os.path.realpath(out.parent)
        self.thumbs = files_dir(out) / "thumbs"
        self.thumb_side = thumb_side
        self._runs: dict[int, tuple[ContainedFiles, str]] = {}

    def _run(self, run: Run) -> tuple[ContainedFiles, str]:
        """The run's contained-file checker and its root as a URL prefix from the HTML."""
        if id(run) not in self._runs:
            files = ContainedFiles(run.root)
            prefix = quote(Path(os.path.relpath(files.root, self.base)).as_posix())
            self._runs[id(run)] = (files, "" if prefix == "." else prefix + "/")
        return self._runs[id(run)]

    def __call__(self, run: Run, key: int, i: int, k: KeyframeView) -> str | None:
        if not k.file:
            return None
        files, prefix = self._run(run)
        try:
            rel = files.relative(k.file)
        except PathRefused as exc:
            logger.warning("run %s: keyframe %s not shown (%s)", run.name, k.file, exc)
            return None
        if not self.thumb_side:
            return prefix + quote(rel)
        src = Path(files.root, rel)
        dest = self.thumbs / f"{key}_{i}.jpg"
        fresh = dest.is_file() and dest.stat().st_mtime >= src.stat().st_mtime
        if not fresh and not write_thumbnail(src, dest, self.thumb_side):
            return None
        return quote(Path(os.path.relpath(dest, self.base)).as_posix())


def _details(runs: Sequence[Run], sources: _Sources, quiet: bool) -> Iterator[dict[str, Any]]:
    entries: list[tuple[Run, VideoEntry]] = [(run, e) for run in runs for e in run.entries]
    for key, (run, e) in enumerate(tqdm(entries, desc="report", unit="video", disable=quiet)):

        def kf_src(i: int, k: KeyframeView, run: Run = run, key: int = key) -> str | None:
            return sources(run, key, i, k)

        media = e.media.as_uri() if e.media else None
        yield entry_detail(key, e, kf_src, media)


def _write_chunk(folder: Path, n: int, videos: list[dict[str, Any]]) -> None:
    # A script, not JSON: a page opened from file:// may not fetch() files, but may load them
    # as scripts it creates itself (its CSP trusts those through 'strict-dynamic').
    text = f"window.diffcapChunk({n},{json_for_script(videos)});\n"
    (folder / f"data-{n:05d}.js").write_text(text, encoding="utf-8")


def write_report(
    runs: Sequence[Run],
    out: str | Path,
    thumb_side: int | None = None,
    quiet: bool = False,
    chunk: int = CHUNK,
) -> Path:
    """Write the report page to ``out`` and its data beside it; return the page's path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = files_dir(out)
    for old in folder.glob("data-*.js"):  # a smaller rerun must not leave old chunks behind
        old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    sources = _Sources(out, thumb_side)
    if not thumb_side and (folder / "thumbs").is_dir():
        shutil.rmtree(folder / "thumbs")
    n_chunks, batch, total = 0, [], 0
    for detail in _details(runs, sources, quiet):
        batch.append(detail)
        if len(batch) == chunk:
            _write_chunk(folder, n_chunks, batch)
            n_chunks, total, batch = n_chunks + 1, total + len(batch), []
    if batch:
        _write_chunk(folder, n_chunks, batch)
        n_chunks, total = n_chunks + 1, total + len(batch)
    config = {
        "mode": "static",
        "meta": facets([e for run in runs for e in run.entries]),
        "files": quote(folder.name) + "/",
        "chunks": n_chunks,
        "chunk_size": chunk,
        "page_size": PAGE_SIZE,
    }
    title = "diffcap report: " + ", ".join(r.name for r in runs)
    out.write_text(page("viewer", title, config, inline=True), encoding="utf-8")
    size = sum(p.stat().st_size for p in folder.glob("data-*.js")) + out.stat().st_size
    logger.info("wrote %s (%d videos, %d data files, %.1f MB)", out, total, n_chunks, size / 1e6)
    return out
