"""Look at and judge captions: the timeline viewer, a static report and a blind review.

    from diffcap.web import load_runs, ViewerApp, make_server, serve, write_report
    runs = load_runs(["out/run1"])
    write_report(runs, "report/index.html")                 # HTML + data and thumbnails beside it
    serve(make_server(ViewerApp(runs), "127.0.0.1", 8765))  # http://127.0.0.1:8765/

Pages are served by Starlette + uvicorn (the ``web`` extra, also in ``review``); the names
that need them (``ViewerApp``, ``ReviewApp``, ``make_server``, ``serve``, ``server_url``) are
imported on first use, so ``import diffcap.web`` works without them. matplotlib is needed
only for the review chart.
"""

from __future__ import annotations

from diffcap.lazyattr import lazy_attributes
from diffcap.store.votes import DEFAULT_DB, Vote, VoteStore
from diffcap.web.data import Run, VideoEntry, load_run, load_runs, system_names
from diffcap.web.report import write_report
from diffcap.web.stats import PairStats, format_table, pair_stats, wilson_interval, write_chart

# name -> module, for the names that need the web stack
_LAZY = {
    "ReviewApp": "diffcap.web.review",
    "ReviewItem": "diffcap.web.review",
    "build_items": "diffcap.web.review",
    "left_system": "diffcap.web.review",
    "ViewerApp": "diffcap.web.viewer",
    "make_server": "diffcap.web.server",
    "serve": "diffcap.web.server",
    "server_url": "diffcap.web.server",
}


__getattr__ = lazy_attributes(__name__, _LAZY, globals())


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
