"""The prepare stage: download URLs, probe, the duration filter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffcap.engine.rows import VideoRow
from diffcap.engine.stage import CpuStage, Resources
from diffcap.errors import DownloadError, VideoError
from diffcap.io.inputs import is_url
from diffcap.stages.filters import duration_verdict, span_duration
from diffcap.store.rundir import RunDir
from diffcap.video import probe

__all__ = ["PrepareStage", "download_dir", "forget_bad_download"]


class PrepareStage(CpuStage):
    """Download URLs, probe the video, apply the duration filter."""

    name = "prepare"

    @property
    def resources(self) -> Resources:
        # Downloads and probes wait on I/O: many at once, in threads.
        return Resources(cpus=0, concurrency=max(4, self.cfg.engine.workers))

    def process_row(self, row: VideoRow) -> VideoRow:
        from diffcap.io.download import download  # lazy: start-up

        try:
            path = row.source
            if is_url(path):
                icfg = self.cfg.input
                path = str(
                    download(
                        path,
                        download_dir(self.cfg, self.run_dir),
                        max_mb=icfg.max_download_mb,
                        timeout_s=icfg.download_timeout_s,
                    )
                )
            row.path = path
            info = probe(path)
            row.duration = span_duration(info.duration, row.start, row.end)
        except Exception as exc:
            forget_bad_download(row, exc, self.cfg, self.run_dir)
            return row.fail(self.name, exc)
        verdict = duration_verdict(row.duration, self.cfg.filter)
        if verdict:
            reason, message = verdict
            return row.filter(self.name, reason, message)
        return row


def download_dir(cfg: Any, run_dir: str | Path) -> Path:
    """Where URL inputs are cached (``input.download_dir``, else ``RUN_DIR/downloads``)."""
    return Path(cfg.input.download_dir or RunDir(run_dir).downloads)


def forget_bad_download(row: VideoRow, exc: Exception, cfg: Any, run_dir: str | Path) -> None:
    """A downloaded file that cannot be read as a video (corrupt, truncated, not a video)
    is dropped from the cache, so ``--retry-failed`` downloads it again."""
    from diffcap.io.download import forget_download  # lazy: start-up

    if isinstance(exc, VideoError) and not isinstance(exc, DownloadError) and is_url(row.source):
        forget_download(row.source, row.path, download_dir(cfg, run_dir))
