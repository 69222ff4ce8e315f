"""SQLite run state, the request cache (SQLite or PostgreSQL) and migrations.

from diffcap.store import RunStore, open_request_cache
store = RunStore.open(run_dir / "run.sqlite")
cache = open_request_cache(cfg.engine, run_dir)    # the same interface, wherever it lives
"""

from diffcap.store.cache import RequestCacheStore, open_request_cache
from diffcap.store.db import CachedResponse, RunStore, VideoEntry, VideoIdConflict
from diffcap.store.migrations import MIGRATIONS, apply_migrations, schema_version

__all__ = [
    "MIGRATIONS",
    "CachedResponse",
    "RequestCacheStore",
    "RunStore",
    "VideoEntry",
    "VideoIdConflict",
    "apply_migrations",
    "open_request_cache",
    "schema_version",
]
