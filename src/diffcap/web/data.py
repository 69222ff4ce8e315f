"""Load runs for the viewer and the review: records, failures and filtered videos.

A run is either a ``diffcap run`` directory (``records/records-*.jsonl``, ``failures.jsonl``,
optional ``filtered.jsonl``) or a records JSONL file (``captions.jsonl``, its failures in
``captions.run/failures.jsonl`` and ``filtered.jsonl``, or diffcap 0.1's sibling
``captions.failures.jsonl``). The loader is tolerant: a bad line is logged and skipped,
unknown keys are ignored.

Videos are never located from a record's ``video_path``: a run directory's playable files are
the sources registered in its ``run.sqlite`` (looked up by video id); a records JSONL without
a store may only point at video files inside its own folder or a ``media_roots`` folder.

    runs = load_runs(["out/run1", "captions.jsonl"])
    for e in runs[0].entries:
        print(e.video_id, e.status, e.summary)
"""

from __future__ import annotations

import logging
import mimetypes
import posixpath
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffcap.errors import ConfigError
from diffcap.export.records import system_names
from diffcap.fsutil import is_keyframe_path
from diffcap.redact import Redactor
from diffcap.web.records_file import check_records_file, read_jsonl, read_records
from diffcap.web.tree import read_tree

logger = logging.getLogger(__name__)

_SIDE_SUFFIXES = (".failures.jsonl", ".filtered.jsonl")
_NOTE_EXTRAS = ("duplicate_of", "similarity", "duration", "row", "attempts")


@dataclass
class KeyframeView:
    idx: int
    time: float
    file: str | None  # relative to the run root ("/"-separated), None when absent
    caption: str | None = None
    camera: str | None = None  # measured camera motion since the previous keyframe


@dataclass
class VideoEntry:
    """One video of one run, as the pages show it."""

    run: str
    video_id: str
    status: str  # "ok", "failed" or "filtered"
    video_path: str = ""
    duration: float = 0.0
    mode: str = ""
    model: str = ""
    keyframes: list[KeyframeView] = field(default_factory=list)
    summary: str | None = None
    clips: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)  # failure / filter lines
    media: Path | None = None  # the video file, when it exists on disk
    summary_tree: dict[str, Any] | None = None  # long videos: see diffcap.web.tree.read_tree
    _search: str | None = field(default=None, repr=False, compare=False)

    def search_text(self) -> str:
        """Lower-cased id + all caption text, built once (every list query scans it)."""
        if self._search is None:
            self._search = self._build_search()
        return self._search

    def _build_search(self) -> str:
        parts = [self.video_id, self.summary or ""]
        parts += [k.caption or "" for k in self.keyframes]
        parts += [c.get("content", "") for c in self.clips]
        return "\n".join(parts).lower()


@dataclass
class Run:
    name: str
    source: Path
    root: Path  # keyframe files are served only from inside this directory
    entries: list[VideoEntry]

    def files(self) -> set[str]:
        """Relative paths of every keyframe file the records name (the serving allowlist)."""
        return {k.file for e in self.entries for k in e.keyframes if k.file}


def load_runs(paths: Sequence[str | Path], media_roots: Sequence[str | Path] = ()) -> list[Run]:
    """Load several runs; their names are the dir/file names, made unique."""
    sources = [Path(p) for p in paths]
    names = system_names(sources)
    return [
        load_run(p, name=n, media_roots=media_roots) for p, n in zip(sources, names, strict=True)
    ]


def load_run(
    path: str | Path, name: str | None = None, media_roots: Sequence[str | Path] = ()
) -> Run:
    """Load one run directory or records JSONL. Raises ConfigError when nothing is there."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"{path}: no such run directory or JSONL file",
            hint="pass a `diffcap run` output directory or a captions .jsonl",
        )
    if path.is_file():
        check_records_file(path)
    records, side, root, base = _layout(path)
    if not records and not side:
        raise ConfigError(
            f"{path}: no records found",
            hint="expected RUN_DIR/records/records-*.jsonl or a captions .jsonl file",
        )
    name = name or (path.stem if path.is_file() else path.name)
    by_id: dict[str, VideoEntry] = {}
    redactor = Redactor()  # provenance and notes reach pages: no keys, no URL user info
    for rec_file in records:
        rel_base = _rel(base, root)
        for d in read_records(rec_file):
            entry = _entry_from_record(d, name, rel_base, redactor)
            if entry is not None:
                by_id[entry.video_id] = entry  # a later shard line wins (resumed runs)
    for status, side_file in side:
        for d in read_jsonl(side_file):
            _add_note(by_id, d, name, status, redactor)
    _attach_media(path, root, list(by_id.values()), media_roots)
    logger.info("loaded run %s: %d videos", name, len(by_id))
    return Run(name=name, source=path, root=root, entries=list(by_id.values()))


def _layout(path: Path) -> tuple[list[Path], list[tuple[str, Path]], Path, Path]:
    """(record files, [(status, side file)], served root, dir record paths are relative to)."""
    if path.is_file():
        stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.stem
        run = path.with_name(f"{stem}.run")  # `diffcap caption`'s run directory
        side = [
            ("failed", run / "failures.jsonl"),
            ("filtered", run / "filtered.jsonl"),
            ("failed", path.with_name(f"{stem}.failures.jsonl")),  # diffcap 0.1
            ("filtered", path.with_name(f"{stem}.filtered.jsonl")),
        ]
        return [path], [(s, p) for s, p in side if p.is_file()], path.parent, path.parent
    side = [
        (s, path / f) for s, f in (("failed", "failures.jsonl"), ("filtered", "filtered.jsonl"))
    ]
    side = [(s, p) for s, p in side if p.is_file()]
    if (path / "records").is_dir():
        return sorted((path / "records").glob("*.jsonl")), side, path, path / "records"
    records = sorted(
        p
        for p in path.glob("*.jsonl")
        if not p.name.endswith(_SIDE_SUFFIXES)
        and p.name not in ("failures.jsonl", "filtered.jsonl")
    )
    for rec in records:
        stem = rec.name[: -len(".jsonl")]
        side += [
            (s, rec.with_name(f"{stem}.{k}.jsonl"))
            for s, k in (("failed", "failures"), ("filtered", "filtered"))
            if rec.with_name(f"{stem}.{k}.jsonl").is_file()
        ]
    return records, side, path, path


def _rel(base: Path, root: Path) -> str:
    rel = base.resolve().relative_to(root.resolve()).as_posix()
    return "" if rel == "." else rel


def _entry_from_record(
    d: dict[str, Any], run: str, rel_base: str, redactor: Redactor
) -> VideoEntry | None:
    vid = d.get("video_id")
    if not vid:
        logger.warning("run %s: skipped a record without video_id", run)
        return None
    captions = [c for c in d.get("captions") or [] if isinstance(c, dict)]
    diffs = {str(c.get("idx")): c for c in captions}
    summary = next(
        (c.get("content") for c in reversed(captions) if str(c.get("idx")) == "-1"), None
    )
    keyframes = []
    for i, k in enumerate(d.get("keyframes") or []):
        idx = int(k.get("idx", i))
        cap = diffs.get(str(idx))
        f = _keyframe_file(rel_base, k.get("file"), str(vid), run)
        keyframes.append(
            KeyframeView(
                idx=idx,
                time=float(k.get("time") or 0.0),
                file=f,
                caption=cap.get("content") if cap else None,
                camera=_camera_badge(k.get("camera")),
            )
        )
    prov = redactor.data(d.get("provenance") or {})
    video_path = redactor.text(str(d.get("video_path") or ""))
    return VideoEntry(
        run=run,
        video_id=str(vid),
        status="ok",
        video_path=video_path,
        duration=float(d.get("duration") or 0.0),
        mode=str(d.get("mode") or ""),
        model=str(prov.get("model") or ""),
        keyframes=keyframes,
        summary=summary,
        clips=_clips(d, captions),
        provenance=prov,
        usage=dict(d.get("usage") or {}),
        summary_tree=read_tree(d.get("summary_tree")),
    )


def _keyframe_file(rel_base: str, file: Any, video_id: str, run: str) -> str | None:
    """The root-relative path of a record's keyframe image, or None when the record names
    anything else (``/etc/passwd``, ``../x``, ``notes.txt``): only keyframe images laid out
    as diffcap writes them (``keyframes/<video_id>/*.jpg``) are ever served."""
    if not file or not isinstance(file, str):
        return None
    path = _join(rel_base, file)
    if is_keyframe_path(path, video_id):
        return path
    logger.warning("run %s: %s names %r, not a keyframe image; not served", run, video_id, file)
    return None


def _join(base: str, rel: str) -> str:
    """``records`` + ``../keyframes/v/0.jpg`` -> ``keyframes/v/0.jpg`` (run-root relative).

    A path that still climbs out of the root keeps its ``..``: contained_file() refuses it
    when served, so a record cannot point the server outside its run.
    """
    return posixpath.normpath(f"{base}/{rel}" if base else rel)


def _camera_badge(camera: Any) -> str | None:
    """``{"label": "pan_left", "magnitude": "slow"}`` -> ``"pan left · slow"``."""
    if not isinstance(camera, dict) or not camera.get("label"):
        return None
    label = str(camera["label"]).replace("_", " ")
    return f"{label} · {camera['magnitude']}" if camera.get("magnitude") else label


def _clips(d: dict[str, Any], captions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Clip summaries from a ``clips`` key or ``clip:<start>-<end>`` captions, by start."""
    clips = [
        {
            "start": float(c.get("start") or 0.0),
            "end": float(c.get("end") or 0.0),
            "content": str(c.get("content") or ""),
        }
        for c in d.get("clips") or []
        if isinstance(c, dict)
    ]
    for c in captions:
        if str(c.get("idx", "")).startswith("clip:"):
            start, end = c.get("start"), c.get("end")
            if start is None or end is None:
                try:
                    start, end = (float(x) for x in str(c["idx"])[5:].split("-", 1))
                except ValueError:
                    start, end = 0.0, 0.0
            clips.append(
                {"start": float(start), "end": float(end), "content": str(c.get("content") or "")}
            )
    return sorted(clips, key=lambda c: (c["start"], c["end"]))


def registered_sources(run_dir: Path) -> dict[str, str] | None:
    """``{video_id: source}`` from ``RUN_DIR/run.sqlite`` (read-only); None without a store."""
    db = run_dir / "run.sqlite"
    if not db.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return dict(conn.execute("SELECT video_id, source FROM videos").fetchall())
        finally:
            conn.close()
    except sqlite3.Error as exc:
        logger.warning("%s: cannot read the registered videos (%s); none will play", db, exc)
        return {}


def _attach_media(
    path: Path, root: Path, entries: list[VideoEntry], media_roots: Sequence[str | Path]
) -> None:
    """Set ``entry.media`` from the run's registry, or (no store) from contained paths."""
    registry = registered_sources(path) if path.is_dir() else None
    if registry is not None:
        for e in entries:
            src = registry.get(e.video_id)
            e.media = _local_file(src, [Path.cwd(), path.parent, path]) if src else None
        return
    allowed = [root.resolve(), *(Path(m).resolve() for m in media_roots)]
    for e in entries:
        f = _local_file(e.video_path, [root, Path.cwd()]) if e.video_path else None
        ok = f is not None and _is_video(f) and any(f.is_relative_to(a) for a in allowed)
        e.media = f if ok else None


def _local_file(source: str, bases: Sequence[Path]) -> Path | None:
    """A registered source or contained path as a real regular file, or None (URLs too)."""
    if "://" in source or "\x00" in source:
        return None
    p = Path(source).expanduser()
    for cand in [p] if p.is_absolute() else [b / p for b in bases]:
        if cand.is_file():
            return cand.resolve()
    return None


def _is_video(path: Path) -> bool:
    ctype = mimetypes.guess_type(path.name)[0] or ""
    return ctype.startswith("video/")


def _add_note(
    by_id: dict[str, VideoEntry], d: dict[str, Any], run: str, status: str, redactor: Redactor
) -> None:
    """A failure/filter line. ``diffcap caption`` writes video_path/message; a run directory
    writes source/error (failures) or source/detail (filtered), video_id None for bad inputs."""
    path = redactor.text(str(d.get("video_path") or d.get("source") or ""))
    vid = str(d.get("video_id") or path)
    if not vid:
        return
    message = str(d.get("message") or d.get("error") or d.get("detail") or "")
    extras = [f"{k}={d[k]}" for k in _NOTE_EXTRAS if d.get(k) not in (None, "")]
    if extras:
        message = f"{message} ({', '.join(extras)})" if message else ", ".join(extras)
    note = {
        "stage": str(d.get("stage") or ""),
        "reason": str(d.get("reason") or ""),
        "message": message,
        "status": status,
    }
    entry = by_id.get(vid)
    if entry is None:
        entry = by_id[vid] = VideoEntry(run=run, video_id=vid, status=status, video_path=path)
    entry.notes.append(redactor.data(note))
