"""Download http(s) videos into a cache folder, with a size and a time limit.

Files are named after a hash of the URL, written to a ``.part`` file and renamed only when
complete (every byte the server's Content-Length announced), so a killed or cut-short
download never leaves a truncated video in the cache and a rerun reuses finished downloads.
A short download is a fault of the world (retried on the next run); a cached file that
turns out unreadable is dropped (:func:`forget_download`), so ``--retry-failed`` fetches it
again instead of reusing the same bad bytes.

    path = download("https://example.org/v.mp4", Path("runs/a/downloads"),
                    max_mb=512, timeout_s=120)
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from diffcap.errors import DownloadError, DownloadUnavailable

log = logging.getLogger(__name__)

_CHUNK = 1 << 16


def cache_path(url: str, dest_dir: Path) -> Path:
    suffix = PurePosixPath(urlparse(url).path).suffix.lower()
    if not (1 < len(suffix) <= 6 and suffix[1:].isalnum()):
        suffix = ".video"
    return dest_dir / f"{hashlib.sha256(url.encode()).hexdigest()[:32]}{suffix}"


def download(url: str, dest_dir: Path, *, max_mb: float, timeout_s: float) -> Path:
    """Fetch ``url`` (http/https only) into ``dest_dir``; return the cached file's path.

    Raises :class:`DownloadError` for other schemes, HTTP errors, a body larger than
    ``max_mb`` and a transfer longer than ``timeout_s`` (in total, not per read).
    """
    scheme = urlparse(url).scheme.lower()
    if scheme not in {"http", "https"}:
        raise DownloadError(
            url,
            f"'{scheme}' URLs are not supported (only http and https)",
            hint="download the file yourself and list its local path",
        )
    dest = cache_path(url, dest_dir)
    if dest.is_file():
        return dest
    dest_dir.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    try:
        _fetch(url, part, max_bytes=int(max_mb * 1024 * 1024), timeout_s=timeout_s)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    log.debug("downloaded %s -> %s", url, dest)
    return dest


def _fetch(url: str, part: Path, *, max_bytes: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    req = urllib.request.Request(url, headers={"User-Agent": "diffcap"})
    try:
        # The socket timeout bounds each read; the deadline bounds the whole transfer.
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise DownloadError(
                    url,
                    f"file is {int(length) / 2**20:.1f} MB, over the "
                    f"{max_bytes / 2**20:.1f} MB limit",
                    hint="raise input.max_download_mb",
                )
            size = _copy(resp, part, url, max_bytes, deadline, timeout_s)
            _check_length(url, size, length)
    except DownloadError:
        raise
    except http.client.HTTPException as exc:  # IncompleteRead: a chunked body cut short
        raise DownloadUnavailable(url, f"download cut short: {exc!r}") from exc
    except urllib.error.HTTPError as exc:
        # The server's fault (5xx, 429, 408) may pass; a 4xx names a bad or missing file.
        cls = DownloadUnavailable if exc.code >= 500 or exc.code in (408, 429) else DownloadError
        raise cls(url, f"HTTP {exc.code} {exc.reason}") from exc
    except ValueError as exc:  # a malformed URL
        raise DownloadError(url, f"download failed: {exc}") from exc
    except (urllib.error.URLError, OSError) as exc:  # the network, or this machine's disk
        reason = getattr(exc, "reason", exc)
        if "timed out" in str(reason):
            raise DownloadUnavailable(
                url, f"timed out after {timeout_s:g} s", hint="raise input.download_timeout_s"
            ) from exc
        raise DownloadUnavailable(url, f"download failed: {reason}") from exc


def _check_length(url: str, size: int, length: str | None) -> None:
    """A body shorter (or longer) than the Content-Length the server announced is not the
    file: the server or the network cut it. Retryable; the partial file is not kept."""
    if length and length.strip().isdigit() and size != int(length):
        raise DownloadUnavailable(
            url,
            f"short download: got {size} of the {int(length)} bytes announced "
            "(the connection closed early); the partial file was not kept",
            hint="rerun the same command to download it again",
        )


def _copy(resp, part: Path, url: str, max_bytes: int, deadline: float, timeout_s: float) -> int:
    size = 0
    with part.open("wb") as out:
        # read1: whatever arrived (up to _CHUNK), so a trickling server cannot outlast the
        # deadline inside one blocking read.
        read = getattr(resp, "read1", resp.read)
        while chunk := read(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise DownloadError(
                    url,
                    f"file is over the {max_bytes / 2**20:.1f} MB limit",
                    hint="raise input.max_download_mb",
                )
            if time.monotonic() > deadline:
                raise DownloadUnavailable(
                    url, f"timed out after {timeout_s:g} s", hint="raise input.download_timeout_s"
                )
            out.write(chunk)
    if size == 0:
        raise DownloadError(url, "the server sent an empty body")
    return size


def forget_download(url: str, path: str | Path | None, dest_dir: Path) -> bool:
    """Drop ``url``'s cached file when it could not be read as a video, so the next attempt
    (``--retry-failed``) downloads it again; True when a file was removed. Only the file
    this cache holds for ``url`` is touched."""
    if path is None:
        return False
    cached = cache_path(url, dest_dir)
    if Path(path) != cached or not cached.is_file():
        return False
    cached.unlink(missing_ok=True)
    log.info("%s: the downloaded file could not be read; it is fetched again next time", url)
    return True
