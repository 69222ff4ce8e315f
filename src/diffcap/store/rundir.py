"""The run directory's layout, spelled once: every file and folder a run keeps.

    run = RunDir("runs/demo")
    run.db                      # runs/demo/run.sqlite (videos, records, request cache)
    run.keyframes_for("a")      # runs/demo/keyframes/a/
    RunDir.beside("captions.jsonl").root   # captions.run/ (the run dir of `diffcap caption`)

A ``RunDir`` is a frozen value (it pickles to Ray workers as its root); it creates nothing.
Every path it gives lies under ``root``: names that would leave it (``..``, ``/``) are
refused rather than joined.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePath

from diffcap.errors import ConfigError

#: File names of the layout (``RUN_DIR/<name>``).
DB_NAME = "run.sqlite"
EVAL_DB_NAME = "eval.sqlite"
CONFIG_NAME = "config.yaml"
LOCK_NAME = ".lock"
RECORDS_DIR = "records"
SHARD_GLOB = "records-*.jsonl"
PARQUET_NAME = "records.parquet"
FAILURES_NAME = "failures.jsonl"
FILTERED_NAME = "filtered.jsonl"
KEYFRAMES_DIR = "keyframes"
LOGS_DIR = "logs"
ERRORS_LOG = "errors.log"
SPOOL_DIR = "spool"
DOWNLOADS_DIR = "downloads"
PUBLISH_MANIFEST = "_manifest.json"


@dataclass(frozen=True)
class RunDir:
    """The paths of one run directory (see the module docstring)."""

    root: Path

    def __init__(self, root: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "root", Path(root))

    @classmethod
    def of(cls, target: str | os.PathLike[str] | RunDir) -> RunDir:
        """``target`` itself when it is a RunDir, else the RunDir rooted there."""
        return target if isinstance(target, RunDir) else cls(target)

    @classmethod
    def beside(cls, out: str | os.PathLike[str]) -> RunDir:
        """The run dir of an output file: ``captions.jsonl`` -> ``captions.run/`` beside it."""
        out = Path(out)
        stem = out.name[: -len(out.suffix)] if out.suffix else out.name
        return cls(out.parent / f"{stem}.run")

    # --- files ---------------------------------------------------------------------------

    @property
    def db(self) -> Path:
        """The run database (videos, records, metadata, the SQLite request cache)."""
        return self.root / DB_NAME

    @property
    def eval_db(self) -> Path:
        """The database of an ``eval`` run (the same schema as :attr:`db`)."""
        return self.root / EVAL_DB_NAME

    @property
    def config(self) -> Path:
        """The resolved config the run was made with (no API key)."""
        return self.root / CONFIG_NAME

    @property
    def lock(self) -> Path:
        """The ``flock`` file of :class:`~diffcap.store.lock.RunLock`."""
        return self.root / LOCK_NAME

    @property
    def parquet(self) -> Path:
        return self.root / PARQUET_NAME

    @property
    def failures(self) -> Path:
        return self.root / FAILURES_NAME

    @property
    def filtered(self) -> Path:
        return self.root / FILTERED_NAME

    @property
    def publish_manifest(self) -> Path:
        """The list of files last published to ``output.uri`` (with their sizes)."""
        return self.root / PUBLISH_MANIFEST

    @property
    def errors_log(self) -> Path:
        """Tracebacks of internal errors (exit code 70 points here)."""
        return self.logs / ERRORS_LOG

    # --- folders -------------------------------------------------------------------------

    @property
    def records(self) -> Path:
        """The record shards' folder; keyframe paths in records are relative to it."""
        return self.root / RECORDS_DIR

    def shards(self) -> list[Path]:
        """The record shards present (``records/records-*.jsonl``), in order."""
        return sorted(self.records.glob(SHARD_GLOB))

    @property
    def keyframes(self) -> Path:
        return self.root / KEYFRAMES_DIR

    def keyframes_for(self, video_id: str) -> Path:
        """``keyframes/<video_id>/``: one video's keyframe images and ``keyframes.json``."""
        return self.keyframes / _component(video_id, "video id")

    @property
    def logs(self) -> Path:
        return self.root / LOGS_DIR

    @property
    def spool(self) -> Path:
        """Row files handed to Ray read tasks (one sub-folder per executor run)."""
        return self.root / SPOOL_DIR

    def spool_for(self, invocation: str) -> Path:
        return self.spool / _component(invocation, "spool name")

    @property
    def downloads(self) -> Path:
        """URL inputs downloaded for the run (unless ``input.download_dir`` names another)."""
        return self.root / DOWNLOADS_DIR

    # --- what it holds -------------------------------------------------------------------

    def has_store(self) -> bool:
        """Whether the run database exists (a run, not just a folder)."""
        return self.db.is_file()

    def require_store(self) -> Path:
        """The run database, or a :class:`ConfigError` saying this is no run directory."""
        if not self.has_store():
            raise ConfigError(
                f"{self.root}: not a diffcap run directory (no {DB_NAME})",
                hint="pass the --out folder of a `diffcap run`",
            )
        return self.db

    def __fspath__(self) -> str:
        return str(self.root)

    def __str__(self) -> str:
        return str(self.root)


def _component(name: str, what: str) -> str:
    """``name`` when it is one path component that stays in its folder, else ValueError."""
    parts = PurePath(name).parts
    if len(parts) != 1 or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise ValueError(f"{what} {name!r} is not a single file name")
    return name


__all__ = ["RunDir"]
