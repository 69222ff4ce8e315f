"""How close does the caption runner come to the ideal request throughput?

A loopback OpenAI-compatible server (its own process, a minimal asyncio HTTP/1.1 server)
answers every chat completion after a fixed latency L. N videos with K pre-extracted keyframes
each are captioned in slide mode (K + 1 sequential requests per video: first frame, K - 1
differentials, summary) through the real openai backend and the engine's caption stage
(:class:`diffcap.stages.caption.CaptionStage` under the local executor, over a run store
with its request cache; one shared in-flight limit C). With C
requests always in flight the ideal is C / (L * (K + 1)) videos/s; the script prints the
achieved rate divided by that ideal.

    .venv/bin/python benchmarks/captioning.py                      # L=0.5 K=4 C=32 N=256
    .venv/bin/python benchmarks/captioning.py --latency 0.2 --videos 64 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from diffcap.config import RunConfig
from diffcap.engine.local import LocalExecutor
from diffcap.keyframes import KeyframeSet
from diffcap.pipeline import RunControl, VideoRow
from diffcap.stages.caption import CaptionStage
from diffcap.store import RunStore
from diffcap.timeline import Keyframe, VideoInfo

ANSWER = {
    "id": "bench",
    "object": "chat.completion",
    "created": 0,
    "model": "bench",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": "A caption of the frames."},
        }
    ],
    "usage": {"prompt_tokens": 100, "completion_tokens": 8, "total_tokens": 108},
}


def serve(port: int, latency: float, ready: mp.Event) -> None:
    """A keep-alive HTTP/1.1 server: every request is answered after ``latency`` seconds,
    with a caption that depends on the request (so no two videos' summaries are the same
    request, and the request cache replays nothing)."""
    import hashlib

    def answer(request: bytes) -> bytes:
        body = dict(ANSWER)
        text = f"A caption of the frames {hashlib.sha1(request).hexdigest()[:10]}."
        body["choices"] = [
            {**ANSWER["choices"][0], "message": {"role": "assistant", "content": text}}
        ]
        blob = json.dumps(body).encode()
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
            b"Content-Length: " + str(len(blob)).encode() + b"\r\n\r\n"
        )
        return head + blob

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in header.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = await reader.readexactly(length)
                await asyncio.sleep(latency)
                writer.write(answer(request))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_keyframe_sets(root: Path, videos: int, k: int) -> list[VideoRow]:
    """Pre-extracted keyframes (small JPEGs and a real keyframes.json) as pipeline rows."""
    info = VideoInfo(
        path="bench.mp4",
        container="mp4",
        codec="h264",
        width=320,
        height=180,
        rotation=0,
        duration=2.0 * k,
        fps=None,
        frame_count=None,
        frame_count_exact=False,
        variable_fps=False,
        has_audio=False,
    )
    rng = np.random.default_rng(0)
    rows = []
    for v in range(videos):
        d = root / "keyframes" / f"v{v:04d}"
        d.mkdir(parents=True)
        kfs = []
        for i in range(k):
            img = rng.integers(0, 255, (180, 320, 3), dtype=np.uint8)
            Image.fromarray(img).save(d / f"{i:05d}.jpg", quality=80)
            kfs.append(Keyframe(idx=i, time=2.0 * i, pts=i, file=f"{i:05d}.jpg"))
        kset = KeyframeSet(f"v{v:04d}", f"v{v}.mp4", info, kfs, "bench", 2.0, 0.9)
        kset.write_json(d / "keyframes.json")
        row = VideoRow(video_id=kset.video_id, source=kset.video_path, duration=info.duration)
        row.keyframes_json = str(d / "keyframes.json")
        rows.append(row)
    return rows


def caption_all(
    rows: list[VideoRow], base_url: str, concurrency: int, run_dir: Path
) -> tuple[float, list[VideoRow]]:
    model = {
        "backend": "openai",
        "model": "bench",
        "api_base": base_url,
        "api_key": "x",
        "concurrency": concurrency,
        "timeout_s": 30,
        "max_retries": 2,
    }
    cfg = RunConfig.model_validate({"model": model})
    store = RunStore.open(run_dir / "run.sqlite")
    done: list[VideoRow] = []
    control = RunControl(store, cfg.engine)
    t0 = time.perf_counter()
    LocalExecutor(cfg, progress=False).run(rows, [CaptionStage(cfg, run_dir)], done.append, control)
    elapsed = time.perf_counter() - t0
    store.close()
    return elapsed, done


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--latency", type=float, default=0.5, help="L: server latency (s)")
    p.add_argument("--keyframes", type=int, default=4, help="K: keyframes per video")
    p.add_argument("--concurrency", type=int, default=32, help="C: requests in flight")
    p.add_argument("--videos", type=int, default=256, help="N: videos")
    a = p.parse_args()
    port = free_port()
    ready = mp.get_context("spawn").Event()
    server = mp.get_context("spawn").Process(
        target=serve, args=(port, a.latency, ready), daemon=True
    )
    server.start()
    try:
        ready.wait(30)
        with tempfile.TemporaryDirectory() as tmp:
            rows = make_keyframe_sets(Path(tmp), a.videos, a.keyframes)
            url = f"http://127.0.0.1:{port}/v1"
            elapsed, done = caption_all(rows, url, a.concurrency, Path(tmp))
    finally:
        server.terminate()
    expected = a.videos * (a.keyframes + 1)
    achieved = a.videos / elapsed
    ideal = a.concurrency / (a.latency * (a.keyframes + 1))
    requests = sum(r.record["usage"]["requests"] for r in done if r.record)
    failures = [r for r in done if not (r.active and r.record)]
    print(
        f"N={a.videos} K={a.keyframes} C={a.concurrency} L={a.latency}s: "
        f"{requests}/{expected} requests, {len(done) - len(failures)} records, "
        f"{len(failures)} failures in {elapsed:.2f} s"
    )
    if failures or requests != expected:
        reason = f"{failures[0].reason}: {failures[0].error}" if failures else "requests missing"
        raise SystemExit(f"INVALID: not every video was captioned ({reason})")
    print(
        f"achieved {achieved:.2f} videos/s, ideal {ideal:.2f} videos/s, "
        f"ratio {achieved / ideal:.3f}"
    )


if __name__ == "__main__":
    main()
