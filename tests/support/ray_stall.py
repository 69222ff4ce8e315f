"""The stalled-dataset scenario of tests/engine/test_ray_runner.py, run in a process of its own:
the watchdog leaves Ray Data's reading thread blocked on the hung dataset, and when Ray shuts
down under that thread its core worker ends the process. A test process must not be that
process. Prints one JSON line: the rows that came back, the log text and the time taken.

    python -m support.ray_stall TMP_DIR
"""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from pathlib import Path


def main(tmp: str) -> None:
    from diffcap.config import RunConfig
    from diffcap.engine.ray_executor import RayExecutor
    from diffcap.engine.rows import VideoRow
    from support import ray_cluster
    from support.stages import HangOn, run_rows

    log = io.StringIO()
    logging.getLogger("diffcap").addHandler(logging.StreamHandler(log))
    logging.getLogger("diffcap").setLevel(logging.INFO)
    cfg = RunConfig.model_validate({"engine": {"engine": "ray", "ray_stall_s": 8}})
    rows = [VideoRow(video_id=f"v{i}", source=f"s{i}", caption=f"c{i}") for i in range(4)]
    rows[1].caption = "HANG"
    with ray_cluster.local_ray():
        t0 = time.monotonic()
        got = run_rows(RayExecutor, cfg, rows, [HangOn(cfg, Path(tmp))])
        took = time.monotonic() - t0
        out = {"got": [[r.video_id, r.caption] for r in got], "log": log.getvalue(), "took": took}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
