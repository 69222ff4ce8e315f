"""The diffcap exception hierarchy.

Every error carries a one-line message that says what went wrong and, where there is one,
what to do next (``hint``). The CLI prints ``str(error)`` and exits non-zero; ``--debug``
shows the traceback.

    try:
        source = open_video(path)
    except VideoError as exc:
        print(exc)          # "bad.mp4: not a video file (no decodable stream) ..."
"""

from __future__ import annotations

import errno
from typing import Literal


class DiffcapError(Exception):
    """Base class of all errors diffcap raises on purpose."""

    #: Short machine-readable reason, recorded in failure tables.
    reason: str = "error"
    #: A fault of the world (endpoint down, disk full), not of the video: a video that hits
    #: it is left pending and a plain rerun retries it. See :func:`fault_kind`.
    transient: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class ConfigError(DiffcapError):
    """A setting is missing, unknown or out of range."""

    reason = "config"


class MissingDependency(DiffcapError):
    """An optional dependency is not installed; the message gives the exact pip command."""

    reason = "missing_dependency"


# --- video -----------------------------------------------------------------------------


class VideoError(DiffcapError):
    """A video cannot be read (or only partly)."""

    reason = "video"

    def __init__(self, path: object, message: str, *, hint: str | None = None) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {message}", hint=hint)


class VideoNotFound(VideoError):
    reason = "not_found"


class NotAFile(VideoError):
    reason = "not_a_file"


class EmptyFile(VideoError):
    reason = "empty_file"


class NotAVideo(VideoError):
    reason = "not_a_video"


class NoVideoStream(VideoError):
    """The container opened but holds no video stream (audio only, subtitles...)."""

    reason = "no_video_stream"


class UnsupportedCodec(VideoError):
    reason = "unsupported_codec"


class CorruptVideo(VideoError):
    """Decoding failed part-way. ``decoded_until`` says how far (seconds) frames were good."""

    reason = "corrupt"

    def __init__(
        self,
        path: object,
        message: str,
        *,
        decoded_until: float | None = None,
        hint: str | None = None,
    ) -> None:
        self.decoded_until = decoded_until
        super().__init__(path, message, hint=hint)


class FrameTooLarge(VideoError):
    """The video's frames are too large to decode within the memory bound (``max_pixels``)."""

    reason = "too_large"


class DownloadError(VideoError):
    reason = "download"


class DownloadUnavailable(DownloadError):
    """The network or the server failed (connection, timeout, 5xx, 429): not the video's
    fault, so the video stays pending and a rerun downloads it again."""

    reason = "download_unavailable"
    transient = True


class VideoPermissionDenied(VideoError):
    """The file exists but cannot be read by this process: fix permissions and rerun."""

    reason = "permission_denied"
    transient = True


# --- models ----------------------------------------------------------------------------


class ModelError(DiffcapError):
    """A model backend failed."""

    reason = "model"


class ModelUnavailable(ModelError):
    """The model cannot be loaded or reached (no weights offline, no key, no server)."""

    reason = "model_unavailable"
    transient = True


class RequestFailed(ModelError):
    """One model request failed. ``retryable`` tells the retry loop whether to try again."""

    reason = "request_failed"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        self.retryable = retryable
        self.transient = retryable  # retries ran out on a retryable failure: try again later
        self.status = status
        self.retry_after = retry_after
        super().__init__(message, hint=hint)


class ContextExceeded(RequestFailed):
    """A request was over the model's context window (the server said so, or diffcap's own
    count did before sending). Not the video's fault: the captioning step that sent it
    splits its work and tries again (see :mod:`diffcap.captioning.budget`); if it still
    cannot fit, the video stays pending. ``limit``: the model's window when known;
    ``tokens``: what the request needed when known."""

    reason = "context_exceeded"

    def __init__(
        self,
        message: str,
        *,
        limit: int | None = None,
        tokens: int | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, retryable=False, status=status, hint=hint)
        self.transient = True  # never a permanent failure of the video
        self.limit = limit
        self.tokens = tokens


class ContextTooSmall(ConfigError):
    """Even the smallest request of a step cannot fit the model's context (the images alone,
    or the fixed prompt, fill it): a setting to change, so the run stops and the video stays
    pending. The message gives the numbers."""

    reason = "context_too_small"


class BudgetExceeded(DiffcapError):
    """The run's estimated cost reached ``--max-cost-usd``; rerun with a higher cap to go on."""

    reason = "budget"


class TemplateError(DiffcapError):
    reason = "template"


# --- runs ------------------------------------------------------------------------------


class StorageError(DiffcapError):
    """The run directory cannot be written (disk full, read-only, permission denied)."""

    reason = "storage"
    transient = True


class CacheUnavailable(StorageError):
    """The request cache's database server cannot be reached (down, refused, connection lost):
    a fault of the world, so videos stay pending; the next request reconnects."""

    reason = "cache_unavailable"


class RunDirLocked(DiffcapError):
    """Another process is running in this run directory."""

    reason = "locked"


class RunStopped(DiffcapError):
    """The run stopped early on a fault of the world; a plain rerun resumes.

    ``reason``: ``endpoint_down``, ``storage`` or ``faults`` (several videos in a row hit
    transient faults)."""

    transient = True

    def __init__(self, reason: str, message: str, *, hint: str | None = None) -> None:
        self.reason = reason
        super().__init__(message, hint=hint)


FaultKind = Literal["permanent", "transient", "budget", "fatal", "bug"]

#: errno values that mean the machine, not the video, is at fault.
WORLD_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.EMFILE,
        errno.ENFILE,
        errno.ENOMEM,
        errno.EIO,
    }
)


def fault_kind(exc: BaseException) -> FaultKind:
    """The one classification of failures every stage and executor uses.

    - ``budget``: the cost cap stopped new requests (the video stays pending);
    - ``transient``: a fault of the world (endpoint down or unreachable, 5xx or timeouts
      after retries, disk full, permission errors): the video stays pending, a rerun retries;
    - ``permanent``: the video itself is bad (unreadable, refused by the model): recorded as
      failed with its reason;
    - ``fatal``: a setting or an install the whole run lacks (an unknown embedder, a missing
      optional package, a bad template): the video stays pending and the run stops;
    - ``bug``: anything that is not a diffcap error: the video stays pending, the traceback
      is logged and the run exits non-zero.
    """
    if isinstance(exc, BudgetExceeded):
        return "budget"
    if isinstance(exc, (ConfigError, MissingDependency, TemplateError)):
        return "fatal"
    if isinstance(exc, DiffcapError):
        return "transient" if exc.transient else "permanent"
    if isinstance(exc, OSError) and exc.errno in WORLD_ERRNOS:
        return "transient"
    if type(exc).__module__ == "sqlite3" or type(exc).__name__ == "OperationalError":
        return "transient"  # the run database: disk full, read-only, locked
    return "bug"


def world_fault_reason(exc: BaseException) -> str:
    """A short reason for a transient fault (``disk_full``, ``read_only``, ...)."""
    if isinstance(exc, DiffcapError):
        return exc.reason
    if isinstance(exc, OSError):
        return {
            errno.ENOSPC: "disk_full",
            errno.EDQUOT: "disk_full",
            errno.EROFS: "read_only",
            errno.EACCES: "permission_denied",
            errno.EPERM: "permission_denied",
            errno.EMFILE: "too_many_open_files",
            errno.ENFILE: "too_many_open_files",
            errno.ENOMEM: "out_of_memory",
            errno.EIO: "io_error",
        }.get(exc.errno or 0, "os_error")
    text = str(exc).lower()
    if "full" in text:
        return "disk_full"
    if "readonly" in text or "read-only" in text:
        return "read_only"
    return "storage"


def exception_text(exc: BaseException) -> str:
    """What ``exc`` says, never empty: its message, else the OS error's text (``[Errno 28]
    No space left on device``), else its type (an ``httpx.WriteError()`` on a full disk has
    no message at all)."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and not getattr(exc, "strerror", None):
        import os

        return f"{type(exc).__name__}: [Errno {code}] {os.strerror(code)}"
    text = str(exc).strip()
    if text:
        return text
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:
        inner = exception_text(cause)
        return f"{type(exc).__name__} ({inner})"
    return type(exc).__name__


#: Exit codes shared by every command that runs the pipeline (documented in README).
EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "error": 1,  # a diffcap error; or videos failed, inputs were bad, or none was found
    "usage": 2,  # bad usage or config values
    "no_model": 3,  # no usable model: not configured, unreachable, not found
    # Stopped, nothing lost, a rerun resumes: the cost cap (rerun with a higher cap), a fault
    # of the world (endpoint down, disk full), the run directory in use by another process.
    "budget": 4,
    "stopped": 4,
    "locked": 4,
    "bug": 70,  # an internal error; the traceback is in RUN_DIR/logs/errors.log
    "interrupted": 130,  # Ctrl-C
    "terminated": 143,  # SIGTERM: the answers in flight were awaited and kept
}
EXIT_BUDGET = EXIT_CODES["budget"]
