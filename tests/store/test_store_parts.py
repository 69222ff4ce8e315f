"""The composed run store: typed parts over one connection per process per database, and a
request cache chosen once, at open."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from diffcap.config import EngineConfig
from diffcap.engine.rows import VideoRow
from diffcap.store import CachedResponse, RunDir, RunStore, VideoEntry, open_request_cache
from diffcap.store.cache import bind_request_cache
from diffcap.store.postgres import PostgresRequestCache
from diffcap.store.sqlite_cache import SqliteRequestCache
from support.servers import FaultServer, free_port

ANSWER = CachedResponse("a cat", "m", "stop", 10, 5, 0.25)


@pytest.fixture
def connects(monkeypatch):
    """``sqlite3.connect`` calls per database file name, for the whole test."""
    seen: Counter[str] = Counter()
    real = sqlite3.connect

    def counting(database, *args, **kwargs):
        seen[Path(str(database).split("?")[0]).name] += 1
        return real(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", counting)
    return seen


def test_the_parts_read_and_write_one_database(tmp_path):
    store = RunStore.open(RunDir(tmp_path))
    assert store.path == tmp_path / "run.sqlite" and store.rundir == RunDir(tmp_path)
    assert store.videos.add([VideoEntry("a", "a.mp4"), VideoEntry("b", "b.mp4")]) == 2
    store.outcomes.complete("a", {"video_id": "a", "captions": []}, duration=3.0)
    row = VideoRow.new(store.videos.get("b"))
    row.status, row.stage, row.reason, row.error = "failed", "caption", "bad_request", "HTTP 400"
    assert store.outcomes.commit_row(row) == "failed"
    store.meta.set("last_run", {"n": 1})
    store.cache.put_response("k", "openai", ANSWER)
    assert store.videos.counts() == {"pending": 0, "done": 1, "failed": 1, "filtered": 0}
    assert [v["video_id"] for v in store.videos.select(["failed"])] == ["b"]
    assert [r["video_id"] for r in store.records.iter()] == ["a"]
    assert store.records.get("a") == {"video_id": "a", "captions": []}
    assert store.records.get("b") is None
    assert store.videos.sources() == {"a": "a.mp4", "b": "b.mp4"}
    # the historical names read the same rows through the parts
    assert store.videos(["done"]) == store.videos.select(["done"]) == [store.video("a")]
    assert store.get_meta("last_run") == {"n": 1} and store.counts()["done"] == 1
    assert store.spend() == {
        "requests": 1,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.25,
    }
    assert store.cached_response("k") == ANSWER
    store.close()
    store.close()  # idempotent


def test_composed_not_inherited():
    """No mixins whose stubs raise NotImplementedError: the store is its own class."""
    assert RunStore.__mro__ == (RunStore, object)


def test_stores_of_one_process_share_one_connection(tmp_path, connects):
    first = RunStore.open(tmp_path / "run.sqlite")
    second = RunStore.open(RunDir(tmp_path))
    reader = RunStore.open_readonly(RunDir(tmp_path))
    cache = open_request_cache(EngineConfig(), tmp_path)
    assert connects["run.sqlite"] == 1
    assert first.database is second.database is reader.database
    assert isinstance(cache, SqliteRequestCache)
    first.add_videos([VideoEntry("a", "a.mp4")])
    cache.put_response("k", "openai", ANSWER)
    first.close()
    cache.close()
    assert second.counts()["pending"] == 1 and reader.spend()["requests"] == 1  # still open
    second.close()
    reader.close()
    with pytest.raises(sqlite3.ProgrammingError):  # the last user closed it
        first._conn.execute("SELECT 1")
    again = RunStore.open(tmp_path / "run.sqlite")  # a new connection after that
    assert connects["run.sqlite"] == 2 and again.counts()["pending"] == 1
    again.close()


def test_a_caption_run_opens_its_database_once(tmp_path, connects):
    """The driver's store, the model stage's cache check and its cache: one connection."""
    from diffcap.config.resolve import resolve_config
    from diffcap.pipeline.runner import run_dataset
    from diffcap.video.synth import Scene, write_video

    video = tmp_path / "v.mp4"
    write_video(video, [Scene(1.5, hue=0.1), Scene(1.5, hue=0.6)], size=(64, 64), fps=10)
    with FaultServer() as srv:
        over = {
            "model.backend": "openai",
            "model.api_base": srv.base_url,
            "model.model": "tiny",
            "model.api_key": "test",
            "model.max_retries": 0,
            "keyframes.embedder": "weightless",
            "engine.workers": 1,
        }
        cfg = resolve_config(None, None, over)
        report = run_dataset([str(video)], tmp_path / "out", cfg, command="caption", progress=False)
    assert report.done_now == 1 and report.requests_new > 0
    assert connects["run.sqlite"] == 1


def test_the_cache_is_chosen_once_at_open(tmp_path):
    url = f"postgresql://u@127.0.0.1:{free_port()}/db"  # nothing listens: never connected
    plain = RunStore.open(tmp_path / "run.sqlite")
    plain.put_response("k", "openai", ANSWER)
    assert isinstance(plain.cache, SqliteRequestCache)
    bound = RunStore.open(tmp_path / "b" / "run.sqlite")
    bind_request_cache(bound, EngineConfig(cache_url=url))
    bound.close()
    # with the engine: the engine's cache; the run id is the run's own
    pg = RunStore.open(RunDir(tmp_path / "b"), engine=EngineConfig(cache_url=url))
    assert isinstance(pg.cache, PostgresRequestCache) and pg.cache.url == url
    assert pg.cache.run_id == pg.meta.get("run_id")
    assert pg.cached_response is not None and pg.cache is pg.cache  # one object for its life
    # a reader asking for the bound cache gets the stored location
    reader = RunStore.open_readonly(RunDir(tmp_path / "b"), bound=True)
    assert isinstance(reader.cache, PostgresRequestCache) and reader.cache.url == url
    # without either: the run's own SQLite file, whatever the binding
    own = RunStore.open(RunDir(tmp_path / "b"))
    assert isinstance(own.cache, SqliteRequestCache) and own.spend()["requests"] == 0
    sqlite_engine = RunStore.open(RunDir(tmp_path), engine=EngineConfig())
    assert isinstance(sqlite_engine.cache, SqliteRequestCache)
    assert sqlite_engine.spend()["requests"] == 1
    for s in (plain, pg, reader, own, sqlite_engine):
        s.close()
