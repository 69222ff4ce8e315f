"""Safety helpers for the web pages: secret redaction, script-safe JSON, contained paths.

Model text and file names are untrusted: they may hold HTML, ``</script>`` or ``../``.

    redact({"model": "m", "api_key": "sk-..."})    # {"model": "m", "api_key": "[redacted]"}
    json_for_script({"t": "</script>"})            # '{"t": "\\u003c/script\\u003e"}'
    contained_file(root, "kf/000.jpg")            # Path, or raises PathRefused
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from diffcap.redact import REDACTED, redact_data

__all__ = ["REDACTED", "PathRefused", "contained_file", "json_for_script", "redact"]


def redact(obj: Any) -> Any:
    """Records shown on a page: :func:`diffcap.redact.redact_data` (fields and strings)."""
    return redact_data(obj)


def json_for_script(data: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``.

    Escaping ``<``, ``>`` and ``&`` means no model text can close the script element or
    open a comment; U+2028/2029 are escaped for old JS parsers.
    """
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


class PathRefused(Exception):
    """A requested path escapes its root (``status`` 403) or names no file (404)."""

    def __init__(self, status: int, why: str) -> None:
        self.status = status
        super().__init__(why)


def contained_file(root: Path, rel: str) -> Path:
    """Resolve ``rel`` (a URL-decoded, ``/``-separated path) inside ``root``.

    Refuses absolute paths, ``..`` segments, backslashes and NUL bytes (403), and any path
    whose real location (after following symlinks) is outside ``root``'s real location (403).
    A path that names no regular file is 404.
    """
    if not rel or "\x00" in rel or "\\" in rel:
        raise PathRefused(403, "bad path")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or rel.startswith("/") or ".." in pure.parts:
        raise PathRefused(403, "path escapes the run directory")
    real_root = root.resolve()
    target = (real_root / Path(*pure.parts)).resolve()
    if not target.is_relative_to(real_root):
        raise PathRefused(403, "path resolves outside the run directory")
    if not target.is_file():
        raise PathRefused(404, "no such file")
    return target
