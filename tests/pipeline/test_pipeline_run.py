"""End-to-end runs in-process against the loopback OpenAI-compatible FaultServer: statuses,
outputs, reruns (nothing repeated), --retry-failed, the cost cap and the duration filter."""

from __future__ import annotations

import hashlib
import json

import pyarrow.parquet as pq
import pytest

from diffcap.config.resolve import resolve_config
from diffcap.engine.stage import StageWorker
from diffcap.pipeline.runner import run_dataset
from diffcap.video.synth import Scene, write_video
from support.servers import FaultServer, tiny_llava_server  # noqa: F401
from support.tiny_llava import tiny_llava_dir  # noqa: F401


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    for i in range(4):
        write_video(
            root / f"v{i}.mp4",
            [Scene(1.5, hue=i / 8), Scene(1.5, hue=i / 8 + 0.5)],
            size=(64, 64),
            fps=10,
        )
    long = tmp_path_factory.mktemp("long")
    write_video(long / "long.mp4", [Scene(3.0), Scene(3.0)], size=(64, 64), fps=10)
    return root, long / "long.mp4"


def digest_reply(body) -> str:
    """A different answer per distinct request (so summaries of different videos differ)."""
    return "caption " + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]


@pytest.fixture
def server():
    with FaultServer(reply=digest_reply) as srv:
        yield srv


def config(srv, **over):
    base = {
        "model.backend": "openai",
        "model.api_base": srv.base_url,
        "model.model": "tiny",
        "model.api_key": "test",
        "model.max_retries": 0,
        "model.concurrency": 4,
        "keyframes.embedder": "weightless",
        "engine.workers": 1,
        "filter.max_duration": 5.0,
    }
    base.update(over)
    return resolve_config(None, None, base)


def lines(run_dir):
    out = []
    for shard in sorted((run_dir / "records").glob("records-*.jsonl")):
        out += [json.loads(x) for x in shard.read_text().splitlines()]
    return out


def test_run_outputs_and_rerun(videos, server, tmp_path):
    root, long = videos
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"path": str(long), "start": 1.0, "end": 4.0, "caption": "two colour scenes"},
                {"url": "ftp://example.org/x.mp4", "video_id": "ftp_one"},
                {"path": ""},
            ]
        )
        + "\n"
    )
    run_dir = tmp_path / "run"
    cfg = config(server, **{"output.shard_size": 2})
    report = run_dataset([str(root), str(long), str(manifest)], run_dir, cfg, progress=False)
    assert report.counts == {"done": 5, "failed": 1, "filtered": 1, "pending": 0}
    assert report.requests_new == len(server.requests) > 0
    assert report.requests_cached == 0 and report.keyframes >= 5
    recs = lines(run_dir)
    ids = [r["video_id"] for r in recs]
    assert sorted(ids) == sorted(["v0", "v1", "v2", "v3", "long_1-4"])
    span = next(r for r in recs if r["video_id"] == "long_1-4")
    assert span["span"] == {"start": 1.0, "end": 4.0}
    assert span["short_caption"] == "two colour scenes"
    assert all(1.0 - 1e-6 <= k["time"] <= 4.0 + 1e-6 for k in span["keyframes"])
    assert span["captions"][-1]["idx"] == "-1"
    assert span["provenance"]["backend"] == "openai"
    for r in recs:  # keyframe files resolve relative to records/
        assert all((run_dir / "records" / k["file"]).is_file() for k in r["keyframes"])
    assert len(list((run_dir / "records").glob("*.jsonl"))) == 3  # shard_size 2
    assert pq.read_table(run_dir / "records.parquet").num_rows == 5
    failures = [json.loads(x) for x in (run_dir / "failures.jsonl").read_text().splitlines()]
    assert {(f["video_id"], f["reason"]) for f in failures} == {
        ("ftp_one", "download"),
        (None, "bad_row"),
    }
    filtered = json.loads((run_dir / "filtered.jsonl").read_text().splitlines()[0])
    assert filtered["video_id"] == "long" and filtered["reason"] == "too_long"
    saved = (run_dir / "config.yaml").read_text()
    assert "api_key" not in saved and "test" not in saved.split("api_base")[0]

    # Rerun: nothing left to do, nothing sent, the outputs are the same (no duplicates).
    sent = len(server.requests)
    again = run_dataset([str(root), str(long), str(manifest)], run_dir, cfg, progress=False)
    assert len(server.requests) == sent
    assert again.counts == report.counts and again.done_now == 0
    assert sorted(r["video_id"] for r in lines(run_dir)) == sorted(ids)


def test_retry_failed_only_with_flag(videos, server, tmp_path):
    root, _ = videos
    # Every request to the first video fails (non-retryable 400): the first frame prompt
    # of each video is sent first, so index 0 belongs to one video, whose chain then stops.
    server.fail("status", at=0, status=400)
    run_dir = tmp_path / "run"
    cfg = config(server, **{"model.concurrency": 1})
    first = run_dataset([str(root)], run_dir, cfg, progress=False)
    assert first.counts["failed"] == 1 and first.counts["done"] == 3
    sent = len(server.requests)
    second = run_dataset([str(root)], run_dir, cfg, progress=False)  # failed: not retried
    assert len(server.requests) == sent and second.counts["failed"] == 1
    third = run_dataset([str(root)], run_dir, cfg, retry_failed=True, progress=False)
    assert third.counts == {"done": 4, "failed": 0, "filtered": 0, "pending": 0}
    assert third.done_now == 1
    bodies = [json.dumps(r.body, sort_keys=True) for r in server.requests if r.fault is None]
    assert len(bodies) == len(set(bodies))  # no successful request was sent twice


def test_cost_cap_stops_and_resumes(videos, server, tmp_path, monkeypatch):
    root, _ = videos
    prices = tmp_path / "prices.json"
    # 1 USD per prompt token: every request costs dozens of dollars.
    prices.write_text(json.dumps({"tiny": {"input": 1e6, "output": 0.0}}))
    monkeypatch.setenv("DIFFCAP_PRICES", str(prices))
    run_dir = tmp_path / "run"
    cfg = config(server, **{"engine.max_cost_usd": 1.0, "model.concurrency": 1})
    first = run_dataset([str(root)], run_dir, cfg, progress=False)
    assert first.stopped_by_budget
    assert first.counts["pending"] > 0 and first.counts["failed"] == 0
    # The cap is hard: no request fits under $1, so none is sent (a soft cap paid for one)
    assert len(server.requests) == 0
    assert first.total_cost_usd <= 1.0
    cfg2 = config(server, **{"engine.max_cost_usd": 1e9, "model.concurrency": 1})
    second = run_dataset([str(root)], run_dir, cfg2, progress=False)
    assert not second.stopped_by_budget
    assert second.counts == {"done": 4, "failed": 0, "filtered": 0, "pending": 0}
    bodies = [json.dumps(r.body, sort_keys=True) for r in server.requests]
    assert len(bodies) == len(set(bodies))


def test_process_pool_workers(videos, server, tmp_path):
    root, _ = videos
    report = run_dataset(
        [str(root)], tmp_path / "run", config(server, **{"engine.workers": 2}), progress=False
    )
    assert report.counts["done"] == 4


def test_stages_process_batches_like_ray(videos, server, tmp_path):
    """The stage contract as the Ray executor uses it: pickled stages, process(batch) per
    batch, several batches on one set-up model stage, then commit_row in the driver."""
    import pickle

    from diffcap.io.inputs import collect_inputs
    from diffcap.pipeline import VideoRow, build_stages, stage_names
    from diffcap.store import RunStore, VideoEntry

    root, long = videos
    cfg = config(server)
    run_dir = tmp_path / "run"
    store = RunStore.open(run_dir / "run.sqlite")
    items = collect_inputs([str(root), str(long)], cfg.input).items
    store.add_videos(VideoEntry(i.video_id, i.source) for i in items)
    rows = [VideoRow.new(v) for v in store.videos(["pending"])]
    names = stage_names("run", cfg)
    stages = [pickle.loads(pickle.dumps(s)) for s in build_stages(names, cfg, run_dir)]
    assert [s.name for s in stages] == ["prepare", "keyframes", "caption"]
    workers = [StageWorker(stage) for stage in stages]
    for worker in workers:
        worker.setup()
        rows = worker.process(rows[:2]) + worker.process(rows[2:])  # two batches
    for worker in workers:
        worker.close()
    assert [r.status for r in rows].count("pending") == 4  # passed every stage
    assert all(r.record and r.record["captions"] for r in rows if r.status == "pending")
    assert next(r for r in rows if r.video_id == "long").reason == "too_long"
    for row in rows:
        row.status = "done" if row.active else row.status
        store.commit_row(row)
    assert store.counts() == {"pending": 0, "done": 4, "failed": 0, "filtered": 1}
    store.close()


def test_short_caption_stage_from_frames(videos, server, tmp_path):
    """Rows without a manifest caption get one from the backend (3 frames, short template);
    rows with one keep it and send nothing."""
    from diffcap.pipeline import VideoRow, build_stages

    root, _ = videos
    cfg = config(server, **{"filter.dedup": True})
    prepare, short = map(StageWorker, build_stages(["prepare", "short_caption"], cfg, tmp_path))
    rows = [
        VideoRow(video_id="a", source=str(root / "v0.mp4")),
        VideoRow(video_id="b", source=str(root / "v1.mp4"), caption="given"),
    ]
    rows = short.process(prepare.process(rows))
    short.close()
    assert rows[0].caption.startswith("caption ") and rows[1].caption == "given"
    assert len(server.requests) == 1
    sent = server.requests[0]
    assert sent.images == 3  # frames at 1/6, 1/2, 5/6 of the video
    assert "sentence" in sent.prompt.lower()
    assert sent.body["max_tokens"] <= 96


def test_dedup_filters_duplicates(videos, server, tmp_path):
    pytest.importorskip("diffcap.stages.dedup")
    root, _ = videos
    manifest = tmp_path / "m.jsonl"
    caps = [
        "A red ball rolls across green grass.",
        "A red ball is rolling across the green grass.",
        "Cars drive through a city street at night.",
        None,
    ]
    manifest.write_text(
        "\n".join(
            json.dumps({"path": str(root / f"v{i}.mp4"), **({"caption": c} if c else {})})
            for i, c in enumerate(caps)
        )
        + "\n"
    )
    run_dir = tmp_path / "run"
    cfg = config(server, **{"filter.dedup": True, "filter.dedup_threshold": 0.8})
    report = run_dataset([str(manifest)], run_dir, cfg, progress=False)
    assert report.counts == {"done": 3, "failed": 0, "filtered": 1, "pending": 0}
    filtered = json.loads((run_dir / "filtered.jsonl").read_text().splitlines()[0])
    assert filtered["video_id"] == "v1" and filtered["duplicate_of"] == "v0"
    assert filtered["similarity"] >= 0.8 and filtered["reason"] == "duplicate"
    # A rerun takes the same decisions and sends nothing new.
    sent = len(server.requests)
    again = run_dataset([str(manifest)], run_dir, cfg, progress=False)
    assert again.counts == report.counts and len(server.requests) == sent


def test_keyframe_skips_are_filtered(videos, server, tmp_path):
    root, _ = videos
    cfg = config(server, **{"filter.min_duration": 10.0, "filter.max_duration": None})
    report = run_dataset([str(root)], tmp_path / "run", cfg, progress=False)
    assert report.counts == {"done": 0, "failed": 0, "filtered": 4, "pending": 0}
    row = json.loads((tmp_path / "run" / "filtered.jsonl").read_text().splitlines()[0])
    assert row["stage"] == "prepare" and row["reason"] == "too_short"
    # an empty time window is filtered by the keyframes stage
    cfg = config(server, **{"keyframes.start": 100.0})
    report = run_dataset([str(root)], tmp_path / "run2", cfg, progress=False)
    row = json.loads((tmp_path / "run2" / "filtered.jsonl").read_text().splitlines()[0])
    assert row["stage"] == "keyframes" and row["reason"] == "empty_window"
    assert server.requests == []


def test_url_inputs_downloaded_and_captioned(videos, server, tmp_path):
    import http.server
    import threading
    from functools import partial

    root, _ = videos

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=root))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        manifest = tmp_path / "urls.csv"
        manifest.write_text(f"url,video_id\n{base}/v0.mp4,web0\n{base}/missing.mp4,web404\n")
        run_dir = tmp_path / "run"
        report = run_dataset([str(manifest)], run_dir, config(server), progress=False)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert report.counts == {"done": 1, "failed": 1, "filtered": 0, "pending": 0}
    rec = lines(run_dir)[0]
    assert rec["video_id"] == "web0" and rec["video_path"] == f"{base}/v0.mp4"
    assert len(list((run_dir / "downloads").glob("*.mp4"))) == 1
    fail = json.loads((run_dir / "failures.jsonl").read_text().splitlines()[0])
    assert fail["video_id"] == "web404" and "HTTP 404" in fail["error"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["fast-cheap", None])
def test_real_transformers_serve(videos, tiny_llava_server, tmp_path, preset):  # noqa: F811
    """The whole run against a real `transformers serve` hosting the tiny LLaVA."""
    root, _ = videos
    srv = tiny_llava_server
    cfg = resolve_config(
        preset,
        None,
        {
            "model.api_base": srv.base_url,
            "model.model": srv.model,
            "model.api_key": "x",
            "model.max_tokens": 16,
            "model.concurrency": 2,
            "keyframes.embedder": "weightless",
            "engine.workers": 1,
        },
    )
    run_dir = tmp_path / "run"
    report = run_dataset([str(root / "v0.mp4"), str(root / "v1.mp4")], run_dir, cfg, progress=False)
    assert report.counts["done"] == 2, (run_dir / "failures.jsonl").read_text()
    assert report.prompt_tokens > 0
    recs = lines(run_dir)
    assert all(r["captions"] and r["captions"][-1]["idx"] == "-1" for r in recs)
    again = run_dataset(
        [str(root / "v0.mp4")], tmp_path / "run", cfg, retry_failed=True, progress=False
    )
    assert again.requests_new == 0
