"""The local executor: a worker process that dies fails only its own video."""

from __future__ import annotations

import os

from diffcap.config import RunConfig
from diffcap.engine.control import RunControl
from diffcap.engine.local import LocalExecutor
from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import CpuStage


class CrashOnOne(CpuStage):
    """A CPU stage whose worker process dies (os._exit) on the video named "crash"."""

    name = "crash_test"

    def process_row(self, row: VideoRow) -> VideoRow:
        if row.video_id == "crash" and os.getpid() != int(row.source):
            os._exit(3)  # a hard crash, as a segfaulting decoder would
        row.caption = f"worker {os.getpid()}"
        return row


class _NoStore:
    def spend(self) -> dict:
        return {"cost_usd": 0.0}


def test_worker_crash_fails_only_that_video(tmp_path):
    cfg = RunConfig.model_validate({"engine": {"workers": 2}})
    main_pid = str(os.getpid())
    rows = [VideoRow(video_id=v, source=main_pid) for v in ["a", "b", "crash", "c", "d", "e"]]
    done: list[VideoRow] = []
    control = RunControl(_NoStore(), cfg.engine)
    LocalExecutor(cfg, progress=False).run(rows, [CrashOnOne(cfg, tmp_path)], done.append, control)
    assert control.stop_reason() is None
    by_id = {r.video_id: r for r in done}
    assert sorted(by_id) == ["a", "b", "c", "crash", "d", "e"]
    assert by_id["crash"].status == "failed"
    assert by_id["crash"].reason == "worker_crashed"
    for vid in "abcde":
        assert by_id[vid].status == "pending", by_id[vid]
        assert by_id[vid].caption.startswith("worker ")
        assert by_id[vid].caption != f"worker {main_pid}"  # ran in a worker process
