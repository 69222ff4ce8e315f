"""The run directory, the run store (SQLite), the request cache (SQLite or PostgreSQL) and
migrations.

from diffcap.store import RunDir, RunStore, open_request_cache
run = RunDir("runs/demo")                       # every path of the layout
store = RunStore.open(run, engine=cfg.engine)   # store.videos, .outcomes, .records, .meta, .cache
cache = open_request_cache(cfg.engine, run)     # the same interface, wherever it lives
"""

from diffcap.store.cache import open_request_cache
from diffcap.store.db import RunStore
from diffcap.store.migrations import MIGRATIONS, apply_migrations, schema_version
from diffcap.store.requests import CachedResponse, RequestCacheStore, Spend
from diffcap.store.rundir import RunDir
from diffcap.store.videos import VideoEntry, VideoIdConflict

__all__ = [
    "MIGRATIONS",
    "CachedResponse",
    "RequestCacheStore",
    "RunDir",
    "RunStore",
    "Spend",
    "VideoEntry",
    "VideoIdConflict",
    "apply_migrations",
    "open_request_cache",
    "schema_version",
]
