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


class DiffcapError(Exception):
    """Base class of all errors diffcap raises on purpose."""

    #: Short machine-readable reason, recorded in failure tables.
    reason: str = "error"

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


class DownloadError(VideoError):
    reason = "download"


# --- models ----------------------------------------------------------------------------


class ModelError(DiffcapError):
    """A model backend failed."""

    reason = "model"


class ModelUnavailable(ModelError):
    """The model cannot be loaded or reached (no weights offline, no key, no server)."""

    reason = "model_unavailable"


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
        self.status = status
        self.retry_after = retry_after
        super().__init__(message, hint=hint)


class BudgetExceeded(DiffcapError):
    """The run's estimated cost reached ``--max-cost-usd``; rerun with a higher cap to go on."""

    reason = "budget"


class TemplateError(DiffcapError):
    reason = "template"
