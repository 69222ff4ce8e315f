"""Safety helpers for the web pages: secret redaction, script-safe JSON, contained paths.

Model text and file names are untrusted: they may hold HTML, ``</script>`` or ``../``.

    redact({"model": "m", "api_key": "sk-..."})    # {"model": "m", "api_key": "[redacted]"}
    json_for_script({"t": "</script>"})            # '{"t": "\\u003c/script\\u003e"}'
    contained_file(root, "kf/000.jpg")            # Path, or raises PathRefused
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from diffcap.redact import REDACTED, redact_data

__all__ = [
    "REDACTED",
    "ContainedFiles",
    "PathRefused",
    "contained_file",
    "json_for_script",
    "redact",
]


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


class ContainedFiles:
    """:func:`contained_file` for many paths under one root (the static report's keyframes).

    Same rules, far fewer system calls: the root is resolved once and every directory prefix
    once (cached), so a keyframe costs one ``lstat``; a symlink anywhere is resolved in full
    and must still land inside the root.

        files = ContainedFiles(run.root)
        files.relative("keyframes/v1/0.jpg")   # "keyframes/v1/0.jpg" (real, root-relative)
    """

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self._dirs: dict[str, str] = {"": self.root}

    def _real(self, rel: str) -> str:
        """Real path of ``rel`` (no ``..``), through the cache of resolved directories."""
        parent, _, name = rel.rpartition("/")
        base = self._dirs.get(parent)
        if base is None:
            base = self._dirs[parent] = self._real(parent)
        path = os.path.join(base, name)
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                path = os.path.realpath(path)
        except OSError:
            pass  # missing: refused as "no such file" below
        return path

    def relative(self, rel: str) -> str:
        """The real path of ``rel`` relative to the real root; raises :class:`PathRefused`."""
        if not rel or "\x00" in rel or "\\" in rel:
            raise PathRefused(403, "bad path")
        parts = rel.split("/")
        if rel.startswith("/") or ".." in parts:
            raise PathRefused(403, "path escapes the run directory")
        real = self._real("/".join(p for p in parts if p not in ("", ".")))
        if not real.startswith(self.root + os.sep):
            raise PathRefused(403, "path resolves outside the run directory")
        if not os.path.isfile(real):
            raise PathRefused(404, "no such file")
        return real[len(self.root) + 1 :]
