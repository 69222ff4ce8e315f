"""A real process that writes request-cache entries, for the concurrency and kill -9 tests.

    python -m support.cache_writer SPEC WRITER FIRST COUNT [GO_FILE]

``SPEC`` is JSON naming the store (``{"kind": "sqlite", "path": ...}`` or ``{"kind":
"postgres", "url": ..., "run_id": ...}``). The writer prints ``ready``, waits for ``GO_FILE``
(when given) so several writers start together, then puts keys ``k<FIRST>`` ..
``k<FIRST+COUNT-1>`` and prints each key once its put has returned (acknowledged).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from diffcap.store.requests import CachedResponse


def open_spec(spec: dict[str, Any]) -> Any:
    if spec["kind"] == "sqlite":
        from diffcap.store import RunStore

        return RunStore.open(spec["path"])
    from diffcap.store.postgres import PostgresRequestCache

    return PostgresRequestCache(spec["url"], spec["run_id"])


def answer(key: str, writer: str) -> CachedResponse:
    """The answer ``writer`` stores for ``key``: text names the writer, usage only the key
    (so the expected spend over unique keys is known whoever won)."""
    n = int(key[1:])
    return CachedResponse(f"{writer} says {key}", "m", "stop", n, 2 * n, n / 1000)


def main(argv: list[str]) -> None:
    spec, writer, first, count = json.loads(argv[0]), argv[1], int(argv[2]), int(argv[3])
    go = Path(argv[4]) if len(argv) > 4 else None
    cache = open_spec(spec)
    cache.spend()  # connected (and the schema made) before "ready"
    print("ready", flush=True)
    while go is not None and not go.exists():
        time.sleep(0.005)
    for i in range(first, first + count):
        key = f"k{i}"
        cache.put_response(key, "backend", answer(key, writer))
        print(key, flush=True)
    cache.close()


if __name__ == "__main__":
    main(sys.argv[1:])
