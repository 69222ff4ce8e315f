"""Safety helpers for the web pages: secret redaction, script-safe JSON, contained paths.

Model text and file names are untrusted: they may hold HTML, ``</script>`` or ``../``.

    redact({"model": "m", "api_key": "sk-..."})    # {"model": "m", "api_key": "[redacted]"}
    json_for_script({"t": "</script>"})            # '{"t": "\\u003c/script\\u003e"}'
    contained_file(root, "kf/000.jpg")            # Path, or raises PathRefused
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[redacted]"

# Field names that carry credentials. "max_tokens"/"prompt_tokens" are counts, not secrets,
# so "token" only matches as a whole word or with an access/auth/bearer-like prefix.
_SECRET_NAME = re.compile(
    r"(api[-_]?key|apikey|secret|passw(or)?d|authori[sz]ation|credential|private[-_]?key|"
    r"access[-_]?key|cookie|^key$|^token$|(access|auth|bearer|refresh|session|id|hf|api)[-_]?token)",
    re.IGNORECASE,
)
# Values that look like keys whatever the field is called (OpenAI, HF, bearer headers).
_SECRET_VALUE = re.compile(r"(sk-[A-Za-z0-9_\-]{12,}|hf_[A-Za-z0-9]{16,}|Bearer\s+\S+)")


def redact(obj: Any) -> Any:
    """A deep copy of ``obj`` with key-like fields and key-like strings replaced."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if isinstance(k, str) and _SECRET_NAME.search(k) and v not in (None, "", False):
                out[k] = REDACTED
            else:
                out[k] = redact(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        return _redact_url(_SECRET_VALUE.sub(REDACTED, obj))
    return obj


def _redact_url(text: str) -> str:
    """Drop a password from ``scheme://user:pass@host`` URLs (e.g. an api_base)."""
    if "://" not in text or "@" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if parts.password is None:
        return text
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:{REDACTED}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


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
