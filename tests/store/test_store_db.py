"""RunStore: migrations, status transitions, record+done atomicity, request cache."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from diffcap.store import MIGRATIONS, CachedResponse, RunStore, VideoEntry, apply_migrations
from diffcap.store.migrations import schema_version


@pytest.fixture
def store(tmp_path):
    s = RunStore.open(tmp_path / "run.sqlite")
    yield s
    s.close()


def test_migrations_numbered_in_order():
    versions = [v for v, _, _ in MIGRATIONS]
    assert versions == list(range(1, len(MIGRATIONS) + 1))


def test_migrations_recorded_and_idempotent(tmp_path):
    path = tmp_path / "run.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert apply_migrations(conn) == [v for v, _, _ in MIGRATIONS]
    assert apply_migrations(conn) == []  # second time: nothing to do
    assert schema_version(conn) == len(MIGRATIONS)
    rows = conn.execute("SELECT version FROM migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [v for v, _, _ in MIGRATIONS]
    conn.close()
    s = RunStore.open(path)  # reopening applies nothing and keeps the version
    assert s.version == len(MIGRATIONS)
    assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.close()


def test_partial_migration_upgrades_old_database(tmp_path):
    """A database at version 1 (an older diffcap) is upgraded to the latest on open."""
    path = tmp_path / "run.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    import diffcap.store.migrations as m

    first_only = m.MIGRATIONS[:1]
    saved = m.MIGRATIONS
    m.MIGRATIONS = first_only
    try:
        apply_migrations(conn)
    finally:
        m.MIGRATIONS = saved
    assert schema_version(conn) == 1
    conn.close()
    s = RunStore.open(path)
    assert s.version == len(MIGRATIONS)
    s.add_bad_input("m.csv", 3, "bad_row", "no path")  # table from migration 2
    assert s.bad_inputs()[0]["row"] == 3
    s.close()


def test_status_transitions(store):
    assert (
        store.add_videos(
            [
                VideoEntry("a", "a.mp4"),
                VideoEntry("b", "b.mp4"),
                VideoEntry("c", "c.mp4", 1.0, 5.0, "a cat"),
            ]
        )
        == 3
    )
    assert store.add_videos([VideoEntry("a", "other.mp4"), VideoEntry("d", "d.mp4")]) == 1
    assert [v["video_id"] for v in store.videos()] == ["a", "b", "c", "d"]
    assert store.video("a")["source"] == "a.mp4"  # known videos keep their row
    store.fail("a", "keyframes", "corrupt", "bad frame at 3 s")
    store.filter("b", "dedup", "duplicate", duplicate_of="c", similarity=0.97)
    store.complete("c", {"video_id": "c", "captions": []})
    assert store.counts() == {"pending": 1, "done": 1, "failed": 1, "filtered": 1}
    a = store.video("a")
    assert (a["stage"], a["reason"], a["attempts"]) == ("keyframes", "corrupt", 1)
    b = store.video("b")
    assert (b["duplicate_of"], b["similarity"]) == ("c", pytest.approx(0.97))
    assert store.reset_failed() == 1
    assert store.video("a")["status"] == "pending"
    store.fail("a", "caption", "request_failed", "HTTP 500")
    assert store.video("a")["attempts"] == 2  # attempts survive retries
    assert [r["video_id"] for r in store.iter_records()] == ["c"]


def test_complete_is_atomic(store):
    """If marking done fails, the record is not stored either (one transaction)."""
    store.add_videos([VideoEntry("a", "a.mp4")])
    store._conn.execute(
        "CREATE TRIGGER no_done BEFORE UPDATE OF status ON videos WHEN NEW.status = 'done'"
        " BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    with pytest.raises(sqlite3.IntegrityError):
        store.complete("a", {"video_id": "a"})
    assert list(store.iter_records()) == []
    assert store._conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 0
    assert store.video("a")["status"] == "pending"


def test_killed_mid_transaction_leaves_nothing(tmp_path):
    """SIGKILL between the record insert and the commit: after reopening, no record."""
    path = tmp_path / "run.sqlite"
    s = RunStore.open(path)
    s.add_videos([VideoEntry("a", "a.mp4")])
    s.close()
    code = textwrap.dedent(f"""
        import os, signal
        from diffcap.store import RunStore
        s = RunStore.open({str(path)!r})
        with s.transaction() as conn:
            conn.execute("INSERT INTO records VALUES ('a', '{{}}', 0)")
            conn.execute("UPDATE videos SET status = 'done' WHERE video_id = 'a'")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -9
    s = RunStore.open(path)
    assert s.counts()["done"] == 0
    assert list(s.iter_records()) == []
    s.close()


def test_request_cache_hit_miss_and_spend(store):
    assert store.cached_response("k1") is None
    resp = CachedResponse("hello", "m", "stop", 10, 5, 0.25)
    store.put_response("k1", "openai", resp)
    store.put_response("k1", "openai", CachedResponse("other", "m", None, 1, 1, 9.0))
    assert store.cached_response("k1") == resp  # first write wins, never replaced
    store.put_response("k2", "openai", CachedResponse("x", "m", None, 1, 2, 0.5))
    assert store.spend() == {
        "requests": 2,
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "cost_usd": pytest.approx(0.75),
    }


def test_commit_row(store):
    from diffcap.engine.rows import VideoRow

    store.add_videos([VideoEntry(v, f"{v}.mp4") for v in "abcde"])

    def row(vid: str, **kw) -> VideoRow:
        return VideoRow(video_id=vid, source=f"{vid}.mp4", duration=3.0, caption="short", **kw)

    assert store.commit_row(row("a", status="done", record={"video_id": "a"})) == "done"
    failed = row("b", status="failed", stage="prepare", reason="download", error="HTTP 404")
    assert store.commit_row(failed) == "failed"
    dup = row("c", status="filtered", stage="dedup", reason="duplicate", duplicate_of="a")
    dup.similarity = 0.99
    assert store.commit_row(dup) == "filtered"
    assert store.commit_row(row("d")) == "pending"
    down = row("e", status="deferred", stage="caption", reason="model_unavailable", error="x")
    assert store.commit_row(down) == "pending"  # a rerun retries it
    assert store.video("d")["caption"] == "short"
    assert store.video("d")["duration"] == 3.0
    assert store.counts() == {"pending": 2, "done": 1, "failed": 1, "filtered": 1}
    assert store.video("c")["duplicate_of"] == "a"
    e = store.video("e")
    assert (e["status"], e["reason"], e["attempts"]) == ("pending", "model_unavailable", 1)


def test_meta_roundtrip(store):
    assert store.get_meta("x") is None
    store.set_meta("x", {"a": [1, 2]})
    assert store.get_meta("x") == {"a": [1, 2]}


def test_iter_videos_streams_in_order_while_rows_are_committed(store):
    """The pending videos come out chunk by chunk, in input order, each exactly once, even
    when the driver commits outcomes between chunks (what a streaming run does): a video
    that stops being pending before it is read never comes out."""
    n = 25
    store.add_videos(VideoEntry(f"v{i:02d}", f"/data/v{i:02d}.mp4") for i in range(n))
    assert store.count(["pending"]) == n
    seen: list[str] = []
    failed_unseen: set[str] = set()
    for v in store.iter_videos(["pending"], chunk=4):
        assert v["video_id"] not in failed_unseen
        seen.append(v["video_id"])
        i = int(v["video_id"][1:])
        if i % 3 == 0:  # done now: must not come out again
            store.complete(v["video_id"], {"video_id": v["video_id"]})
        later = f"v{i + 5:02d}"
        if i % 3 == 1 and i + 5 < n and later not in seen:  # fails before it is read
            store.fail(later, "prepare", "bad", "told to")
            failed_unseen.add(later)
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert set(seen) | failed_unseen == {f"v{i:02d}" for i in range(n)}
    assert failed_unseen and store.count(["pending"]) == n - len(failed_unseen) - len(
        [x for x in seen if int(x[1:]) % 3 == 0]
    )


def test_worker_deaths_are_counted_until_the_video_has_an_outcome(store):
    """The Ray poison-video count: added before a video runs alone, taken back when the try
    was not a death, and cleared by any outcome (done, failed, filtered, deferred)."""
    store.add_videos([VideoEntry(v, f"{v}.mp4") for v in "abcd"])
    assert [store.add_worker_death("a") for _ in range(3)] == [1, 2, 3]
    store.undo_worker_death("a")
    assert store.add_worker_death("a") == 3
    for v in "bcd":
        store.add_worker_death(v)
    store.complete("a", {"video_id": "a"})
    store.fail("b", "ray", "worker_crashed", "killed 2 workers")
    store.filter("c", "prepare", "too_short")
    store.defer("d", "caption", "endpoint_down", "connection refused")
    with store.transaction() as conn:
        assert conn.execute("SELECT COUNT(*) FROM worker_deaths").fetchone()[0] == 0
    assert store.add_worker_death("b") == 1  # a --retry-failed starts the count again
