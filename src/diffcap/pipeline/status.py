"""What ``diffcap status`` shows of a run directory (read-only: another process may be
running in it).

    status = run_status(run_dir); print(format_status(status))
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from diffcap.errors import CacheUnavailable
from diffcap.hints import printable
from diffcap.io.outputs import open_run
from diffcap.store.cache import run_request_cache


def run_status(run_dir: str | Path, *, max_failures: int | None = None) -> dict[str, Any]:
    """Counts per status, failures with reasons, filtered reasons, tokens and cost."""

    store = open_run(run_dir)
    try:
        failures = [
            {k: v[k] for k in ("video_id", "source", "stage", "reason", "error", "attempts")}
            for v in store.videos(["failed"])
        ]
        filtered: dict[str, int] = {}
        for v in store.videos(["filtered"]):
            filtered[v["reason"] or "?"] = filtered.get(v["reason"] or "?", 0) + 1
        videos = store.videos()
        damaged = [
            {"video_id": v["video_id"], **json.loads(v["damaged"])}
            for v in videos
            if v.get("damaged")
        ]
        deferred = [
            {k: v[k] for k in ("video_id", "source", "stage", "reason", "error", "attempts")}
            for v in videos
            if v["status"] == "pending" and v["reason"]
        ]
        return {
            "run_dir": str(run_dir),
            "schema_version": store.version,
            "counts": store.counts(),
            "failures": failures[:max_failures] if max_failures else failures,
            "failures_total": len(failures),
            "bad_inputs": store.bad_inputs(),
            "filtered_reasons": filtered,
            "damaged": damaged,
            "deferred": deferred,
            **_spend(store),
            "last_run": store.get_meta("last_run"),
        }
    finally:
        store.close()


def _spend(store: Any) -> dict[str, Any]:
    """The run's spend from its request cache (PostgreSQL when the run is bound to one);
    an unreachable cache leaves ``spend`` None and says why in ``spend_error``."""

    cache = run_request_cache(store)
    try:
        return {"spend": cache.spend(), "request_cache": cache_where(cache)}
    except CacheUnavailable as exc:
        return {"spend": None, "spend_error": str(exc), "request_cache": cache_where(cache)}
    finally:
        if cache is not store:
            cache.close()


def cache_where(cache: Any) -> str:
    return str(getattr(cache, "where", "sqlite"))


def format_status(st: dict[str, Any]) -> str:
    c, s = st["counts"], st["spend"]
    total = sum(c.values())
    lines = [
        f"run: {printable(st['run_dir'])}  ({total} videos)",
        "  ".join(f"{k}: {c.get(k, 0)}" for k in ("done", "pending", "failed", "filtered")),
    ]
    if s is None:
        lines.append(f"requests paid: unknown ({st.get('spend_error')})")
    else:
        where = st.get("request_cache", "sqlite")
        lines.append(
            f"requests paid: {s['requests']}, tokens: {s['prompt_tokens']} prompt + "
            f"{s['completion_tokens']} completion, estimated cost: ${s['cost_usd']:.4f}"
            + ("" if where == "sqlite" else f" (cache: {where})")
        )
    if st["filtered_reasons"]:
        lines.append(
            "filtered: " + ", ".join(f"{k} {v}" for k, v in sorted(st["filtered_reasons"].items()))
        )
    if st["failures"]:
        lines.append(f"failures ({st['failures_total']}):")
        lines += [
            printable(
                f"  {f['video_id']} [{f['stage']}/{f['reason']}] x{f['attempts']}: {f['error']}"
            )
            for f in st["failures"]
        ]
    if st.get("deferred"):
        lines.append(f"pending after a fault ({len(st['deferred'])}; a rerun retries them):")
        lines += [
            printable(f"  {d['video_id']} [{d['stage']}/{d['reason']}]: {d['error']}")
            for d in st["deferred"][:20]
        ]
    if st.get("damaged"):
        lines.append(f"damaged inputs ({len(st['damaged'])}):")
        lines += [
            printable(f"  warning: {d['video_id']}: {d.get('message')}") for d in st["damaged"]
        ]
    if st["bad_inputs"]:
        lines.append(f"bad input rows ({len(st['bad_inputs'])}):")
        lines += [
            printable(f"  {b['source']} row {b['row']}: {b['error']}") for b in st["bad_inputs"]
        ]
    return "\n".join(lines)
