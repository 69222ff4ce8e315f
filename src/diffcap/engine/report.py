"""Run reports: what one ``diffcap run`` did, and what ``diffcap status`` shows of a run dir.

report = RunReport(...); print(report.format())
status = run_status(run_dir); print(format_status(status))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from diffcap.errors import EXIT_CODES
from diffcap.hints import command, printable


@dataclass
class RunReport:
    run_dir: str
    counts: dict[str, int]
    done_now: int = 0
    failed_now: int = 0
    filtered_now: int = 0
    keyframes: int = 0
    requests_new: int = 0
    requests_cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0  # new spend in this invocation
    total_cost_usd: float = 0.0  # everything this run dir has paid for
    wall_s: float = 0.0
    deferred_now: int = 0  # left pending by a fault of the world, the cost cap or a bug
    bad_inputs_now: int = 0  # inputs that name no usable video (see failures.jsonl)
    #: Why the run stopped early: budget, endpoint_down, faults, config, dedup_waits
    stop_reason: str | None = None
    bugs: int = 0
    error_log: str | None = None
    last_fault: str | None = None
    damaged: list[tuple[str, str]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    # Not part of the stored report (``to_json``): for the command that ran it.
    #: Records written to the invocation's records file (``caption --out``), if any.
    records_written: int | None = field(default=None, metadata={"json": False})
    #: This invocation's failed/filtered videos and the run's bad inputs (dicts with
    #: video_id, source, status, reason, error).
    problems: list[dict[str, Any]] = field(default_factory=list, metadata={"json": False})

    @property
    def stopped_by_budget(self) -> bool:
        return self.stop_reason == "budget"

    @property
    def exit_code(self) -> int:
        """The one rule (docs/runs.md, "Exit codes"): 0 only when every video of the run is
        done or filtered by a filter the user set; else the code of why not (see
        ``diffcap.errors.EXIT_CODES``): a stop, failed videos, bad inputs, or no
        video at all."""
        if self.bugs:
            return EXIT_CODES["bug"]
        if self.stop_reason == "budget":
            return EXIT_CODES["budget"]
        if self.stop_reason == "config":
            return EXIT_CODES["usage"]
        if self.stop_reason in ("terminated", "interrupted"):
            return EXIT_CODES[self.stop_reason]
        c = self.counts
        if self.stop_reason or self.deferred_now or c.get("pending", 0):
            return EXIT_CODES["stopped"]
        if c.get("failed", 0) or self.bad_inputs_now or not self.finished:
            return EXIT_CODES["error"]
        return EXIT_CODES["ok"]

    @property
    def finished(self) -> int:
        """Videos of the run that are done or filtered (0: nothing was captioned at all)."""
        return self.counts.get("done", 0) + self.counts.get("filtered", 0)

    @property
    def videos_per_s(self) -> float:
        return self.done_now / self.wall_s if self.wall_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for f in fields(self):
            if f.metadata.get("json") is False:
                del d[f.name]
        d["videos_per_s"] = round(self.videos_per_s, 4)
        d["stopped_by_budget"] = self.stopped_by_budget
        d["exit_code"] = self.exit_code
        return d

    def format(self) -> str:
        c = self.counts
        lines = [
            f"run: {printable(self.run_dir)}",
            f"videos: {c.get('done', 0)} done, {c.get('failed', 0)} failed, "
            f"{c.get('filtered', 0)} filtered, {c.get('pending', 0)} pending "
            f"(this run: +{self.done_now} done, +{self.failed_now} failed, "
            f"+{self.filtered_now} filtered)"
            + (f"; {self.bad_inputs_now} bad input(s)" if self.bad_inputs_now else ""),
            f"keyframes: {self.keyframes}",
            f"requests: {self.requests_new} new, {self.requests_cached} cached",
            f"tokens: {self.prompt_tokens} prompt + {self.completion_tokens} completion (new)",
            f"estimated cost: ${self.cost_usd:.4f} this run, ${self.total_cost_usd:.4f} in total",
            f"wall time: {self.wall_s:.1f} s, {self.videos_per_s:.2f} videos/s",
        ]
        lines += [printable(f"warning: {vid}: {message}") for vid, message in self.damaged]
        lines += self._stop_lines()
        return "\n".join(lines)

    def _stop_lines(self) -> list[str]:
        out = []
        if self.stopped_by_budget:
            out.append("stopped: the --max-cost-usd cap was reached; rerun with a higher cap")
        elif self.stop_reason == "endpoint_down":
            out.append(
                "stopped: the model endpoint is down; nothing was marked failed, rerun the "
                "same command once it is back"
            )
        elif self.stop_reason == "faults":
            out.append(
                "stopped: several videos in a row hit a fault of the machine or network; "
                "nothing was marked failed, fix it and rerun"
            )
        elif self.stop_reason == "config":
            out.append("stopped: a setting or an install is missing (see below); fix it, rerun")
        elif self.stop_reason == "terminated":
            out.append("stopped by SIGTERM after the answers in flight; rerun to resume")
        elif self.stop_reason == "interrupted":
            out.append("stopped by Ctrl-C after the answers in flight; rerun to resume")
        elif self.stop_reason == "dedup_waits":
            out.append("de-dup waits until every candidate has a short caption: rerun")
        if self.last_fault and (self.stop_reason or self.deferred_now):
            out.append(printable(f"last fault: {self.last_fault}"))
        if self.deferred_now and not self.stop_reason:
            out.append(f"{self.deferred_now} video(s) left pending: rerun to retry them")
        out += self._incomplete_lines()
        if self.bugs:
            out.append(
                f"internal error on {self.bugs} video(s) (a bug, please report it): "
                f"traceback in {self.error_log}; the videos stay pending"
            )
        return out

    def _incomplete_lines(self) -> list[str]:
        """Why a run that was not stopped still exits non-zero (failed, bad or no videos)."""
        if self.bugs or self.stop_reason or self.deferred_now or self.counts.get("pending", 0):
            return []
        failed = self.counts.get("failed", 0)
        if failed:
            return [
                f"exit 1: {failed} video(s) failed (`{command('diffcap')} status "
                f"{printable(self.run_dir)}` lists why; "
                "--retry-failed retries them)"
            ]
        if self.bad_inputs_now:
            return [f"exit 1: {self.bad_inputs_now} input(s) name no usable video (see above)"]
        if not self.finished:
            return ["exit 1: no video was found to process (check the inputs)"]
        return []
