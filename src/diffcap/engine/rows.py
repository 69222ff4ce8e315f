"""Rows: one video's work item as it travels through the stages (a typed, JSON-able value).

    row = VideoRow.new(VideoItem("a", "/data/a.mp4"))
    row.fail("prepare", exc)     # failed, deferred or "bug", by diffcap.errors.fault_kind
    row.active                   # still to be worked on by the next stage

Statuses: ``pending`` (in progress), ``done``, ``failed`` (permanent, with a reason),
``filtered`` (dropped on purpose, with a reason) and ``deferred`` (a fault of the world, the
cost cap or a bug stopped it: the store keeps it pending, so a rerun retries it).
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from diffcap.errors import DiffcapError, fault_kind, world_fault_reason

log = logging.getLogger(__name__)

RowStatus = Literal["pending", "done", "failed", "filtered", "deferred"]

#: Reasons of deferred rows that stop the run at once (see ``fault_kind``: ``fatal``).
FATAL_REASONS = frozenset({"config", "missing_dependency", "template"})
NOT_WORLD_FAULTS = FATAL_REASONS | {"budget", "internal_error", "terminated", "interrupted"}


@dataclass
class VideoRow:
    video_id: str
    source: str
    path: str | None = None
    start: float | None = None
    end: float | None = None
    caption: str | None = None  # short caption (manifest or generated), for de-dup
    duration: float | None = None  # seconds that will be processed (span or whole video)
    status: RowStatus = "pending"
    stage: str | None = None  # stage of the last failure, filter or deferral
    reason: str | None = None
    error: str | None = None
    attempts: int = 0
    duplicate_of: str | None = None
    similarity: float | None = None
    keyframes_json: str | None = None
    damaged: dict[str, Any] | None = None  # what was lost reading the file (see Damage)
    record: dict[str, Any] | None = None  # VideoRecord JSON once a stage produced it
    traceback: str | None = None  # set for bugs only: logged by the driver
    #: Hand-offs between stages (JSON-able: rows travel between Ray actors as JSON), for
    #: example the image files an eval item's input stage made for its answer stage. Never
    #: committed to the store.
    artifacts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, item: Any) -> VideoRow:
        """A pending row from a VideoItem or a store ``videos`` row (anything with the fields)."""
        get = item.get if isinstance(item, dict) else lambda k, d=None: getattr(item, k, d)
        return cls(
            video_id=str(get("video_id")),
            source=str(get("source")),
            start=get("start"),
            end=get("end"),
            caption=get("caption"),
            duration=get("duration"),
            attempts=get("attempts", 0) or 0,
        )

    @property
    def active(self) -> bool:
        """Still in progress (the next stage works on it)."""
        return self.status == "pending"

    @property
    def span(self) -> tuple[float, float] | None:
        """The captioned span (start, end) in seconds, when the input gave one."""
        if self.start is None and self.end is None:
            return None
        start = self.start or 0.0
        return start, start + (self.duration or 0.0)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VideoRow:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def fail(self, stage: str, exc: BaseException) -> VideoRow:
        """Record a failure (never raises), classified by :func:`fault_kind`: permanent
        faults fail the video; transient ones, the cost cap and bugs defer it."""
        kind = fault_kind(exc)
        self.stage, self.error = stage, str(exc) or repr(exc)
        if kind == "permanent":
            self.status = "failed"
            self.reason = exc.reason if isinstance(exc, DiffcapError) else type(exc).__name__
        elif kind == "budget":
            self.status, self.reason = "deferred", "budget"
        elif kind == "fatal":
            self.status = "deferred"
            self.reason = exc.reason if isinstance(exc, DiffcapError) else "config"
        elif kind == "transient":
            self.status, self.reason = "deferred", world_fault_reason(exc)
        else:
            self.status, self.reason = "deferred", "internal_error"
            self.error = f"{type(exc).__name__}: {exc}"
            self.traceback = "".join(traceback.format_exception(exc))
        return self

    def filter(self, stage: str, reason: str, error: str, **extra: Any) -> VideoRow:
        self.status, self.stage, self.reason, self.error = "filtered", stage, reason, error
        for key, value in extra.items():
            setattr(self, key, value)
        return self

    @property
    def world_fault(self) -> bool:
        """Deferred by a fault of the world (what the circuit breaker counts)."""
        return self.status == "deferred" and self.reason not in NOT_WORLD_FAULTS

    @property
    def fatal(self) -> bool:
        """Deferred by a setting or install the whole run lacks: the run stops."""
        return self.status == "deferred" and self.reason in FATAL_REASONS
