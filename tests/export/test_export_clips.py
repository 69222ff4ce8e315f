"""Implicit clip captions through a real loopback OpenAI-compatible server."""

from __future__ import annotations

import json

import pytest

from diffcap.config import ModelConfig
from diffcap.errors import ConfigError
from diffcap.export import ExportOptions, export
from diffcap.export.clips import clip_windows
from support.servers import _fault_server_session, fault_server  # noqa: F401 - fixtures


def test_clip_windows():
    assert clip_windows(4, 4, 2) == [(0, 3)]
    assert clip_windows(7, 4, 2) == [(0, 3), (2, 5), (3, 6)]  # tail window added
    assert clip_windows(8, 4, 2) == [(0, 3), (2, 5), (4, 7)]
    assert clip_windows(2, 4, 1) == [(0, 1)]
    assert clip_windows(0, 4, 1) == []
    with pytest.raises(ConfigError):
        clip_windows(5, 0, 1)


def _opts(srv, **kw) -> ExportOptions:
    model = ModelConfig(api_base=srv.base_url, model="loopback", api_key="x", max_retries=1)
    return ExportOptions(progress=False, model=model, **kw)


def test_clips_through_loopback_server(export_fixture, fault_server, tmp_path):  # noqa: F811
    out = tmp_path / "clips.jsonl"
    res = export(export_fixture.records_file, "clips", out, _opts(fault_server, window=2, stride=1))
    rows = [json.loads(s) for s in out.read_text().splitlines()]
    # alpha has 4 differential captions -> 3 windows; beta is fast mode (no captions)
    assert res.items == len(rows) == 3 and res.skipped == {"without differential captions": 1}
    assert [(r["start"], r["end"], r["keyframes"]) for r in rows] == [
        (0.0, 2.0, [0, 1]),
        (2.0, 4.0, [1, 2]),
        (4.0, 6.0, [2, 3]),
    ]
    assert all(r["video_id"] == "alpha" and r["caption"].startswith("ok:") for r in rows)
    prompts = sorted(r.prompt for r in fault_server.requests)
    assert len(prompts) == 3 and all(r.images == 0 for r in fault_server.requests)
    assert any("alpha caption 1" in p and "alpha caption 2" in p for p in prompts)


def test_clips_from_run_dir_never_pay_twice(export_fixture, fault_server, tmp_path):  # noqa: F811
    first = export(
        export_fixture.run_dir,
        "clips",
        tmp_path / "a.jsonl",
        _opts(fault_server, window=3, stride=1),
    )
    paid = len(fault_server.requests)
    assert paid == first.items == 4  # 2 videos x 2 windows of 3 of 4 keyframes
    second = export(
        export_fixture.run_dir,
        "clips",
        tmp_path / "b.jsonl",
        _opts(fault_server, window=3, stride=1),
    )
    assert len(fault_server.requests) == paid  # every request replayed from run.sqlite
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    assert second.items == 4


def test_clips_stop_on_a_dead_endpoint_and_resume_from_the_cache(export_fixture, tmp_path):
    """The export runs on the pipeline's stage contract: a server that dies part-way stops it
    (RunStopped, nothing written) instead of skipping videos; the rerun pays only the rest."""
    from diffcap.errors import RunStopped
    from support.fault_server import FaultServer

    out = tmp_path / "clips.jsonl"
    with FaultServer() as srv:
        srv.fail(*["drop"] * 200, at=list(range(2, 202)))  # dies after two answers
        opts = _opts(srv)
        opts = ExportOptions(
            progress=False,
            window=2,  # windows no other test has cached
            stride=1,
            model=opts.model.model_copy(update={"give_up_after_s": 0.5, "max_retries": 8}),
        )
        with pytest.raises(RunStopped, match="not done"):
            export(export_fixture.run_dir, "clips", out, opts)
        assert not out.exists()
        answered = len([r for r in srv.requests if r.fault is None])
        srv.reset()
        res = export(export_fixture.run_dir, "clips", out, opts)
        assert res.items == 6 and len(srv.requests) == 6 - answered
