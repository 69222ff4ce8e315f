"""Rows: one video's work item as it travels through the stages (JSON-able values only).

row = new_row(VideoItem("a", "/data/a.mp4"))
fail_row(row, "prepare", exc)     # status "failed", reason from the exception
"""

from __future__ import annotations

import logging
from typing import Any

from diffcap.errors import BudgetExceeded, DiffcapError

log = logging.getLogger(__name__)

Row = dict[str, Any]

ROW_KEYS = (
    "video_id",
    "source",
    "path",
    "start",
    "end",
    "caption",
    "duration",
    "status",
    "stage",
    "reason",
    "error",
    "attempts",
    "duplicate_of",
    "similarity",
    "keyframes_json",
    "record",
)


def new_row(item: Any) -> Row:
    """A pending row from a VideoItem or a store ``videos`` row (anything with the fields)."""
    get = item.get if isinstance(item, dict) else lambda k, d=None: getattr(item, k, d)
    row: Row = dict.fromkeys(ROW_KEYS)
    row.update(
        video_id=get("video_id"),
        source=get("source"),
        start=get("start"),
        end=get("end"),
        caption=get("caption"),
        duration=get("duration"),
        attempts=get("attempts", 0) or 0,
        status="pending",
    )
    return row


def is_pending(row: Row) -> bool:
    return row["status"] == "pending" and row.get("reason") != "budget"


def fail_row(row: Row, stage: str, exc: BaseException) -> Row:
    """Record a failure in the row (never raises). BudgetExceeded leaves the row pending."""
    if isinstance(exc, BudgetExceeded):
        row.update(status="pending", stage=stage, reason="budget", error=str(exc))
        return row
    reason = exc.reason if isinstance(exc, DiffcapError) else type(exc).__name__
    if not isinstance(exc, DiffcapError):
        # An unexpected exception is a bug somewhere: keep the traceback in the debug log.
        log.warning(
            "%s: %s failed unexpectedly: %r",
            row["video_id"],
            stage,
            exc,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
    row.update(status="failed", stage=stage, reason=reason, error=str(exc) or repr(exc))
    return row


def filter_row(row: Row, stage: str, reason: str, error: str, **extra: Any) -> Row:
    row.update(status="filtered", stage=stage, reason=reason, error=error, **extra)
    return row
