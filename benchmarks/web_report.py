"""The static report and the served viewer at 50k videos: build time, peak memory, size, and
time to first render in headless Chromium.

A run directory of N records is written (K keyframes each, real JPEG files on disk as hard
links to one image, captions of W words), then:

1. ``diffcap -q view RUN --html OUT`` runs as its own process: wall time and peak RSS
   (``ru_maxrss`` of the child), size of the page plus its data files;
2. Chromium opens the report from ``file://``: time until the first page of the list is drawn
   (``body[data-ready]``), until every data file is in (search covers everything), until a
   click shows a video, and until a search over all N answers; JS heap in use;
3. the same run is served by ``diffcap view`` (ViewerApp on uvicorn): time to first render,
   and the latency of one search over all N through the paged list API.

Targets from issue 11: build < 15 s and < 600 MB; page interactive < 10 s.

    .venv/bin/python benchmarks/web_report.py                   # N=50000 K=2 W=60
    .venv/bin/python benchmarks/web_report.py --videos 5000 --keep /tmp/bench-report
    .venv/bin/python benchmarks/web_report.py --videos 5000 --thumb-size 160   # thumbnails too
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

_SENTENCE = (
    "the camera pans left across a sunlit kitchen while a woman in a red apron lifts a pot "
    "of boiling water and steam rises past the window as a dog walks in from the hallway"
)
WORDS = _SENTENCE.split(" ")


def _text(rng: np.random.Generator, n: int) -> str:
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), n))


def write_run(root: Path, n: int, k: int, words: int) -> Path:
    """RUN/records/records-*.jsonl (10k per shard) + RUN/keyframes/<id>/<i>.jpg (hard links)."""
    rng = np.random.default_rng(0)
    run = root / "run"
    (run / "records").mkdir(parents=True)
    shard = None
    for i in range(n):
        if i % 10_000 == 0:  # a new shard, and a new image to link (ext4 allows 65000 links)
            if shard:
                shard.close()
            shard = (run / "records" / f"records-{i // 10_000:05d}.jsonl").open("w")
            one = root / f"kf-{i // 10_000}.jpg"
            img = rng.integers(0, 255, (252, 448, 3), dtype=np.uint8)
            Image.fromarray(img).save(one, "JPEG", quality=80)
        vid = f"video_{i:06d}"
        (run / "keyframes" / vid).mkdir(parents=True)
        kfs, caps = [], []
        for j in range(k):
            t = round(j * 4.0 + rng.random(), 3)
            name = f"{j:05d}_{t:09.3f}.jpg"
            os.link(one, run / "keyframes" / vid / name)
            kfs.append({"idx": j, "time": t, "file": f"../keyframes/{vid}/{name}"})
            caps.append({"idx": str(j), "time": t, "content": _text(rng, words)})
        caps.append({"idx": "-1", "start": 0.0, "end": 4.0 * k, "content": _text(rng, words * 3)})
        rec = {
            "video_id": vid,
            "video_path": f"/videos/{vid}.mp4",
            "duration": 4.0 * k,
            "keyframes": kfs,
            "captions": caps,
            "mode": "slide" if i % 3 else "fast",
            "provenance": {"backend": "openai", "model": "gpt-4o", "diffcap_version": "0.1.0"},
            "usage": {"requests": k + 1, "prompt_tokens": 900, "completion_tokens": 300},
        }
        shard.write(json.dumps(rec) + "\n")
    if shard:
        shard.close()
    return run


def build(run: Path, out: Path, thumb_size: int | None = None) -> dict[str, float]:
    """The real CLI in its own process: wall time and that process's peak RSS."""
    cmd = [sys.executable, "-m", "diffcap", "-q", "view", str(run), "--html", str(out)]
    t0 = time.perf_counter()
    subprocess.run(cmd + (["--thumb-size", str(thumb_size)] if thumb_size else []), check=True)
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    files = [out, *out.with_name(out.stem + "_files").rglob("*")]
    size = sum(p.stat().st_size for p in files if p.is_file())
    return {"build_s": wall, "peak_mb": peak_kb / 1024, "size_mb": size / 1e6}


def _browser():
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    pw = sync_playwright().start()
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--enable-precise-memory-info",
    ]
    return pw, pw.chromium.launch(executable_path=exe, args=args, headless=True)


def _wait(page, expression: str, timeout: float = 120.0) -> float:
    """Seconds until ``expression`` is true, polled from outside the page (CSP-safe)."""
    t0 = time.perf_counter()
    while not page.evaluate(expression):
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(expression)
        time.sleep(0.02)
    return time.perf_counter() - t0


def in_browser(browser, url: str, n: int, static: bool) -> dict[str, float]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    t0 = time.perf_counter()
    page.goto(url, wait_until="commit")
    _wait(page, "document.body && document.body.dataset.ready === '1'")
    out = {"first_render_s": time.perf_counter() - t0}
    if static:
        _wait(page, "document.body.dataset.loaded === '1'")
        out["all_data_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    page.click("#list .item >> nth=3")
    _wait(page, "!!document.querySelector('#detail .title')")
    out["click_to_detail_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    page.fill("#q", f"video_{n - 1:06d}")
    _wait(page, "document.getElementById('page-info').textContent === '1–1 of 1'")
    out["search_s"] = time.perf_counter() - t2
    heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
    out["js_heap_mb"] = heap / 1e6
    ctx.close()
    return out


def served(run: Path) -> tuple[object, str, float]:
    from diffcap.web.data import load_runs
    from diffcap.web.server import make_server
    from diffcap.web.viewer import ViewerApp

    t0 = time.perf_counter()
    server = make_server(ViewerApp(load_runs([run])), "127.0.0.1", 0).start()
    return server, server.url(), time.perf_counter() - t0


def served_viewer(browser, run: Path, n: int) -> None:
    server, url, load_s = served(run)
    try:
        t1 = time.perf_counter()
        with urllib.request.urlopen(url + f"api/videos?q=video_{n - 1:06d}", timeout=60) as resp:
            assert json.loads(resp.read())["total"] == 1
        api_s = time.perf_counter() - t1
        s = in_browser(browser, url, n, static=False)
        print(
            f"served viewer:        load {load_s:.2f} s   first render "
            f"{s['first_render_s']:.2f} s   click {s['click_to_detail_s']:.2f} s   "
            f"search {s['search_s']:.2f} s (API alone {api_s * 1000:.0f} ms)"
        )
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=50_000)
    ap.add_argument("--keyframes", type=int, default=2)
    ap.add_argument("--words", type=int, default=60, help="words per keyframe caption")
    ap.add_argument("--thumb-size", type=int, help="also write thumbnails beside the report")
    ap.add_argument("--keep", type=Path, help="build here and keep it (default: a temp dir)")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="diffcap-web-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        run = write_run(root, args.videos, args.keyframes, args.words)
        rec_mb = sum(p.stat().st_size for p in (run / "records").glob("*.jsonl")) / 1e6
        print(
            f"wrote {args.videos} records ({rec_mb:.1f} MB JSONL, {args.keyframes} keyframes "
            f"each) in {time.perf_counter() - t0:.1f} s"
        )
        load = os.getloadavg()[0]
        print(f"{os.cpu_count()} cores, load average {load:.1f} (other work slows every figure)")
        b = build(run, root / "report.html", args.thumb_size)
        print(
            f"static report build:  {b['build_s']:6.2f} s   peak RSS {b['peak_mb']:6.0f} MB   "
            f"size {b['size_mb']:6.1f} MB   (targets < 15 s, < 600 MB)"
        )
        pw, browser = _browser()
        try:
            r = in_browser(browser, (root / "report.html").as_uri(), args.videos, static=True)
            print(
                f"report in Chromium:   first render {r['first_render_s']:.2f} s   all data "
                f"{r['all_data_s']:.2f} s   click {r['click_to_detail_s']:.2f} s   search "
                f"{r['search_s']:.2f} s   JS heap {r['js_heap_mb']:.0f} MB   (target < 10 s)"
            )
            served_viewer(browser, run, args.videos)
        finally:
            browser.close()
            pw.stop()
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
