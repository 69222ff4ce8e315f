"""The local engine: a worker process that dies fails only its own video."""

from __future__ import annotations

import os

from diffcap.config import RunConfig
from diffcap.pipeline.local import run_stages_local
from diffcap.pipeline.rows import Row, new_row
from diffcap.pipeline.stages import Stage


class CrashOnOne(Stage):
    """A CPU stage whose worker process dies (os._exit) on the video named "crash"."""

    name = "crash_test"
    kind = "cpu"

    def process_row(self, row: Row) -> Row:
        if row["video_id"] == "crash" and os.getpid() != int(row["source"]):
            os._exit(3)  # a hard crash, as a segfaulting decoder would
        row["caption"] = f"worker {os.getpid()}"
        return row


def test_worker_crash_fails_only_that_video(tmp_path):
    cfg = RunConfig.model_validate({"engine": {"workers": 2}})
    main_pid = str(os.getpid())
    rows = [
        new_row({"video_id": v, "source": main_pid}) for v in ["a", "b", "crash", "c", "d", "e"]
    ]
    done: list[Row] = []
    stopped = run_stages_local(rows, [CrashOnOne(cfg, tmp_path)], cfg, done.append, progress=False)
    assert not stopped
    by_id = {r["video_id"]: r for r in done}
    assert sorted(by_id) == ["a", "b", "c", "crash", "d", "e"]
    assert by_id["crash"]["status"] == "failed"
    assert by_id["crash"]["reason"] == "worker_crashed"
    for vid in "abcde":
        assert by_id[vid]["status"] == "pending", by_id[vid]
        assert by_id[vid]["caption"].startswith("worker ")
        assert by_id[vid]["caption"] != f"worker {main_pid}"  # ran in a worker process
