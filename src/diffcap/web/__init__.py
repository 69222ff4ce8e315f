"""Look at and judge captions: the timeline viewer, a static report and a blind review.

    from diffcap.web import load_runs, ViewerApp, make_server, serve, write_report
    runs = load_runs(["out/run1"])
    write_report(runs, "report.html")                       # one self-contained file
    serve(make_server(ViewerApp(runs), "127.0.0.1", 8765))  # http://127.0.0.1:8765/

Only the standard library serves pages (http.server); matplotlib is needed only for the
review chart.
"""

from __future__ import annotations

from diffcap.web.data import Run, VideoEntry, load_run, load_runs, system_names
from diffcap.web.report import write_report
from diffcap.web.review import ReviewApp, ReviewItem, build_items, left_system
from diffcap.web.server import make_server, serve, server_url
from diffcap.web.stats import PairStats, format_table, pair_stats, wilson_interval, write_chart
from diffcap.web.viewer import ViewerApp
from diffcap.web.votes import DEFAULT_DB, Vote, VoteStore

__all__ = [
    "DEFAULT_DB",
    "PairStats",
    "ReviewApp",
    "ReviewItem",
    "Run",
    "VideoEntry",
    "ViewerApp",
    "Vote",
    "VoteStore",
    "build_items",
    "format_table",
    "left_system",
    "load_run",
    "load_runs",
    "make_server",
    "pair_stats",
    "serve",
    "server_url",
    "system_names",
    "wilson_interval",
    "write_chart",
    "write_report",
]
