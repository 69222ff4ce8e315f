"""Hand-made runs for the viewer/review tests: real JPEG keyframes, JSONL written by hand,
and a real small MP4 written with PyAV.

    run_dir = write_run_dir(tmp_path / "runA", [video("v1", [0.0, 2.5, 7.0], duration=8.0)])
"""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def write_jpeg(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.zeros((size[1], size[0], 3), np.uint8)
    img[:] = colour
    img[: size[1] // 4, : size[0] // 4] = 255 - np.array(colour, np.uint8)  # not flat
    Image.fromarray(img).save(path, "JPEG", quality=90)


def write_mp4(
    path: Path, seconds: float = 4.0, fps: int = 10, size: tuple[int, int] = (64, 48)
) -> Path:
    """A small H.264 MP4 (moov atom first, so a browser can start from a Range request)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        for i in range(int(seconds * fps)):
            img = np.zeros((size[1], size[0], 3), np.uint8)
            img[:, :, 0] = (i * 255) // int(seconds * fps)
            img[:, (i * 3) % size[0]] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def video(
    vid: str,
    times: list[float],
    duration: float,
    *,
    summary: str | None = None,
    captions: list[str] | None = None,
    mode: str = "slide",
    model: str = "gpt-4o",
    video_path: str = "",
    clips: list[dict[str, Any]] | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A record dict (keyframe files filled in by the writers)."""
    caps = captions or [f"{vid} caption {i} at {t:.2f}s" for i, t in enumerate(times)]
    rec: dict[str, Any] = {
        "video_id": vid,
        "video_path": video_path or f"/videos/{vid}.mp4",
        "duration": duration,
        "keyframes": [{"idx": i, "time": t, "file": None} for i, t in enumerate(times)],
        "captions": [
            {"idx": str(i), "time": t, "content": c}
            for i, (t, c) in enumerate(zip(times, caps, strict=True))
        ]
        + [
            {
                "idx": "-1",
                "start": 0.0,
                "end": duration,
                "content": summary if summary is not None else f"summary of {vid}",
            }
        ],
        "mode": mode,
        "provenance": provenance
        or {
            "backend": "openai",
            "model": model,
            "templates": {"summary": "diffcap/summary@1"},
            "diffcap_version": "0.1.0",
            "created": "2026-11-25",
        },
        "usage": {
            "requests": len(times) + 1,
            "prompt_tokens": 1000,
            "completion_tokens": 200,
            "cost_usd": 0.0123,
        },
    }
    if clips is not None:
        rec["clips"] = clips
    return rec


def _colour(i: int) -> tuple[int, int, int]:
    return ((40 * i + 30) % 256, (90 * i + 60) % 256, (150 * i + 90) % 256)


def _write_keyframes(rec: dict[str, Any], kf_dir: Path, rel_prefix: str) -> None:
    for i, k in enumerate(rec["keyframes"]):
        name = f"{i:05d}_{k['time']:09.3f}.jpg"
        write_jpeg(kf_dir / rec["video_id"] / name, _colour(i))
        k["file"] = f"{rel_prefix}{rec['video_id']}/{name}"


def _write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_run_dir(
    run_dir: Path,
    records: list[dict[str, Any]],
    failures: list[dict[str, Any]] | None = None,
    filtered: list[dict[str, Any]] | None = None,
) -> Path:
    """RUN_DIR/records/records-00000.jsonl + RUN_DIR/keyframes/<id>/ + failures/filtered."""
    for rec in records:
        _write_keyframes(rec, run_dir / "keyframes", "../keyframes/")
    _write_lines(run_dir / "records" / "records-00000.jsonl", records)
    if failures:
        _write_lines(run_dir / "failures.jsonl", failures)
    if filtered:
        _write_lines(run_dir / "filtered.jsonl", filtered)
    return run_dir


def write_captions_jsonl(
    path: Path, records: list[dict[str, Any]], failures: list[dict[str, Any]] | None = None
) -> Path:
    """``diffcap caption`` layout: captions.jsonl + captions.keyframes/<id>/ + failures."""
    stem = path.name[: -len(".jsonl")]
    for rec in records:
        _write_keyframes(rec, path.parent / f"{stem}.keyframes", f"{stem}.keyframes/")
    _write_lines(path, records)
    if failures:
        _write_lines(path.with_name(f"{stem}.failures.jsonl"), failures)
    return path


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    # a name an attacker controls that resolves to loopback: the DNS-rebinding setup
    "--host-resolver-rules=MAP rebind.test 127.0.0.1",
]


def register_videos(run_dir: Path, sources: dict[str, str]) -> Path:
    """Register ``{video_id: source}`` in RUN_DIR/run.sqlite through the real run store, as
    ``diffcap run`` does: the viewer plays only videos registered there."""
    from diffcap.store.db import RunStore, VideoEntry

    store = RunStore.open(run_dir / "run.sqlite")
    store.add_videos([VideoEntry(vid, src) for vid, src in sources.items()])
    store.close()
    return run_dir


def raw_http(port: int, data: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` verbatim over a fresh loopback socket and read one response (status,
    lower-cased headers, body by Content-Length or to close). No client library in between,
    so malformed requests reach the server as written."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        want = int(headers.get("content-length", "-1"))
        while want < 0 or len(body) < want:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            body += chunk
    return status, headers, body
