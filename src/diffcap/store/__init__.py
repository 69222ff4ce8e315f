"""SQLite run state, request cache and migrations.

from diffcap.store import RunStore, CachedBackend
store = RunStore.open(run_dir / "run.sqlite")
backend = CachedBackend(inner_backend, store, max_cost_usd=2.0)
"""

from diffcap.store.cached import CachedBackend
from diffcap.store.db import CachedResponse, RunStore, VideoEntry, VideoIdConflict
from diffcap.store.migrations import MIGRATIONS, apply_migrations, schema_version

__all__ = [
    "MIGRATIONS",
    "CachedBackend",
    "CachedResponse",
    "RunStore",
    "VideoEntry",
    "VideoIdConflict",
    "apply_migrations",
    "schema_version",
]
